"""Drift rules: a declared test on a feature, reference against every current window, with a threshold.

The statistics come from the drift engine (engine/monitor/drift.py). This module decides which samples are
compared, keeps the fitted reference profiles in the store (fitted once per reference, not every run) and
turns statistics into alerts: `threshold` (statistic above it), `p_value` (p below it) or `sigma` (statistic
above mean + k * std of the same statistic over the reference period's own windows).
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from engine.monitor.drift import DriftSpec, ReferenceProfile, compute_drift, fit_reference
from engine.monitor.sources import Periods, feature_relation, golden_relation, in_period, user_expression, TRACE_COLUMNS
from engine.provenance import canonical_json, content_hash, utc_now
from engine.executor import execute
from engine.sql import Statement, literal, parse_expression, render, temp_table

RULE_KEYS = ("feature", "threshold", "p_value", "sigma", "severity", "description")


@dataclass
class DriftRuleResult:
    name: str
    feature: str
    test: str
    severity: str
    threshold: dict  # {"kind": threshold|p_value|sigma, "value": declared, "bound": effective}
    status: str  # ok | alert | error
    message: str
    windows: list[dict] = field(default_factory=list)  # window, statistic, p_value, n, alert
    first_alert: str | None = None
    reference: dict = field(default_factory=dict)  # the fitted bins: labels, proportions, n
    current: dict = field(default_factory=dict)  # the whole current period in the same bins

    def to_json(self) -> dict:
        return dict(self.__dict__)


def drift_spec(rule: dict, feature: dict) -> DriftSpec:
    spec = {k: v for k, v in rule.items() if k not in RULE_KEYS}
    spec["kind"] = feature.get("type", "numeric")
    return DriftSpec.from_dict(spec)


# Each rule's samples are materialised once (the drift engine reads them several times) by two plan steps
# whose period bounds are bound parameters: what `flywheel compile monitor` prints is what runs.
CURRENT_TABLE, REFERENCE_TABLE = "fw_drift_current", "fw_drift_reference"


def sample_statements(name: str, rule: dict, cfg: dict, metrics_hashes: dict) -> list[Statement]:
    """`drift.<name>.current` and (unless the reference is the previous window) `drift.<name>.reference`."""
    feature = cfg["features"][rule["feature"]]
    rel = feature_relation(cfg, feature, metrics_hashes)
    ts = exp.column("timestamp", quoted=True)
    current = rel.copy().where(in_period(ts.copy(), "cur_start", "cur_end"))
    statements = [Statement(f"drift.{name}.current", temp_table(CURRENT_TABLE, current), ("cur_start", "cur_end"),
                            f"{rule.get('test', 'psi')} on {rule['feature']}: the current period's values")]
    ref_kind = (cfg.get("reference") or {}).get("kind", "first_days")
    if ref_kind == "golden":
        expr = user_expression(feature["expr"], TRACE_COLUMNS, what="monitor feature expression")
        reference = exp.select(exp.alias_(literal(0), "window_start"), exp.alias_(expr, "x")).from_(
            golden_relation().subquery("t"))
        statements.append(Statement(f"drift.{name}.reference", temp_table(REFERENCE_TABLE, reference),
                                    ("golden_version",), "the reference sample: the golden dataset's latest version"))
    elif ref_kind != "previous":
        reference = rel.copy().where(in_period(ts.copy(), "ref_start", "ref_end"))
        statements.append(Statement(f"drift.{name}.reference", temp_table(REFERENCE_TABLE, reference),
                                    ("ref_start", "ref_end"), "the reference sample"))
    return statements


def _relations(con, name: str, rule: dict, cfg: dict, periods: Periods, metrics_hashes: dict,
               golden_version: str | None) -> tuple[exp.Expression, exp.Expression]:
    """Run the rule's sample statements; the two samples as relations over the materialised tables."""
    params = {**periods.params(), "golden_version": golden_version}
    for statement in sample_statements(name, rule, cfg, metrics_hashes):
        execute(con, statement, params)
    return (exp.select("*").from_(CURRENT_TABLE), exp.select("*").from_(REFERENCE_TABLE))


def _profile(con, key_source: dict, reference: exp.Expression, spec: DriftSpec, feature_name: str
             ) -> ReferenceProfile:
    """The stored profile for this exact reference (feature, definition, period and row count), else fit it."""
    n_rows = con.execute(exp.select("count(*)").from_(reference.subquery("r")).sql("duckdb")).fetchall()[0][0]
    key = content_hash({**key_source, "n_rows": n_rows, "kind": spec.kind, "binning": spec.binning.to_dict()}, 24)
    row = con.execute("SELECT profile FROM reference_profiles WHERE profile_key = ?", [key]).fetchall()
    if row:
        return ReferenceProfile.from_dict(json.loads(row[0][0]))
    profile = fit_reference(con, reference, spec.kind, spec.binning, value="x")
    con.execute("INSERT INTO reference_profiles VALUES (?, ?, ?, ?)",
                [key, feature_name, canonical_json(profile.to_dict()), utc_now()])
    return profile


def evaluate_rule(con, name: str, rule: dict, cfg: dict, periods: Periods, metrics_hashes: dict,
                  golden_version: str | None) -> DriftRuleResult:
    feature = cfg["features"][rule["feature"]]
    spec = drift_spec(rule, feature)
    severity = rule.get("severity", "blocking")
    kind = next(k for k in ("threshold", "p_value", "sigma") if k in rule)
    declared = {"kind": kind, "value": rule[kind]}
    result = DriftRuleResult(name, rule["feature"], spec.test, severity, declared, "ok", "")
    if periods.cur_start is None:
        result.status, result.message = "error", "no traces in scope: nothing to monitor"
        return result
    ref_kind = (cfg.get("reference") or {}).get("kind", "first_days")
    current, reference = _relations(con, name, rule, cfg, periods, metrics_hashes, golden_version)
    try:
        if ref_kind == "previous":
            rows = _previous_windows(con, spec, current)
        else:
            key = {"feature": feature, "reference": cfg.get("reference"), "periods": periods.to_json(),
                   "golden": golden_version, "model": cfg.get("model")}
            profile = _profile(con, key, reference, spec, rule["feature"])
            result.reference = {"n": profile.n, "n_missing": profile.n_missing, "labels": list(profile.labels),
                                "proportions": list(profile.proportions)}
            result.current = current_distribution(con, current, profile)
            rows = compute_drift(con, [spec], current, profile=profile, reference=reference, value="x",
                                 window="window_start")
            if kind == "sigma":
                declared["bound"] = _sigma_bound(con, spec, profile, reference, float(rule["sigma"]))
    except ValueError as e:  # an empty reference, a constant feature for wasserstein, ...
        result.status, result.message = "error", f"cannot compute: {e}"
        return result
    bound = declared.get("bound", rule.get(kind)) if kind != "p_value" else rule["p_value"]
    declared["bound"] = bound
    for r in sorted(rows, key=lambda r: str(r.window)):
        if r.statistic is None:
            alert = False
        elif kind == "p_value":
            alert = r.p_value is not None and r.p_value < bound
        else:
            alert = bound is not None and r.statistic > bound
        result.windows.append({"window": _iso(r.window), "statistic": r.statistic, "p_value": r.p_value,
                               "n": r.n_current, "alert": alert, "details": _small(r.details)})
    alerted = [w for w in result.windows if w["alert"]]
    if declared.get("bound") is None:
        result.status, result.message = "error", "cannot compute the sigma bound: fewer than 2 reference windows"
    elif alerted:
        result.status = "alert"
        result.first_alert = alerted[0]["window"]
        worst = max(alerted, key=lambda w: w["statistic"] or 0)
        op = "p <" if kind == "p_value" else ">"
        result.message = (f"{len(alerted)} of {len(result.windows)} windows drifted ({spec.test} {op} "
                          f"{bound:.4g}), from {alerted[0]['window'][:16]}; worst {worst['window'][:16]}: "
                          f"{worst['statistic']:.4g}")
    else:
        result.message = f"no drift in {len(result.windows)} windows ({spec.test}, bound {bound:.4g})"
    return result


def current_distribution(con, current: exp.Expression, profile: ReferenceProfile) -> dict:
    """The current period's values in the reference's bins (numeric: np.digitize over the cut points;
    categorical: the reference's categories, then any new ones), for reports."""
    x = exp.column("x")
    if profile.kind == "numeric":
        key = parse_expression("len(list_filter(__cuts__, lambda c: CAST(__x__ AS DOUBLE) >= c))",
                               cuts=literal([float(c) for c in profile.cuts]), x=x)
        keep = exp.and_(x.copy().is_(exp.null()).not_(),
                        exp.Not(this=exp.func("isnan", exp.cast(x.copy(), "DOUBLE"))))
    else:
        key = exp.cast(x, "VARCHAR")
        keep = x.copy().is_(exp.null()).not_()
    rows = con.execute(render(exp.select(exp.alias_(key, "k"), "count(*)").from_(current.subquery("c"))
                              .where(keep).group_by("k"))).fetchall()
    counts = {k: n for k, n in rows}
    keys = list(profile.keys) + sorted(k for k in counts if k not in set(profile.keys))
    labels = list(profile.labels) + [str(k) for k in keys[len(profile.keys):]]
    total = sum(counts.values())
    return {"n": total, "labels": labels,
            "proportions": [counts.get(k, 0) / total if total else 0.0 for k in keys]}


def _sigma_bound(con, spec: DriftSpec, profile: ReferenceProfile, reference: exp.Expression, k: float
                 ) -> float | None:
    per_window = compute_drift(con, [spec], reference, profile=profile, reference=reference, value="x",
                               window="window_start")
    values = [r.statistic for r in per_window if r.statistic is not None]
    if len(values) < 2:
        return None
    return statistics.fmean(values) + k * statistics.stdev(values)


def _previous_windows(con, spec: DriftSpec, current: exp.Expression) -> list:
    """Each window against the window before it (reference kind `previous`)."""
    windows = [w for (w,) in con.execute(exp.select("DISTINCT window_start").from_(current.subquery("c"))
                                         .order_by("window_start").sql("duckdb")).fetchall()]
    results = []
    for before, now in zip(windows, windows[1:]):
        def only(w):
            return current.copy().where(exp.column("window_start").eq(exp.cast(literal(w.isoformat()), "TIMESTAMPTZ")))
        ref = only(before)
        profile = fit_reference(con, ref, spec.kind, spec.binning, value="x")
        results += compute_drift(con, [spec], only(now), profile=profile, reference=ref, value="x",
                                 window="window_start")
    return results


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _small(details: dict) -> dict:
    """Keep what a report needs from the engine's details (bins can be long for categorical features)."""
    return {k: v for k, v in details.items() if k not in ("bins",) or isinstance(v, (int, float))}
