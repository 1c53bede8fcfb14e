"""`kind: sql`: a per-case expression written by the user -- the one place user SQL enters Flywheel.

The text is parsed by sqlglot and must be a single scalar expression over the scoring_input columns
(SCORING_COLUMNS): no statements, subqueries, table references, parameters, aggregates, window or
set-returning functions, and no function that reads files or settings. The parsed tree (never the text) is
placed into the compiled statement. Validation also binds it against an empty, typed scoring_input table
in a throw-away in-memory DuckDB, so unknown functions and type errors are reported before anything runs.
"""
from __future__ import annotations

from sqlglot import exp

from engine.errors import UserError
from engine.metrics.base import SCORING_COLUMNS, MetricSQL, metric_kind
from engine.sql import DIALECT, literal, render
from engine.usersql import parse_expression

# The scoring_input columns with their store types (engine/store.py), for binding at validation time.
_SCORING_TABLE = exp.Schema(this=exp.to_table("scoring_input"), expressions=[
    exp.ColumnDef(this=exp.to_identifier(name), kind=exp.DataType.build(kind, dialect=DIALECT))
    for name, kind in (("case_id", "VARCHAR"), ("dataset", "VARCHAR"), ("input_text", "VARCHAR"),
                       ("expected_answers", "VARCHAR[]"), ("expected", "JSON"), ("context", "VARCHAR[]"),
                       ("tags", "VARCHAR[]"), ("metadata", "JSON"), ("repeat", "INTEGER"),
                       ("output_text", "VARCHAR"), ("error", "VARCHAR"), ("latency_ms", "DOUBLE"),
                       ("prompt_tokens", "INTEGER"), ("completion_tokens", "INTEGER"), ("cost", "DOUBLE"))])
assert tuple(c.name for c in _SCORING_TABLE.expressions) == SCORING_COLUMNS


def parse_user_expression(text: str) -> tuple[exp.Expression | None, list[str]]:
    """The parsed expression and the problems found (empty when it is acceptable)."""
    return parse_expression(text, SCORING_COLUMNS, what="metric expression", per_row="the expression is per case",
                            hint="; for a JSON field write json_extract_string(metadata, '$.key')")


def bind_problems(tree: exp.Expression) -> list[str]:
    """Bind the expression against an empty, typed scoring_input in an in-memory DuckDB: unknown functions,
    type errors, non-scalar functions and a result that is neither boolean nor numeric are problems."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        con.execute(render(exp.Create(this=_SCORING_TABLE.copy(), kind="TABLE")))
        select = exp.select(exp.alias_(tree.copy(), "v")).from_("scoring_input")
        try:
            kind = con.execute(render(exp.Describe(this=select))).fetchall()[0][1]
        except duckdb.Error as e:
            return [f"DuckDB rejects it: {str(e).splitlines()[0]}"]
        names = sorted({n.name.lower() for n in tree.find_all(exp.Anonymous)})
        if names:
            rows = con.execute(render(exp.select("function_name", "function_type").from_("duckdb_functions()").where(
                exp.column("function_name").isin(*[literal(n) for n in names])))).fetchall()
            for name, ftype in rows:
                if ftype not in ("scalar", "macro"):
                    return [f"{name}() is a {ftype} function; the expression must be per case (scalar)"]
    finally:
        con.close()
    numeric = ("BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
               "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE")
    if not (kind in numeric or kind.startswith("DECIMAL")):
        return [f"must be boolean or numeric, got {kind}"]
    return []


@metric_kind("sql", {"required": ["expression"], "properties": {
    "expression": {"type": "string", "minLength": 1,
                   "description": "a boolean or numeric SQL expression over the scoring_input columns"}}})
def sql(spec: dict) -> MetricSQL:
    """A per-case boolean or numeric SQL expression over the case and output columns, written in the config.

    A condition scores 1/0 (NULL counts as 0) and passes when true; a number passes at >= threshold (or when it
    equals 1), and a NULL number is left out of the mean and fails. Only
    the scoring_input columns may be referenced: case_id, dataset, input_text, expected_answers, expected,
    context, tags, metadata, repeat, output_text, error, latency_ms, prompt_tokens, completion_tokens, cost."""
    tree, problems = parse_user_expression(spec["expression"])
    if problems:
        raise UserError(f"expression {spec['expression']!r}: {problems[0]}")
    value = exp.cast(exp.paren(tree), "DOUBLE")
    if isinstance(tree, (exp.Predicate, exp.Connector, exp.Not, exp.Boolean)):
        value = exp.func("coalesce", value, literal(0.0))  # a condition that is NULL does not hold
    return MetricSQL(value=value)
