"""Drift rules: a declared test on a feature, reference against every current window, with a threshold.

The statistics are plan statements (engine/monitor/rule_plan.py), run here through the executor; only the
p-values are a Python step. This module decides which samples are compared, feeds one statement's output to
the next as bound parameters (the reference profile: cut points, bin keys and counts), keeps the fitted
reference profiles in the store (fitted once per reference, not every run) and turns statistics into alerts: `threshold` (statistic above it), `p_value` (p below it) or `sigma` (statistic
above mean + k * std of the same statistic over the reference period's own windows).
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from engine import journal
from engine.monitor.binning import ReferenceProfile, bin_labels, categorical_profile
from engine.monitor.drift_plan import CompiledDrift, DriftResult, finish
from engine.monitor.rule_plan import CURRENT_TABLE, REFERENCE_TABLE, RulePlan, compile_rule
from engine.monitor.spec import DriftRuleSpec, MonitorSpec
from engine.monitor.sources import Periods, feature_relation, golden_relation, in_period, user_expression, TRACE_COLUMNS
from engine.provenance import canonical_json, content_hash, utc_now
from engine.backend import run_on
from engine.sql import Statement, literal, temp_table

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


# Each rule's samples are materialised once (the drift engine reads them several times) by two plan steps
# whose period bounds are bound parameters: what `flywheel compile monitor` prints is what runs.

def sample_statements(rule: DriftRuleSpec, spec: MonitorSpec, metrics_hashes: dict) -> list[Statement]:
    """`drift.<name>.current` and (unless the reference is the previous window) `drift.<name>.reference`."""
    name, feature = rule.name, spec.features[rule.feature]
    rel = feature_relation(spec.scope, feature, metrics_hashes)
    ts = exp.column("timestamp", quoted=True)
    current = rel.copy().where(in_period(ts.copy(), "cur_start", "cur_end"))
    statements = [Statement(f"drift.{name}.current", temp_table(CURRENT_TABLE, current), ("cur_start", "cur_end"),
                            f"{rule.test} on {rule.feature}: the current period's values")]
    ref_kind = spec.reference.kind
    if ref_kind == "golden":
        expr = user_expression(feature.expr, TRACE_COLUMNS, what="monitor feature expression")
        reference = exp.select(exp.alias_(literal(0), "window_start"), exp.alias_(expr, "x")).from_(
            golden_relation().subquery("t"))
        statements.append(Statement(f"drift.{name}.reference", temp_table(REFERENCE_TABLE, reference),
                                    ("golden_version",), "the reference sample: the golden dataset's latest version"))
    elif ref_kind != "previous":
        reference = rel.copy().where(in_period(ts.copy(), "ref_start", "ref_end"))
        statements.append(Statement(f"drift.{name}.reference", temp_table(REFERENCE_TABLE, reference),
                                    ("ref_start", "ref_end"), "the reference sample"))
    return statements


def rule_plan(rule: DriftRuleSpec, spec: MonitorSpec) -> RulePlan:
    """The rule's statistic statements (engine/monitor/rule_plan.py), as compiled from the config."""
    return compile_rule(rule.name, rule.definition, spec.reference.kind, rule.bound_kind == "sigma")


def _one(con, statement: Statement, params: dict | None = None) -> dict:
    return run_on(con, statement, params or {})[0]


def _fit(con, plan: RulePlan, params: dict) -> ReferenceProfile:
    """Fit the reference profile from the plan's statements (sizes, cut points, counts per bin)."""
    spec, st = plan.spec, plan.statements
    summary = _one(con, st["reference_summary"], params)
    n, n_missing = int(summary["n"]), int(summary["n_rows"]) - int(summary["n"])
    if not n:
        raise ValueError(f"the reference sample has no non-missing values ({n_missing} rows)")
    if spec.kind == "categorical":
        counts = {r["bin_key"]: int(r["c"]) for r in run_on(con, st["reference_bins"], params)}
        return categorical_profile(counts, n_missing)
    if plan.quantile_cuts:
        cuts = tuple(float(r["cut"]) for r in run_on(con, st["cut_points"], params))
    else:
        cuts = tuple(float(e) for e in spec.binning.edges) if spec.binning.method == "fixed" else ()
    counts = dict.fromkeys(range(len(cuts) + 1), 0)
    counts.update({int(r["bin_key"]): int(r["c"]) for r in run_on(con, st["reference_bins"], {**params,
                                                                                             "cuts": list(cuts)})})
    return ReferenceProfile("numeric", n, n_missing, tuple(counts), bin_labels(cuts), tuple(counts.values()),
                            spec.binning, cuts, summary["mean"], summary["std"], int(summary["n_distinct"]))


def _profile(con, plan: RulePlan, key_source: dict, feature_name: str) -> ReferenceProfile:
    """The stored profile for this exact reference (feature, definition, period and row count), else fit it."""
    st, spec = plan.statements, plan.spec
    n_rows = _one(con, st["reference_rows"])["n_rows"]
    key = content_hash({**key_source, "n_rows": n_rows, "kind": spec.kind, "binning": spec.binning.to_dict()}, 24)
    row = run_on(con, st["stored_profile"], {"profile_key": key})
    if row:
        return ReferenceProfile.from_dict(json.loads(row[0]["profile"]))
    profile = _fit(con, plan, {})
    run_on(con, st["store_profile"], {"profile_key": key, "feature": feature_name,
                                       "profile": canonical_json(profile.to_dict()), "created_at": utc_now()})
    return profile


def profile_params(profile: ReferenceProfile) -> dict:
    """The reference profile as the bound parameters of the bins and statistic statements."""
    return {"cuts": [float(c) for c in profile.cuts], "ref_keys": list(profile.keys),
            "ref_labels": list(profile.labels), "ref_counts": [int(c) for c in profile.counts]}


def _statistic(con, plan: RulePlan, profile: ReferenceProfile, params: dict, bins: str, statistic: str
               ) -> list[DriftResult]:
    """Bin the sample (`bins` statement), run the `statistic` statement, then the p-value step on its rows."""
    params = {**params, **profile_params(profile)}
    if bins in plan.statements:
        run_on(con, plan.statements[bins], params)
    if f"{statistic}_counted" in plan.statements and profile.n_distinct is not None \
            and profile.n_distinct * 10 <= profile.n:
        statistic += "_counted"
    rows = run_on(con, plan.statements[statistic], params)
    test = (statistic, *plan.test[1:])
    if plan.p_value is None:
        return finish(CompiledDrift({}, (test,)), {statistic: rows}, profile.n)
    with journal.step(plan.p_value.name):
        return finish(CompiledDrift({}, (test,)), {statistic: rows}, profile.n)


def evaluate_rule(con, rule: DriftRuleSpec, spec: MonitorSpec, written: dict, periods: Periods,
                  metrics_hashes: dict, golden_version: str | None) -> DriftRuleResult:
    """`written`: the monitor section as written, which keys the stored reference profiles (filling in defaults
    must not orphan the profiles stored before)."""
    name, test = rule.name, rule.definition.test
    kind = rule.bound_kind
    declared = {"kind": kind, "value": rule.bound}
    result = DriftRuleResult(name, rule.feature, test, rule.severity, declared, "ok", "")
    if periods.cur_start is None:
        result.status, result.message = "error", "no traces in scope: nothing to monitor"
        return result
    for statement in sample_statements(rule, spec, metrics_hashes):
        run_on(con, statement, {**periods.params(), "golden_version": golden_version})
    plan = rule_plan(rule, spec)
    try:
        if spec.reference.kind == "previous":
            rows = _previous_windows(con, plan)
        else:
            key = {"feature": written["features"][rule.feature], "reference": written.get("reference"),
                   "periods": periods.to_json(), "golden": golden_version, "model": written.get("model")}
            profile = _profile(con, plan, key, rule.feature)
            result.reference = {"n": profile.n, "n_missing": profile.n_missing, "labels": list(profile.labels),
                                "proportions": list(profile.proportions)}
            rows = _statistic(con, plan, profile, {}, "current_bins", "statistic")
            result.current = current_distribution(run_on(con, plan.statements["distribution"], {}), profile)
            if kind == "sigma":
                declared["bound"] = _sigma_bound(_statistic(con, plan, profile, {}, "reference_window_bins",
                                                            "reference_windows"), float(rule.bound))
    except ValueError as e:  # an empty reference, a constant feature for wasserstein, ...
        result.status, result.message = "error", f"cannot compute: {e}"
        return result
    bound = declared["bound"] if "bound" in declared else rule.bound  # (sigma: the bound found, if any)
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
        result.message = (f"{len(alerted)} of {len(result.windows)} windows drifted ({test} {op} "
                          f"{bound:.4g}), from {alerted[0]['window'][:16]}; worst {worst['window'][:16]}: "
                          f"{worst['statistic']:.4g}")
    else:
        result.message = f"no drift in {len(result.windows)} windows ({test}, bound {bound:.4g})"
    return result


def current_distribution(rows: list[dict], profile: ReferenceProfile) -> dict:
    """The current period's counts per bin key (the `distribution` statement) in the reference's bins, then any
    new categories, for reports."""
    counts = {(int(r["bin_key"]) if profile.kind == "numeric" else r["bin_key"]): int(r["c"]) for r in rows}
    keys = list(profile.keys) + sorted(k for k in counts if k not in set(profile.keys))
    labels = list(profile.labels) + [str(k) for k in keys[len(profile.keys):]]
    total = sum(counts.values())
    return {"n": total, "labels": labels,
            "proportions": [counts.get(k, 0) / total if total else 0.0 for k in keys]}


def _sigma_bound(per_window: list[DriftResult], k: float) -> float | None:
    values = [r.statistic for r in per_window if r.statistic is not None]
    if len(values) < 2:
        return None
    return statistics.fmean(values) + k * statistics.stdev(values)


def _previous_windows(con, plan: RulePlan) -> list[DriftResult]:
    """Each window against the window before it (reference kind `previous`): the profile is fitted per pair."""
    windows = [r["w"] for r in run_on(con, plan.statements["windows"], {})]
    results = []
    for before, now in zip(windows, windows[1:]):
        params = {"window": now, "previous_window": before}
        for r in _statistic(con, plan, _fit(con, plan, params), params, "current_bins", "statistic"):
            r.window = now
            results.append(r)
    return results


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _small(details: dict) -> dict:
    """Keep what a report needs from the engine's details (bins can be long for categorical features)."""
    return {k: v for k, v in details.items() if k not in ("bins",) or isinstance(v, (int, float))}


def rule_statistics(con, plan: RulePlan, profile: ReferenceProfile | None = None
                    ) -> tuple[ReferenceProfile, list[DriftResult]]:
    """The rule's statistic over the materialised samples as they are (fitting the profile unless given): what
    `evaluate_rule` runs, without the store or the thresholds (the tests hold it to scipy)."""
    profile = profile or _fit(con, plan, {})
    return profile, _statistic(con, plan, profile, {}, "current_bins", "statistic")
