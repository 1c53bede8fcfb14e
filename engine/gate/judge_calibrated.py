"""The `judge_calibrated` gate rule: a decision may rest on an llm_judge metric only while that judge agrees with
people, as measured by `flywheel judges calibrate` for the judge exactly as it graded the two runs.

Why a rule kind of its own rather than an option on every rule over a judge metric: the calibration check reads
other tables (judgements, judge_calibrations) and has its own value, bound and message; as a rule it shows up in
every report line by line ("kappa 0.21 on troubleshooting over 40 labels, configured to block below 0.6"), is
compiled by `flywheel compile gate`, and one check covers every rule over the same metric and tags. What the
option would have given (no way to forget it) comes from the config check below: a blocking rule over an
llm_judge metric that no blocking judge_calibrated rule covers is a config error, so a decision can never rest
on an unchecked judge by omission. `allow_uncalibrated: true` is the one explicit way to accept a judge with no
calibration for its current fingerprint.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from sqlglot import exp

from engine.gate.rules import COMMON, RuleContext, RuleResult, RuleSQL, _result, rule_kind
from engine.gate.spec import Options, RuleSpec
from engine.judges.fingerprint import changed_parts, judge_fingerprint
from engine.metrics.judge import metric_key
from engine.sql import literal, parse
from engine.config_checks import checker
from engine.specs import with_defaults

ALL = "*"


def _judged_query(spec: dict) -> exp.Expression:
    """The judge models that graded the metric in the two runs (normally one)."""
    return parse("SELECT judge_fingerprint AS model_fingerprint, count(*) AS n FROM judgements "
                 "WHERE run_id IN ($baseline_run, $challenger_run) AND metric_key = '__key__' "
                 "GROUP BY 1 ORDER BY 1").transform(
        lambda n: literal(metric_key(spec)) if isinstance(n, exp.Literal) and n.this == "__key__" else n)


def _calibrations_query(metric: str, slices: list[str]) -> exp.Expression:
    """The latest calibration of each (judge fingerprint, slice) of the metric, with its age in days (from
    milliseconds: date_diff('second') counts whole seconds, so a calibration made in the gate's own second had
    age 0 and passed any max_age_days)."""
    return parse("""
        SELECT judge_fingerprint, judge_model_fingerprint, rubric_hash, params, slice, n_labels, kappa, kappa_low,
               kappa_high, accuracy, calibration_id, calibrated_at,
               (epoch_ms(now()) - epoch_ms(calibrated_at)) / 86400000.0 AS age_days
        FROM judge_calibrations WHERE metric = '__metric__' AND list_contains(__slices__, slice)
        QUALIFY row_number() OVER (PARTITION BY judge_fingerprint, slice ORDER BY calibrated_at DESC) = 1
        ORDER BY slice, calibrated_at DESC""").transform(
        lambda n: literal(metric) if isinstance(n, exp.Literal) and n.this == "__metric__"
        else literal(slices) if isinstance(n, exp.Column) and n.name == "__slices__" else n)


def _slice_name(s: str) -> str:
    return "all labels" if s == ALL else s


def _check_slice(s: str, current, calibrations: list[dict], o: "JudgeCalibratedOptions"
                 ) -> tuple[str, float | None, str]:
    """(outcome: ok | fail | uncalibrated, statistic, message) for one slice."""
    statistic, bound, min_labels = o.statistic, float(o.min_kappa), int(o.min_labels)
    mine = [c for c in calibrations if c["slice"] == s and c["judge_fingerprint"] == current.fingerprint]
    if not mine:
        older = [c for c in calibrations if c["slice"] == s]
        if older:
            last = max(older, key=lambda c: c["calibrated_at"])
            last = {**last, "params": json.loads(last["params"]) if isinstance(last["params"], str) else last["params"]}
            what = " and ".join(changed_parts(last, current))
            return "uncalibrated", None, (f"{_slice_name(s)}: stale calibration: the {what} changed since "
                                          f"{last['calibration_id']} (judge {last['judge_fingerprint']} then, "
                                          f"{current.fingerprint} now); run `flywheel judges calibrate`")
        return "uncalibrated", None, (f"{_slice_name(s)}: judge {current.fingerprint} was never calibrated"
                                      + ("" if s == ALL else " on this tag (no labelled answer carries it)"))
    c = mine[0]
    value = c["kappa_low"] if statistic == "kappa_low" else c["kappa"]
    where = f"{_slice_name(s)}: {statistic} " + ("undefined" if value is None else f"{value:.3f}")
    labels = f"{c['n_labels']} labels"
    if c["n_labels"] < min_labels:
        return "fail", value, f"{where}, {labels}: too few labels (need {min_labels})"
    if value is None:
        return "fail", None, f"{where}, {labels}: people or judge gave one verdict to everything"
    if o.max_age_days is not None and c["age_days"] > float(o.max_age_days):
        return "fail", value, f"{where}, {labels}: calibrated {c['age_days']:.0f} days ago (max {o.max_age_days:g})"
    if value < bound:
        return "fail", value, f"{where} < {bound:g} ({labels})"
    return "ok", value, f"{where} ({labels})"


@dataclass(frozen=True)
class JudgeCalibratedOptions(Options):
    min_kappa: float
    statistic: str  # kappa | kappa_low
    min_labels: int
    max_age_days: float | None  # None: no age limit
    allow_uncalibrated: bool


@rule_kind("judge_calibrated", {
    "min_kappa": {"type": "number", "minimum": -1, "maximum": 1,
                  "description": "the least Cohen's kappa between the judge and people, per slice"},
    "statistic": {"enum": ["kappa", "kappa_low"], "default": "kappa",
                  "description": "kappa, or the lower bound of its bootstrap interval (stricter with few labels)"},
    "min_labels": {"type": "integer", "minimum": 1, "default": 30, "description": "labelled answers a slice needs"},
    "max_age_days": {"type": "number", "exclusiveMinimum": 0,
                     "description": "a calibration older than this blocks (unset: no age limit)"},
    "allow_uncalibrated": {"type": "boolean", "default": False,
                           "description": "pass when the judge has no calibration for its current fingerprint "
                                          "(never a bad one); false: fail closed"}},
    required=("metric", "min_kappa"), options=JudgeCalibratedOptions)
def judge_calibrated(rule: RuleSpec, reducer: str, aggregate: str, metrics: dict | None = None) -> RuleSQL:
    """The llm_judge metric's judge agrees with human labels: the latest calibration of the judge as it graded
    both runs (model, rubric, threshold) has kappa >= min_kappa over >= min_labels labels, overall or on each of
    the rule's tags. A changed model or rubric makes the calibration stale; stale or missing blocks unless
    allow_uncalibrated is true."""
    spec = (metrics or {}).get(rule.metric) or {}
    slices = list(rule.tags) or [ALL]
    o = rule.options

    def judge(rows: dict[str, list[dict]], ctx: RuleContext) -> RuleResult:
        bound = (f"{o.statistic} >= {float(o.min_kappa):g} over >= {int(o.min_labels)} labels"
                 + (", uncalibrated allowed" if o.allow_uncalibrated else ""))
        if spec.get("kind") != "llm_judge":
            return _result(ctx, "error", None, bound, f"'{rule.metric}' is not an llm_judge metric")
        judged = rows["judged"]
        if not judged:
            return _result(ctx, "error", None, bound, f"no judgements of '{rule.metric}' in these runs: the "
                                                       "judge did not grade them, so its calibration cannot apply")
        if len(judged) > 1:
            return _result(ctx, "error", None, bound, "the two runs were graded by different judge models ("
                           + ", ".join(j["model_fingerprint"] for j in judged) + "): not one judge to vouch for")
        current = judge_fingerprint(judged[0]["model_fingerprint"], spec)
        outcomes = [(s, *_check_slice(s, current, rows["calibrations"], o)) for s in slices]
        values = [v for _, o, v, _ in outcomes if v is not None]
        latest = {c["slice"]: c["calibration_id"] for c in rows["calibrations"]
                  if c["judge_fingerprint"] == current.fingerprint}
        stats = {"judge_fingerprint": current.fingerprint, "slices": [
            {"slice": s, "outcome": o, "value": v, "message": m, "calibration_id": latest.get(s)}
            for s, o, v, m in outcomes]}
        failed = [m for _, o, _, m in outcomes if o == "fail"]
        uncalibrated = [m for _, o, _, m in outcomes if o == "uncalibrated"]
        allowed = bool(o.allow_uncalibrated)
        ok = not failed and (not uncalibrated or allowed)
        messages = failed + uncalibrated + [m for _, o, _, m in outcomes if o == "ok"]
        if uncalibrated and allowed:
            messages.append("uncalibrated judge accepted: the policy says allow_uncalibrated")
        return _result(ctx, "pass" if ok else "fail", min(values) if values else None, bound, "; ".join(messages),
                       stats=stats)

    return RuleSQL({"judged": _judged_query(spec), "calibrations": _calibrations_query(rule.metric, slices)}, judge)


@checker(section="gate")
def check_judge_rules(composed, add) -> None:
    """judge_calibrated rules name llm_judge metrics; every blocking rule over an llm_judge metric is covered by a
    blocking judge_calibrated rule on the same metric (on each of its tags; without tags, on all labels)."""
    cfg = composed.config
    metrics = cfg.get("metrics") or {}
    # the rules as written, with the options every kind has filled in (this check runs on unvalidated config)
    rules = {n: with_defaults({"properties": COMMON}, r)
             for n, r in (((cfg.get("gate") or {}).get("rules")) or {}).items() if isinstance(r, dict)}
    judges = {n for n, s in metrics.items() if isinstance(s, dict) and s.get("kind") == "llm_judge"}
    guards = [r for r in rules.values() if r.get("kind") == "judge_calibrated"]
    for name, rule in rules.items():
        where = f"gate.rules.{name}"
        if rule.get("kind") == "judge_calibrated":
            if rule.get("metric") in metrics and rule["metric"] not in judges:
                add(f"{where}.metric", f"'{rule['metric']}' is a {metrics[rule['metric']].get('kind')} metric; "
                                       f"judge_calibrated checks llm_judge metrics ({', '.join(sorted(judges)) or 'none selected'})")
            if rule.get("datasets"):
                add(f"{where}.datasets", "a calibration is per judge and tag, not per dataset: scope it with tags")
            continue
        if rule.get("metric") not in judges or rule["severity"] != "blocking":
            continue
        covering = [g for g in guards if g.get("metric") == rule["metric"] and g["severity"] == "blocking"]
        tags = list(rule.get("tags") or [])
        covered_tags = {t for g in covering for t in (g.get("tags") or [])}
        if tags:
            missing = [t for t in tags if t not in covered_tags]
        else:
            missing = [] if any(not g.get("tags") for g in covering) else ["(all labels)"]
        if missing:
            scope = f", tags: [{', '.join(missing)}]" if tags else ""
            add(where, f"this blocking rule rests on the llm_judge metric '{rule['metric']}', and no blocking "
                       f"judge_calibrated rule checks that judge{' on ' + ', '.join(missing) if tags else ''} "
                       f"(fail closed); add one: {{kind: judge_calibrated, metric: {rule['metric']}{scope}, "
                       f"min_kappa: 0.6}}, with allow_uncalibrated: true to accept an uncalibrated judge knowingly")
