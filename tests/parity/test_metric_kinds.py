"""Every SQL metric kind's compiled score statement means the same on Spark as on DuckDB.

Each configured metric (tests/parity/metric_fixture.py: every kind, with the options that change its SQL) is
compiled as `flywheel evaluate` compiles it (`compile_evaluate`), its score statement (the SELECT that feeds
`INSERT INTO scores`) is run on DuckDB and on Spark over the same adversarial `run_scoring_input` rows, and the
rows are compared by (metric, case, repeat): value within 1e-9 relative, passed and detail exactly. All metrics
run as one UNION ALL query per engine (one Spark job); when it fails, each metric is run alone to name it.
Kinds whose SQL Spark cannot run with the same meaning must be refused (NotPortable), never rendered."""
from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml
from sqlglot import exp

from engine import registry
from engine.compiler import compile_evaluate
from engine.dialects import NotPortable
from engine.spark.execute import spark_text
from engine.sql import Statement
from tests.parity.harness import assert_same_rows, load_tables, run_duckdb, run_spark
from tests.parity.metric_fixture import SPECS, TABLES

CONF = Path(__file__).resolve().parents[2] / "conf" / "metrics"

# Kinds refused on Spark, with the construct named in the refusal (README: "SQL on Spark: known differences").
NOT_PORTABLE = {
    "embedding_similarity": "list_cosine_similarity",
    "llm_judge": "jsontype",
    "tool_call_match": "list_reduce", "tool_arguments": "list_reduce", "forbidden_tool": "list_reduce",
    "step_efficiency": "list_reduce", "tool_error_rate": "list_reduce",
}
MINIMAL = {"llm_judge": {"judge": {"name": "j", "adapter": "python", "_target_": "x.Y"}}}


def _specs() -> dict[str, dict]:
    bundled = yaml.safe_load((CONF / "safety_rules.yaml").read_text(encoding="utf-8"))
    out = {"safety_bundled": {k: v for k, v in bundled["safety"].items() if k != "description"},
           "refusal_bundled": bundled["refusal"]}
    for kind, variants in SPECS.items():
        for i, options in enumerate(variants):
            out[f"{kind}_{i}"] = {"kind": kind, **options}
    return out


def score_select(name: str, spec: dict) -> exp.Select:
    """The SELECT of the compiled `score:<name>` statement (what `INSERT INTO scores` writes), with its metric."""
    insert = compile_evaluate({name: spec}).step(f"score:{name}").tree
    scored = insert.expression.find(exp.Subquery).this.copy()
    return exp.select(exp.alias_(exp.Literal.string(name), "metric"), "case_id", "repeat", "value", "passed",
                      "detail").from_(scored.subquery("scored"))


@pytest.fixture(scope="module")
def engines(spark):
    con = duckdb.connect()
    load_tables(spark, con, {name: make() for name, make in TABLES.items()})
    yield spark, con
    con.close()


def test_every_sql_metric_kind_has_a_parity_test():
    """A kind is either scored here on both engines or refused on Spark by name: never left unchecked."""
    kinds = set(registry.names("metric"))
    covered = {spec["kind"] for spec in _specs().values()} | set(NOT_PORTABLE)
    assert kinds <= covered, f"metric kinds without a Spark parity test: {sorted(kinds - covered)}"
    assert not {spec["kind"] for spec in _specs().values()} & set(NOT_PORTABLE)


def test_every_metric_kind_scores_the_same_on_both_engines(engines):
    spark, con = engines
    selects = {name: score_select(name, spec) for name, spec in _specs().items()}
    union = exp.union(*selects.values(), distinct=False) if len(selects) > 1 else next(iter(selects.values()))
    statement = Statement("score:all", union)
    duck = run_duckdb(con, statement)
    assert {r["metric"] for r in duck} == set(selects), "a metric scored no row: the fixture does not exercise it"
    try:
        theirs = run_spark(spark, statement)
    except Exception:  # name the metric that Spark could not run
        for name, select in selects.items():
            one = Statement(f"score:{name}", select)
            run_spark(spark, one)
        raise
    for name in selects:
        mine = [r for r in duck if r["metric"] == name]
        other = [r for r in theirs if r["metric"] == name]
        assert_same_rows(mine, other, ["case_id", "repeat"], what=f"{name} {_specs()[name]}")


def test_scores_are_not_trivial():
    """The fixture separates: every kind's values are not all equal (a constant metric would agree anywhere)."""
    con = duckdb.connect()
    for table, make in TABLES.items():
        con.register(table, make())
    flat = {"latency", "cost", "tokens", "error_rate", "output_length", "regression", "numeric_close"}
    for name, spec in _specs().items():
        rows = run_duckdb(con, Statement(name, score_select(name, spec)))
        values = {r["value"] for r in rows}
        assert len(values) > 1 or spec["kind"] in flat or spec["kind"] == "required_refusal", (name, values)


@pytest.mark.parametrize("kind", sorted(NOT_PORTABLE))
def test_kinds_spark_cannot_run_the_same_are_refused(kind):
    insert = compile_evaluate({"m": {"kind": kind, **MINIMAL.get(kind, {})}}).step("score:m").tree
    with pytest.raises(NotPortable, match=NOT_PORTABLE[kind]):
        spark_text(insert.expression)
