"""Pure compilation: validated config -> Plan of named SQL statements. Never touches DuckDB."""
from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from engine import registry
from engine.errors import UserError
from engine.sql import Plan, Statement, literal, param, parse, temp_table
from engine.plan_memo import by_content

if TYPE_CHECKING:
    from engine.metrics.base import MetricSQL

# Every row the metrics see: a case of this run joined with the model's (cached) output for it (its key and
# fingerprint find the output's trajectory steps: engine/metrics/trajectory.py).
_SCORING_INPUT = """
SELECT rc.dataset, rc.dataset_version, rc.case_id, c.input_text, c.expected_answers, c.expected, c.context,
       c.tags, c.metadata, o.repeat, o.output_text, o.error, o.latency_ms, o.prompt_tokens,
       o.completion_tokens, o.cost, rc.output_key, r.model_fingerprint
FROM run_cases AS rc
JOIN cases AS c ON c.dataset_version = rc.dataset_version AND c.case_id = rc.case_id
JOIN runs AS r ON r.run_id = rc.run_id
JOIN outputs AS o ON o.model_fingerprint = r.model_fingerprint AND o.output_key = rc.output_key
WHERE rc.run_id = $run_id AND o.repeat < $repeats
"""


def metric_sql(name: str, spec: dict) -> MetricSQL:
    try:
        return registry.get("metric", spec["kind"]).fn(spec)
    except UserError as e:  # a kind rejecting its config (e.g. a bad `kind: sql` expression): name the place
        raise UserError(f"metrics.{name}: {e}") from e


# The plan's first statement materialises the run's scoring input once; every metric and report reads it
# (joining a million cases with their outputs once, not once per metric).
SCORING_TABLE = "run_scoring_input"


def scoring_join(spec: dict) -> exp.Select:
    """The scoring_input rows of a run that a metric's `datasets` selects, joined from the store's tables
    ($run_id, $repeats): self-contained, for a kind's Python prepare step."""
    source = parse(_SCORING_INPUT)
    datasets = spec.get("datasets") or []
    if datasets:
        source = source.where(exp.column("dataset", table="rc").isin(*[literal(d) for d in datasets]))
    return source


def scoring_source(spec: dict) -> exp.Select:
    """The rows of the materialised scoring input that a metric's `datasets` selects (the plan's first
    statement, `materialize:scoring_input`, must have run on the connection)."""
    source = exp.select(exp.Star()).from_(SCORING_TABLE)
    datasets = spec.get("datasets") or []
    if datasets:
        source = source.where(exp.column("dataset").isin(*[literal(d) for d in datasets]))
    return source


def materialize_statement() -> Statement:
    return Statement("materialize:scoring_input", temp_table(SCORING_TABLE, parse(_SCORING_INPUT)),
                     ("run_id", "repeats"), "the run's cases with the model's outputs, read by every metric below")


def tag_scope(spec: dict) -> exp.Expression | None:
    """The metric's `tags` (a case with any of them) and `exclude_tags` (a case with none of them) as a
    condition on a row's `tags`; None when the metric scores every tag."""
    conditions = []
    if spec.get("tags"):
        conditions.append(exp.func("list_has_any", exp.column("tags"), literal(list(spec["tags"]))))
    if spec.get("exclude_tags"):
        conditions.append(exp.Not(this=exp.func("list_has_any", exp.column("tags"),
                                                literal(list(spec["exclude_tags"])))))
    return exp.and_(*conditions) if conditions else None


def scope_condition(name: str, spec: dict, m: MetricSQL | None = None) -> exp.Expression | None:
    """Which rows of a scoring_input-shaped relation a metric applies to: its tag scope and its kind's `where`
    (from `m`, the metric's SQL when the caller has it already: building it again can cost more than the rest).
    Other rows get no score row at all (neither passed nor failed, not counted in n)."""
    where = (m if m is not None else metric_sql(name, spec)).where
    conditions = [c for c in (tag_scope(spec), where) if c is not None]  # exp.and_ copies them
    return exp.and_(*conditions) if conditions else None


def in_scope(name: str, spec: dict, source: exp.Select) -> exp.Subquery:
    """`source` (scoring_input-shaped) restricted to the rows the metric applies to, as a subquery."""
    condition = scope_condition(name, spec)
    if condition is None:
        return source.subquery("scoring_input")
    return exp.select(exp.Star()).from_(source.subquery("scoring_input")).where(condition).subquery("scoring_input")


def scoring_rows(name: str, spec: dict, columns: tuple[str, ...]) -> Statement:
    """The rows a metric will score, for a kind's Python prepare step (its scope and `where` applied)."""
    select = exp.select(*[exp.column(c) for c in columns]).from_(scoring_join(spec).subquery("scoring_input"))
    condition = scope_condition(name, spec)
    if condition is not None:
        select = select.where(condition)
    return Statement("scoring_rows", select, ("run_id", "repeats"))


def default_aggregate(spec: dict) -> str:
    return spec.get("aggregate") or registry.get("metric", spec["kind"]).fn.default_aggregate


def scored_select(name: str, spec: dict, source: exp.Select) -> exp.Select:
    """A metric applied to any relation shaped like scoring_input (a run's cases, or production traces):
    its rows with `value`, `passed` and `detail` computed. An errored row fails unless the kind scores errors.

    The metric's expressions and `source` are copied once here; the builders below then take them as they are
    (copy=False): a metric's value can be a large tree (SQuAD's), and each builder would copy it again."""
    m = metric_sql(name, spec)
    if m.passed is not None:
        passed = m.passed.copy()
    elif "threshold" in spec:
        passed = exp.GTE(this=exp.column("value"), expression=literal(float(spec["threshold"])))
    else:
        passed = exp.EQ(this=exp.column("value"), expression=literal(1.0))
    detail = m.detail.copy() if m.detail is not None else exp.Null()
    rows = source.copy().subquery("scoring_input", copy=False)
    if m.bindings:  # the kind's per-row columns, computed once in a projection of their own
        rows = exp.select(exp.Star(), *[exp.alias_(e.copy(), name, copy=False) for name, e in m.bindings],
                          copy=False).from_(rows, copy=False).subquery("scoring_input", copy=False)
    valued = exp.select(exp.Star(), exp.alias_(m.value.copy(), "value", copy=False),
                        exp.alias_(detail, "metric_detail", copy=False), copy=False).from_(rows, copy=False)
    condition = scope_condition(name, spec, m)
    if condition is not None:
        valued = valued.where(condition, copy=False)
    not_errored = exp.column("error").is_(exp.null())
    errored = exp.Not(this=not_errored.copy())
    if m.applies_to_errors:
        final_passed = exp.func("coalesce", passed, literal(False), copy=False)
        final_detail = exp.column("metric_detail")
    else:
        final_passed = exp.and_(not_errored, exp.func("coalesce", passed, literal(False), copy=False), copy=False)
        final_detail = exp.Case().when(errored, exp.DPipe(this=literal("errored: "), expression=exp.column("error")),
                                       copy=False).else_(exp.column("metric_detail"), copy=False)
    return exp.select(
        exp.column("dataset"), exp.column("dataset_version"), exp.column("case_id"), exp.column("repeat"),
        exp.column("value"), exp.alias_(final_passed, "passed", copy=False),
        exp.alias_(final_detail, "detail", copy=False), copy=False,
    ).from_(valued.subquery("valued", copy=False), copy=False)


def _score_statement(name: str, spec: dict) -> Statement:
    rows = scored_select(name, spec, scoring_source(spec)).subquery("scored", copy=False)
    select = exp.select(param("run_id"), "dataset", "dataset_version", "case_id", "repeat", literal(name), "value",
                        "passed", "detail", copy=False).from_(rows, copy=False)
    insert = exp.insert(select, "scores", columns=["run_id", "dataset", "dataset_version", "case_id", "repeat",
                                                    "metric", "value", "passed", "detail"], copy=False)
    return Statement(f"score:{name}", insert, ("run_id",), registry.get("metric", spec["kind"]).description)


_AGGREGATES = """count(*) AS n, avg(value) AS mean, avg(CASE WHEN passed THEN 1.0 ELSE 0.0 END) AS pass_rate,
       quantile_cont(value, 0.5) AS p50, quantile_cont(value, 0.95) AS p95, quantile_cont(value, 0.99) AS p99,
       sum(value) AS sum, max(value) AS max"""

# Overall rows (tag NULL) and per-tag rows are separate groupings: a case with two tags counts once overall.
_SUMMARY = f"""
WITH run_scores AS (SELECT * FROM scores WHERE run_id = $run_id),
tagged AS (
  SELECT s.*, unnest(c.tags) AS tag
  FROM run_scores AS s JOIN cases AS c ON c.dataset_version = s.dataset_version AND c.case_id = s.case_id
)
SELECT dataset, metric, NULL::VARCHAR AS tag, {_AGGREGATES} FROM run_scores GROUP BY dataset, metric
UNION ALL
SELECT dataset, metric, tag, {_AGGREGATES} FROM tagged GROUP BY dataset, metric, tag
ORDER BY dataset, metric, tag NULLS FIRST
"""


@by_content
def compile_evaluate(metrics: dict[str, dict]) -> Plan:
    """The run's scoring input materialised once, one INSERT per metric into `scores`, the kinds' dataset-level
    reports, then the summary per dataset, metric and capability tag."""
    statements = [materialize_statement()] + [_score_statement(name, spec) for name, spec in metrics.items()]
    # Dataset-level reports of some kinds (a confusion matrix), over the scores just written.
    for name, spec in metrics.items():
        report = registry.get("metric", spec["kind"]).fn.dataset_report
        if report is not None:
            statements.append(report(name, spec))
    statements.append(Statement("summary", parse(_SUMMARY), ("run_id",),
                                "each metric per dataset, overall (tag NULL) and per capability tag"))
    return Plan("evaluate", tuple(statements))
