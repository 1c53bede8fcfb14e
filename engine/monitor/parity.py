"""Prod-lab parity: does the live behaviour of a deployed model version match what the lab measured?

Lab: the pass rate of `lab_metric` in the model version's latest stored run (matched by fingerprint =
trace model_version, else by model name), overall and per capability tag. Live, over the current period:
* `live: feedback` — among traces with a rating or a thumb (given whatever the answer, so the sample is not
  biased towards failures), a trace passes unless any of its feedback is negative (feedback.score < 0.5;
  a correction or a ticket always is);
* `live: online` — the pass rate of the same metric in the online (live) scores.
Both come with 95% Wilson intervals. The gap is lab - live; an alert fires when it exceeds `tolerance`, and the
slices (trace topic = lab tag) with the largest gaps are named.

No live judgement in the current period (no feedback on a monitored trace, feedback keyed by ids that match no
trace, no live score) gives one result with status `no_data`: an alert, whatever the severity, never a silently
missing section. With `live: feedback`, the result carries the join coverage of the scored feedback.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from engine.monitor.joins import Coverage, coverage_statement
from engine.monitor.sources import traces_in_scope, with_resolved_feedback
from engine.monitor.spec import ParitySpec, Scope
from engine.outcome import wilson  # noqa: F401  (the parity intervals; tests import it from here)
from engine.sql import Statement, parse
from engine.plan_memo import by_content

MIN_SLICE = 20  # a slice with fewer live judgements is reported but never named as the cause


# The model version's latest lab run scored with the metric: by fingerprint first, else by model name.
LAB_RUN = parse("""
SELECT run_id FROM runs
WHERE status = 'ok' AND (model_fingerprint = $model_version OR model_name = $model_name)
  AND EXISTS (SELECT 1 FROM scores AS s WHERE s.run_id = runs.run_id AND s.metric = $lab_metric)
ORDER BY (model_fingerprint = $model_version) DESC NULLS LAST, finished_at DESC
LIMIT 1""")

LAB_SCORES = parse("""
SELECT NULL::VARCHAR AS slice, count(*) AS n, count(*) FILTER (WHERE passed) AS k
FROM scores WHERE run_id = $run_id AND metric = $lab_metric
UNION ALL
SELECT t.tag AS slice, count(*) AS n, count(*) FILTER (WHERE s.passed) AS k
FROM scores AS s
JOIN (SELECT dataset_version, case_id, unnest(tags) AS tag FROM cases) AS t
  ON t.dataset_version = s.dataset_version AND t.case_id = s.case_id
WHERE s.run_id = $run_id AND s.metric = $lab_metric
GROUP BY t.tag""")


def live_judgements(scope: Scope, check: ParitySpec) -> exp.Select:
    """One row per judged trace in the current period: model_version, slice, window, passed."""
    traces = traces_in_scope(scope).subquery("t")
    slice_col = exp.column(check.slice, table="t")
    if check.live == "feedback":
        # Only traces with a rating or a thumb count as judged: users give those whether the answer was right or
        # wrong, while corrections and tickets come mostly after wrong answers and would bias the sample. A
        # judged trace fails when any of its feedback is negative, corrections and tickets included.
        judged = with_resolved_feedback(parse("""
            SELECT f.trace_id, min(f.score) >= 0.5 AS passed FROM feedback AS f
            WHERE f.score IS NOT NULL GROUP BY f.trace_id
            HAVING bool_or(f.kind IN ('rating', 'thumbs'))"""))
    else:
        judged = parse("SELECT trace_id, passed FROM live_scores WHERE metric = $lab_metric "
                       "AND metrics_hash = $lab_metric_hash")
    return (exp.select(exp.alias_(exp.column("model_version", table="t"), "model_version"),
                       exp.alias_(exp.column("model", table="t"), "model_name"),
                       exp.alias_(slice_col, "slice"), exp.column("window_start", table="t"),
                       exp.column("passed", table="j"))
            .from_(traces)
            .join(judged.subquery("j"), on="j.trace_id = t.trace_id", join_type="inner")
            .where(parse('SELECT t."timestamp" >= $cur_start AND t."timestamp" < $cur_end').expressions[0]))


@by_content
def live_statement(check: ParitySpec, scope: Scope) -> Statement:
    rows = live_judgements(scope, check).subquery("l")
    select = parse("""
        SELECT model_version, any_value(model_name) AS model_name, slice, window_start,
               count(*) AS n, count(*) FILTER (WHERE passed) AS k
        FROM (SELECT 1) AS l
        GROUP BY GROUPING SETS ((model_version), (model_version, slice), (model_version, window_start))
        ORDER BY model_version, slice NULLS FIRST, window_start NULLS FIRST""").from_(rows)
    return Statement(f"parity.{check.name}.live", select, ("cur_start", "cur_end", "lab_metric", "lab_metric_hash"),
                     "live pass rates per model version, slice and window")


@by_content
def coverage_of(check: ParitySpec, scope: Scope) -> Statement | None:
    """The join coverage of the feedback that can judge a trace (feedback with a score), for `live: feedback`."""
    if check.live != "feedback":
        return None
    return coverage_statement(f"parity.{check.name}.coverage", "feedback", scope, "score IS NOT NULL")


@dataclass
class ParityResult:
    name: str
    model: str | None
    model_version: str | None
    severity: str
    tolerance: float
    status: str  # ok | alert | error | no_data
    message: str
    lab: dict = field(default_factory=dict)  # rate, ci, n, run_id
    live: dict = field(default_factory=dict)
    gap: float | None = None
    slices: list[dict] = field(default_factory=list)  # per slice: lab, live, gap (largest first)
    windows: list[dict] = field(default_factory=list)  # live rate per window
    lab_metric: str | None = None
    live_source: str = "feedback"  # where the live rate comes from: feedback | online (the check's `live`)
    coverage: dict | None = None  # live: feedback: the join coverage of the scored feedback
    join_warning: str | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _rate(k, n) -> dict:
    low, high = wilson(k, n)
    return {"rate": (k / n) if n else None, "ci": [low, high], "n": int(n), "k": int(k)}


def judge(check: ParitySpec, live_rows: list[dict], lab_lookup, coverage: Coverage | None = None,
          min_share: float = 0.9, model: str | None = None) -> list[ParityResult]:
    """One result per model version seen live (none seen: one no_data result). `lab_lookup(name, version)` ->
    (run_id, rows) or None."""
    name, tolerance, severity = check.name, check.tolerance, check.severity
    warning = coverage.warning(min_share) if coverage is not None else None
    if not live_rows:
        result = ParityResult(name, model, None, severity, tolerance, "no_data", _no_live(check, coverage),
                              coverage=coverage.to_json() if coverage else None, join_warning=warning)
        return [result]
    out = []
    versions = sorted({r["model_version"] for r in live_rows}, key=str)
    for version in versions:
        rows = [r for r in live_rows if r["model_version"] == version]
        overall = next(r for r in rows if r["slice"] is None and r["window_start"] is None)
        model_name = overall["model_name"]
        result = ParityResult(name, model_name, version, severity, tolerance, "ok", "",
                              lab_metric=check.lab_metric, live_source=check.live,
                              coverage=coverage.to_json() if coverage else None, join_warning=warning)
        result.live = _rate(overall["k"], overall["n"])
        result.windows = [{"window": r["window_start"].isoformat(), **_rate(r["k"], r["n"])}
                          for r in rows if r["window_start"] is not None]
        lab = lab_lookup(model_name, version)
        if lab is None:
            result.status = "error"
            result.message = (f"no lab run of {model_name} ({version}) scored with '{check.lab_metric}': "
                              f"run `flywheel evaluate model={model_name}` (or gate it) in this project")
            out.append(result)
            continue
        run_id, lab_rows = lab
        lab_overall = next(r for r in lab_rows if r["slice"] is None)
        result.lab = {**_rate(lab_overall["k"], lab_overall["n"]), "run_id": run_id}
        result.gap = result.lab["rate"] - result.live["rate"] if result.lab["rate"] is not None else None
        lab_by_slice = {r["slice"]: r for r in lab_rows if r["slice"] is not None}
        for r in rows:
            if r["slice"] is None or r["window_start"] is not None or r["slice"] not in lab_by_slice:
                continue
            lab_slice = lab_by_slice[r["slice"]]
            live_rate, lab_rate = _rate(r["k"], r["n"]), _rate(lab_slice["k"], lab_slice["n"])
            result.slices.append({"slice": r["slice"], "lab": lab_rate, "live": live_rate,
                                  "gap": lab_rate["rate"] - live_rate["rate"]})
        result.slices.sort(key=lambda s: -s["gap"])
        named = [s for s in result.slices if s["live"]["n"] >= MIN_SLICE and s["gap"] > tolerance][:3]
        summary = (f"lab {result.lab['rate']:.1%} vs live {result.live['rate']:.1%} "
                   f"(gap {result.gap:+.1%}, tolerance {tolerance:.0%})")
        if result.gap is not None and result.gap > tolerance:
            result.status = "alert"
            where = ", ".join(f"{s['slice']} {s['lab']['rate']:.0%}->{s['live']['rate']:.0%}" for s in named)
            result.message = summary + (f"; largest gaps: {where}" if where else "")
        else:
            result.message = summary
        out.append(result)
    return out


def _no_live(check: ParitySpec, coverage: Coverage | None) -> str:
    if check.live != "feedback":
        return (f"no data: no live score of '{check.lab_metric}' on a monitored trace in the current period "
                f"(is it in monitor.online.metrics, and online.rate > 0?)")
    if coverage is None or coverage.records == 0:
        return "no data: no scored feedback (rating, thumbs) in the current period"
    if coverage.matched == 0:
        return (f"no data: none of the {coverage.records:,} scored feedback record(s) of the current period names a "
                f"monitored trace ({coverage.unmatched_ids:,} unmatched id(s), e.g. {', '.join(coverage.examples)})")
    return (f"no data: {coverage.matched:,} scored feedback record(s) name a monitored trace, but none is a rating "
            f"or a thumb on a trace of the current period")
