"""SQL building blocks of the gate: per-case scores of the two runs, reduced over repeats, paired, scoped.

Runs are bound parameters ($baseline_run, $challenger_run); metric names and scopes are validated config
values that enter as escaped literals.
"""
from __future__ import annotations

from sqlglot import exp

from engine.gate.spec import RuleSpec
from engine.sql import literal, parse

REDUCERS = {
    # repeats of one case -> one pass/fail
    "all": "bool_and(passed)",
    "majority": "avg(CASE WHEN passed THEN 1.0 ELSE 0.0 END) > 0.5",
    "any": "bool_or(passed)",
}


CASE_SCORES = "gate_case_scores"


def prepare(reducer: str, repeated: bool) -> exp.Expression:
    """Materialise both runs' per-case scores once (with the case's tags): every rule then reads this temp
    table instead of rescanning `scores`. With repeats, rows are reduced per case (mean value, the declared
    pass reducer, flakiness); without, the cheaper plan skips the GROUP BY."""
    if not repeated:
        return parse(f"""
            CREATE OR REPLACE TEMP TABLE {CASE_SCORES} AS
            SELECT s.run_id, s.metric, s.dataset, s.dataset_version, s.case_id, s.value, s.passed,
                   FALSE AS flaky, 1 AS repeats, s.detail, c.tags
            FROM scores AS s
            JOIN cases AS c ON c.dataset_version = s.dataset_version AND c.case_id = s.case_id
            WHERE s.run_id IN ($baseline_run, $challenger_run)
        """)
    return parse(f"""
        CREATE OR REPLACE TEMP TABLE {CASE_SCORES} AS
        SELECT s.run_id, s.metric, s.dataset, s.dataset_version, s.case_id,
               avg(s.value) AS value,
               {REDUCERS[reducer]} AS passed,
               bool_or(s.passed) AND NOT bool_and(s.passed) AS flaky,
               count(*) AS repeats,
               string_agg(DISTINCT s.detail, '; ') AS detail,
               any_value(c.tags) AS tags
        FROM scores AS s
        JOIN cases AS c ON c.dataset_version = s.dataset_version AND c.case_id = s.case_id
        WHERE s.run_id IN ($baseline_run, $challenger_run)
        GROUP BY s.run_id, s.metric, s.dataset, s.dataset_version, s.case_id
    """)


REPEATED = "SELECT coalesce(max(repeat), 0) > 0 AS repeated FROM scores WHERE run_id IN ($baseline_run, $challenger_run)"


def reduced(metric: str, reducer: str, run_param: str) -> exp.Select:
    """One row per case of one run for one metric (from the prepared table)."""
    return parse(f"SELECT * FROM {CASE_SCORES} WHERE run_id = ${run_param} AND metric = '__metric__'").transform(
        lambda n: literal(metric) if isinstance(n, exp.Literal) and n.this == "__metric__" else n)


def scope_condition(rule: RuleSpec) -> exp.Expression:
    """The rule's scope (datasets, capability tags) as a predicate on per-case rows."""
    conditions: list[exp.Expression] = [exp.true()]
    if rule.datasets:
        conditions.append(exp.column("dataset").isin(*[literal(d) for d in rule.datasets]))
    if rule.tags:
        conditions.append(exp.func("list_has_any", exp.column("tags"), literal(list(rule.tags))))
    return exp.and_(*conditions)


def scoped(metric: str, reducer: str, run_param: str, rule: RuleSpec) -> exp.Select:
    """reduced() of one run, restricted to the rule's scope."""
    return reduced(metric, reducer, run_param).where(scope_condition(rule))


def paired(metric: str, reducer: str, rule: RuleSpec) -> exp.Select:
    """Challenger cases in scope, each with its baseline counterpart (NULL columns when the baseline lacks it)."""
    challenger = scoped(metric, reducer, "challenger_run", rule).subquery("ch")
    baseline = reduced(metric, reducer, "baseline_run").subquery("b")
    return (exp.select(
        "ch.dataset", "ch.dataset_version", "ch.case_id", "ch.tags",
        exp.alias_(exp.column("value", table="b"), "b_value"), exp.alias_(exp.column("passed", table="b"), "b_passed"),
        exp.alias_(exp.column("flaky", table="b"), "b_flaky"),
        exp.alias_(exp.column("value", table="ch"), "c_value"), exp.alias_(exp.column("passed", table="ch"), "c_passed"),
        exp.alias_(exp.column("flaky", table="ch"), "c_flaky"), exp.alias_(exp.column("detail", table="ch"), "c_detail"))
        .from_(challenger)
        .join(baseline, on="b.dataset_version = ch.dataset_version AND b.case_id = ch.case_id", join_type="left"))


def with_outputs(select: exp.Select, alias: str) -> exp.Select:
    """Add the baseline's and the challenger's first output (and an agent's tool calls) to case rows (for
    regression listings)."""
    from engine.agents.steps import calls_text_sql

    template = parse(("""
        SELECT q.*, c.input_text, c.expected, c.metadata, bo.output_text AS baseline_output, bo.error AS baseline_error,
               co.output_text AS challenger_output, co.error AS challenger_error,
               __baseline_calls__ AS baseline_calls, __challenger_calls__ AS challenger_calls
        FROM (SELECT 1) AS q
        JOIN cases AS c ON c.dataset_version = q.dataset_version AND c.case_id = q.case_id
        LEFT JOIN run_cases AS brc ON brc.run_id = $baseline_run AND brc.dataset_version = q.dataset_version
             AND brc.case_id = q.case_id
        LEFT JOIN runs AS br ON br.run_id = $baseline_run
        LEFT JOIN outputs AS bo ON bo.model_fingerprint = br.model_fingerprint AND bo.output_key = brc.output_key
             AND bo.repeat = 0
        LEFT JOIN run_cases AS crc ON crc.run_id = $challenger_run AND crc.dataset_version = q.dataset_version
             AND crc.case_id = q.case_id
        LEFT JOIN runs AS cr ON cr.run_id = $challenger_run
        LEFT JOIN outputs AS co ON co.model_fingerprint = cr.model_fingerprint AND co.output_key = crc.output_key
             AND co.repeat = 0
        ORDER BY q.dataset, q.case_id
    """).replace("__baseline_calls__", calls_text_sql("br.model_fingerprint", "brc.output_key"))
        .replace("__challenger_calls__", calls_text_sql("cr.model_fingerprint", "crc.output_key")))
    return template.from_(select.subquery("q"))
