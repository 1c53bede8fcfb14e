"""Per-capability summary of a gate's two runs: what the HTML report's metric bars are drawn from.

Reports read results only, so the gate command calls `per_tag_summary` once, while the store is open, and
stores its plain output in the gate result (`per_tag`). For every metric, every capability tag (and all
cases, `tag: null`) and each side (baseline, challenger) it gives the number of cases, the mean metric value
with a 95 % confidence interval, and the pass rate.

Confidence intervals:
* **Wilson score interval** when every value in the cell is 0 or 1 (a pass/fail metric: the mean is a
  proportion). It stays inside [0, 1] and behaves at 0 % and 100 %, where the normal approximation collapses.
* **Normal approximation** otherwise: mean ± z · s / √n with the sample standard deviation s (n ≥ 2;
  with a single value there is no interval).
Repeats of one case (flaky models) are first averaged per case, and a case passes by the gate's reducer.
Errored cases count in `n` and fail; a NULL value is left out of the mean.

Each cell also carries the per-case value's p50, p95, p99, max and sum (computed as the gate's `threshold`
rule computes them, `quantile_cont` over per-case values), so a report can chart the aggregate a threshold
rule checks (p95 latency per tag against the rule's bound), and `metrics` gives each metric's kind, declared
aggregate and unit (latency in ms, tokens, ...) for axis labels.
"""
from __future__ import annotations

import math

import duckdb
from sqlglot import exp

from engine.executor import execute
from engine.outcome import Z95, wilson
from engine.sql import Statement, parse, parse_expression

QUANTILES = ("p50", "p95", "p99", "max", "sum")

# Reducers of one case's repeats to one pass/fail (the gate's `reducer` option).
REDUCERS = {
    "all": "bool_and(s.passed)",
    "majority": "avg(CASE WHEN s.passed THEN 1.0 ELSE 0.0 END) > 0.5",
    "any": "bool_or(s.passed)",
}

# Sides come from a small table joined on run_id (not a CASE on it), so a run gated against itself still gets
# both sides; the IN filter lets DuckDB skip other runs' row groups.
_TEMPLATE = """
WITH sides AS (
    SELECT * FROM (VALUES ('baseline', $baseline_run), ('challenger', $challenger_run)) AS v(side, run_id)
), per_case AS (
    SELECT sd.side, s.metric, s.dataset_version, s.case_id, avg(s.value) AS value, __reduced__ AS passed
    FROM sides AS sd
    JOIN scores AS s ON s.run_id = sd.run_id
    WHERE s.run_id IN ($baseline_run, $challenger_run)
    GROUP BY sd.side, s.metric, s.dataset_version, s.case_id
), cells AS (
    SELECT pc.side, pc.metric, unnest(c.tags) AS tag, pc.value, pc.passed
    FROM per_case AS pc
    JOIN cases AS c ON c.dataset_version = pc.dataset_version AND c.case_id = pc.case_id
    UNION ALL
    SELECT pc.side, pc.metric, NULL AS tag, pc.value, pc.passed FROM per_case AS pc
)
SELECT side, metric, tag,
       count(*) AS n,
       count(value) AS n_valued,
       avg(value) AS mean_value,
       stddev_samp(value) AS sd_value,
       coalesce(bool_and(value = 0 OR value = 1), FALSE) AS is_binary,
       avg(CASE WHEN passed THEN 1.0 ELSE 0.0 END) AS pass_rate,
       quantile_cont(value, 0.5) AS p50, quantile_cont(value, 0.95) AS p95, quantile_cont(value, 0.99) AS p99,
       max(value) AS max, sum(value) AS sum
FROM cells
GROUP BY side, metric, tag
ORDER BY metric, tag NULLS FIRST, side
"""


def per_tag_statement(reducer: str = "all") -> Statement:
    """The one query behind the summary (parameters $baseline_run, $challenger_run)."""
    tree = parse(_TEMPLATE).transform(
        lambda n: parse_expression(REDUCERS[reducer]) if isinstance(n, exp.Column) and n.name == "__reduced__"
        else n)
    return Statement("per_tag_summary", tree, ("baseline_run", "challenger_run"),
                     "per metric, capability tag and side: n, mean, spread and pass rate")


def wilson_interval(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion p observed on n trials."""
    if n <= 0:
        return (math.nan, math.nan)
    return wilson(p * n, n, z)


def normal_interval(mean: float, sd: float | None, n: int, z: float = Z95) -> tuple[float, float] | None:
    """mean ± z · sd / √n, or None when there is no spread estimate (n < 2)."""
    if n < 2 or sd is None or math.isnan(sd):
        return None
    half = z * sd / math.sqrt(n)
    return (mean - half, mean + half)


def summarise_row(row: dict) -> dict:
    """One query row -> one plain summary cell with its confidence interval."""
    mean, n_valued = row["mean_value"], row["n_valued"]
    cell = {"metric": row["metric"], "tag": row["tag"], "side": row["side"], "n": row["n"],
            "mean": mean, "ci_low": None, "ci_high": None, "method": None, "pass_rate": row["pass_rate"],
            **{k: (float(row[k]) if row[k] is not None else None) for k in QUANTILES}}
    if mean is None:
        return cell
    if row["is_binary"]:
        interval, cell["method"] = wilson_interval(mean, n_valued), "wilson"
    else:
        interval, cell["method"] = normal_interval(mean, row["sd_value"], n_valued), "normal"
    if interval is not None:
        cell["ci_low"], cell["ci_high"] = interval
    return cell


def metric_unit(spec: dict) -> str | None:
    """The unit of a metric's values, for axis labels: None for scores and rates (0..1 or counts of cases)."""
    kind = spec.get("kind")
    if kind == "latency":
        return "ms"
    if kind == "tokens":
        return "tokens"
    if kind == "output_length":
        return spec.get("unit", "characters")
    if kind == "cost":
        return "cost units"
    return None


def per_tag_summary(con: duckdb.DuckDBPyConnection, baseline_run: str, challenger_run: str,
                    reducer: str = "all", metrics: dict | None = None) -> dict:
    """Metric x tag x side summary of two stored runs (plain, JSON-serialisable; see the module docstring).

    `metrics`: the metric config, to describe each metric (kind, declared aggregate, unit) in the summary."""
    from engine.compiler import default_aggregate

    rows = execute(con, per_tag_statement(reducer), {"baseline_run": baseline_run, "challenger_run": challenger_run})
    summary = {"confidence": 0.95, "rows": [summarise_row(r) for r in rows]}
    if metrics:
        summary["metrics"] = {name: {"kind": spec["kind"], "aggregate": default_aggregate(spec),
                                     "unit": metric_unit(spec)} for name, spec in metrics.items()}
    return summary
