"""User SQL (kind: sql metrics, monitor features, KPIs): an allowlist of pure functions, checked by the names
DuckDB sees; everything else, and every nondeterministic function, refused at validation with file @ key."""
from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from engine.metrics.custom import parse_user_expression
from engine.monitor.sources import EVENT_COLUMNS, TRACE_COLUMNS
from engine.usersql import parse_expression
from engine.usersql_functions import (AGGREGATE_NAMES, NONDETERMINISTIC, OPERATOR_NAMES, SCALAR_NAMES,
                                      allowlist_markdown)

REPO = Path(__file__).resolve().parent.parent

# (expression over the scoring columns, the function the message must name)
OUTSIDE_THE_ROW = [
    # files
    ("read_text('/etc/passwd') IS NULL", "read_text"),
    ("len(read_blob('/etc/passwd')) > 0", "read_blob"),
    ("read_csv('/etc/passwd') IS NULL", "read_csv"),
    ("glob('/etc/*') IS NULL", "glob"),
    ("parquet_metadata('x.parquet') IS NULL", "parquet_metadata"),
    ("sniff_csv('/etc/passwd') IS NULL", "sniff_csv"),
    # settings and variables
    ("current_setting('home_directory') = 'x'", "current_setting"),
    ("getvariable('x') IS NULL", "getvariable"),
    ("getenv('HOME') = 'x'", "getenv"),
    # secrets
    ("which_secret('s3://bucket/x', 's3') IS NULL", "which_secret"),
    ("len(duckdb_secrets()) > 0", "duckdb_secrets"),
    # extensions and the catalog
    ("len(duckdb_extensions()) > 0", "duckdb_extensions"),
    ("load_extension('httpfs') IS NULL", "load_extension"),
    ("current_database() = 'x'", "current_database"),
    ("duckdb_tables() IS NULL", "duckdb_tables"),
    # plans and SQL (de)serialisation: json_serialize_plan reads files through the plan of a query
    ("json_serialize_plan('SELECT * FROM read_text(''/etc/passwd'')') IS NULL", "json_serialize_plan"),
    ("json_execute_serialized_sql('{}') IS NULL", "json_execute_serialized_sql"),
    ("json_serialize_sql('SELECT 1') IS NULL", "json_serialize_sql"),
    ("json_deserialize_sql('{}') IS NULL", "json_deserialize_sql"),
    # table functions and queries by name
    ("len(range(3)) = 3", "range"),
    ("len(generate_series(1, 3)) = 3", "generate_series"),
    ("query('SELECT 1') IS NULL", "query"),
    ("query_table('scores') IS NULL", "query_table"),
    # side effects
    ("sleep_ms(1000) IS NULL", "sleep_ms"),
    ("write_log('x') IS NULL", "write_log"),
    ("error('x') IS NULL", "error"),
    # a built-in called through a schema, and dispatch to an aggregate by name
    ("main.lower(output_text) = 'a'", "main.lower"),
    ("list_aggregate(context, 'string_agg') = 'a'", "list_aggregate"),
]

NONDETERMINISTIC_EXPRESSIONS = [
    ("random() > 0.5", "random"),
    ("rand() > 0.5", "random"),
    ("setseed(0.5) IS NULL", "setseed"),
    ("uuid() IS NULL", "uuid"),
    ("gen_random_uuid() IS NULL", "uuid"),
    ("uuidv7() IS NULL", "uuidv7"),
    ("now() > '2020-01-01'", "now"),
    ("get_current_timestamp() > '2020-01-01'", "get_current_timestamp"),
    ("transaction_timestamp() > '2020-01-01'", "transaction_timestamp"),
    ("current_timestamp > '2020-01-01'", "current_timestamp"),
    ("current_date > '2020-01-01'", "current_date"),
    ("today() > '2020-01-01'", "current_date"),
    ("localtimestamp > '2020-01-01'", "localtimestamp"),
    ("age('2020-01-01'::TIMESTAMP) > INTERVAL 1 DAY", "age"),
    ("nextval('s') > 1", "nextval"),
    ("extract(year FROM now()) > 2000", "now"),  # nested inside an allowed function
    # a lambda parameter named like a keyword is bound only inside its lambda
    ("list_filter(context, lambda current_date: current_date = 'a') = [] OR current_date > '2020-01-01'",
     "current_date"),
]

STRUCTURE = [
    ("output_text = (SELECT 1)", "subqueries are not allowed"),
    ("EXISTS (SELECT 1 FROM scores)", "subqueries are not allowed"),
    ("output_text IN (SELECT case_id FROM scores)", "subqueries are not allowed"),
    ("output_text = (FROM read_text('/etc/passwd') SELECT content)", "subqueries are not allowed"),
    ("SELECT content FROM read_text('/etc/passwd')", "not a statement"),
    ("COPY scores TO 'x.csv'", "not a statement"),
    ("sum(latency_ms) OVER () > 1", "window functions"),
    ("'a' COLLATE nocase = output_text", "collate expressions are not allowed"),
]


@pytest.mark.parametrize("expression,function", OUTSIDE_THE_ROW)
def test_functions_outside_the_allowlist_are_refused_by_name(expression, function):
    _, problems = parse_user_expression(expression)
    assert any(p.startswith(f"function {function}() is not allowed in a metric expression") for p in problems), \
        problems


@pytest.mark.parametrize("expression,function", NONDETERMINISTIC_EXPRESSIONS)
def test_nondeterministic_functions_are_refused_with_the_reason(expression, function):
    _, problems = parse_user_expression(expression)
    assert any(re.search(rf"\b{function}(\(\))? is not allowed in a metric expression: it is nondeterministic.*"
                         r"scores must be reproducible", p) for p in problems), problems


@pytest.mark.parametrize("expression,message", STRUCTURE)
def test_statements_subqueries_and_windows_are_refused(expression, message):
    _, problems = parse_user_expression(expression)
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize("expression", [
    "regexp_matches(lower(output_text), '[0-9]+ days') AND len(context) > 0",
    "json_extract_string(metadata, '$.topic') = 'refunds' OR metadata->>'$.x' = 'y'",
    "list_count(list_filter(expected_answers, lambda a: contains(output_text, a))) > 0",
    "list_sum(list_transform(context, lambda c, i: length(c) + i)) > 3",
    "date_part('year', to_timestamp(latency_ms)) > 1970 AND epoch_ms(1000) IS NOT NULL",
    "round(abs(ln(greatest(latency_ms, 1))), 2) < 10 AND levenshtein(output_text, input_text) < 100",
    "CASE WHEN output_text ILIKE '%x%' THEN 1 WHEN output_text NOT LIKE 'y%' THEN 0.5 ELSE 0 END",
    "coalesce(TRY_CAST(json_extract(expected, '$.n') AS DOUBLE), 0) BETWEEN 0 AND 1",
])
def test_pure_expressions_are_accepted(expression):
    assert parse_user_expression(expression)[1] == []


def test_kpi_aggregates_allow_order_independent_aggregates_only():
    for agg in ("count(*)", "count(DISTINCT date_trunc('day', timestamp))", "sum(cost)", "avg(latency_ms)",
                "quantile_cont(latency_ms, 0.95)", "count(*) FILTER (WHERE error IS NULL)", "median(cost)"):
        assert parse_expression(agg, TRACE_COLUMNS, aggregates=True, what="KPI agg")[1] == [], agg
    _, problems = parse_expression("any_value(amount)", EVENT_COLUMNS, aggregates=True, what="KPI agg")
    assert any("any_value() is not allowed in a KPI agg: it is nondeterministic" in p for p in problems)
    _, problems = parse_expression("histogram(amount) IS NULL", EVENT_COLUMNS, aggregates=True, what="KPI agg")
    assert any("function histogram() is not allowed in a KPI agg" in p for p in problems)
    _, problems = parse_expression("sum(amount)", EVENT_COLUMNS, aggregates=False, what="KPI where")
    assert any("aggregate functions" in p for p in problems)


def _functions() -> dict[str, tuple[set, set, bool]]:
    con = duckdb.connect(":memory:")
    rows = con.execute("SELECT function_name, list(DISTINCT function_type), list(DISTINCT stability), "
                       "bool_or(has_side_effects) FROM duckdb_functions() GROUP BY ALL").fetchall()
    return {name: (set(types), set(stabilities), side_effects) for name, types, stabilities, side_effects in rows}


# DuckDB marks these CONSISTENT_WITHIN_QUERY only because of their TIMESTAMPTZ overloads, which read the
# session time zone; the store pins it to UTC (engine/store.py), so their value depends on the arguments only.
TIME_ZONE_DEPENDENT = {
    "+", "-", "century", "date_diff", "date_part", "date_sub", "date_trunc", "datediff", "datepart", "datesub",
    "datetrunc", "day", "dayname", "dayofmonth", "dayofweek", "dayofyear", "decade", "hour", "isodow",
    "isoyear", "last_day", "microsecond", "millisecond", "minute", "month", "monthname", "quarter", "second",
    "strftime", "time_bucket", "week", "weekday", "weekofyear", "year", "yearweek",
}


def test_the_allowlist_holds_only_existing_pure_functions():
    """An oracle from DuckDB's own catalogue: every name exists with the right type, none has side effects or
    is volatile, and none depends on the query's time except through the pinned time zone."""
    functions = _functions()
    for name in SCALAR_NAMES | OPERATOR_NAMES:
        assert name in functions, f"{name} is not a DuckDB function"
        types, stabilities, side_effects = functions[name]
        assert types & {"scalar", "macro"}, (name, types)
        assert not side_effects and "VOLATILE" not in stabilities, name
        if "CONSISTENT_WITHIN_QUERY" in stabilities:
            assert name in TIME_ZONE_DEPENDENT, name
    for name in AGGREGATE_NAMES:
        assert name in functions and functions[name][0] & {"aggregate", "macro"}, name
    assert not (SCALAR_NAMES | AGGREGATE_NAMES) & NONDETERMINISTIC


def test_every_volatile_or_time_reading_duckdb_function_is_refused():
    functions = _functions()
    suspicious = {name for name, (types, stabilities, side_effects) in functions.items()
                  if (side_effects or "VOLATILE" in stabilities
                      or ("CONSISTENT_WITHIN_QUERY" in stabilities and name not in TIME_ZONE_DEPENDENT))
                  and types & {"scalar", "macro"} and name.isidentifier()}
    assert {"random", "uuid", "now", "today", "current_setting", "nextval"} <= suspicious
    for name in sorted(suspicious):
        for arguments in ("", "1", "1, 2", "1, 2, 3"):  # the first arity sqlglot accepts
            _, problems = parse_user_expression(f"{name}({arguments}) IS NULL")
            if not any(p.startswith("not a valid SQL expression") for p in problems):
                break
        # the expression holds nothing but constants and this call, so a refusal is about the call
        assert any("is not allowed" in p for p in problems), (name, problems)


def test_the_readme_lists_the_allowlist_as_the_code_has_it():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- usersql-allowlist:start -->\n(.*?)\n<!-- usersql-allowlist:end -->", readme, re.S)
    assert block, "README.md has no generated user-SQL allowlist block"
    assert block.group(1) == allowlist_markdown(), "regenerate it with `python -m engine.usersql_functions`"


HOSTILE_MONITOR = """\
defaults:
  - default
  - _self_
features:
  noise: {expr: "random()", type: numeric}
  leak: {expr: "length(json_serialize_plan('SELECT * FROM read_text(''/etc/passwd'')'))", type: numeric}
kpis:
  stamped:
    category: usage
    aggregates:
      recent: {from: traces, agg: "count(*)", where: "timestamp > now() - INTERVAL 1 DAY"}
      secret: {from: events, agg: "max(length(current_setting('s3_secret_access_key')))"}
    value: "recent / nullif(secret, 0) + len(glob('*'))"
    target: {op: ">=", value: 0}
    severity: warn
"""


def test_the_cli_refuses_hostile_monitor_sql_naming_file_and_key(cli, project):
    (project / "conf" / "monitor").mkdir(exist_ok=True)
    (project / "conf" / "monitor" / "hostile.yaml").write_text(HOSTILE_MONITOR)
    r = cli("monitor", "monitor=hostile", cwd=project)
    assert r.code == 2, r
    out = r.stdout + r.stderr
    assert "Traceback" not in out
    where = "@ monitor"  # the file is named as the option chosen on the command line (monitor=hostile)
    assert f"{where}.features.noise.expr: function random() is not allowed in a feature expression: it is " \
           "nondeterministic" in out, out
    assert f"{where}.features.leak.expr: function json_serialize_plan() is not allowed" in out, out
    assert f"{where}.kpis.stamped.aggregates.recent.where: function now() is not allowed in a KPI where" in out
    assert f"{where}.kpis.stamped.aggregates.secret.agg: function current_setting() is not allowed" in out
    assert f"{where}.kpis.stamped.value: function glob() is not allowed in a KPI value" in out
    assert not (project / ".flywheel" / "flywheel.duckdb").exists()  # refused before anything ran


def test_the_cli_refuses_a_metric_that_reads_files_through_a_plan(cli, project):
    (project / "conf" / "metrics" / "leak.yaml").write_text(
        "leak:\n  kind: sql\n"
        "  expression: \"length(json_serialize_plan('SELECT * FROM read_text(''/etc/passwd'')')) > 0\"\n"
        "stamp:\n  kind: sql\n  expression: \"epoch(now()) > 0\"\n")
    r = cli("evaluate", "metrics=[mini,leak]", cwd=project)
    assert r.code == 2, r
    out = r.stdout + r.stderr
    assert "@ metrics.leak.expression: function json_serialize_plan() is not allowed" in out, out
    assert "@ metrics.stamp.expression: function now() is not allowed in a metric expression: " \
           "it is nondeterministic" in out, out
    assert not (project / ".flywheel" / "flywheel.duckdb").exists()
