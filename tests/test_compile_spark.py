"""`flywheel compile monitor backend=spark` prints each statement in the dialect of the engine it runs on."""
from __future__ import annotations

import re

import pytest

from tests.conftest import run_cli


def _blocks(text: str) -> dict[str, str]:
    return {b.removeprefix("-- ").split("\n", 1)[0].split(": ")[0]: b for b in ("\n\n" + text).split("\n\n-- ") if b}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("compile-spark")
    assert run_cli("init", str(root / "project"), cwd=root).code == 0  # its monitor: drift, online scores, KPIs, parity
    return root / "project"


def test_compile_prints_spark_sql_for_production_reads_and_duckdb_for_the_store(project):
    spark = run_cli("compile", "monitor", "backend=spark", cwd=project)
    duck = run_cli("compile", "monitor", cwd=project)
    assert spark.code == duck.code == 0, spark
    blocks = _blocks(spark.stdout)
    assert "runs on:" not in duck.stdout
    on_spark = [n for n, b in blocks.items() if "-- runs on: spark" in b]
    local = [n for n, b in blocks.items() if "-- runs on: the store" in b]
    assert "periods" in on_spark and any(n.startswith("kpi.") for n in on_spark)
    assert any(n.startswith("monitor:") for n in local) and not set(on_spark) & set(local)
    for name in on_spark:
        sql = blocks[name].split("\n-- runs on: spark\n", 1)[1]
        assert not re.search(r"\$[a-z_]+", sql), (name, "DuckDB's $parameters in Spark SQL")
        assert "NOT PORTABLE" not in blocks[name], blocks[name][:300]
    assert ":cur_start" in spark.stdout and "$cur_start" in duck.stdout


def test_compile_evaluate_on_spark_routes_scoring_and_names_what_spark_refuses(project):
    """evaluate's scoring SELECTs run on Spark (their rows inserted into `scores` by the store); a kind Spark cannot
    run with the same meaning stays on the store, saying why; the rest (the run's bookkeeping, the scoring input's
    join, reports, the summary) is the store's. No JVM: compiling never starts Spark."""
    result = run_cli("compile", "evaluate", "backend=spark", "+metrics.sim={kind: embedding_similarity}",
                     "+metrics.path={kind: tool_call_match}", cwd=project)
    assert result.code == 0, result
    blocks = _blocks(result.stdout)
    on_spark = {n for n, b in blocks.items() if "-- runs on: spark" in b}
    assert on_spark == {"score:accuracy", "score:token_f1", "score:relevance", "score:safety", "score:refusal",
                        "score:latency", "score:error_rate"}
    for name in on_spark:
        sql = blocks[name].split("-- its rows are inserted into the store's `scores` by DuckDB\n", 1)[1]
        assert sql.lstrip().startswith("SELECT") and ":run_id" in sql and "$run_id" not in sql, name
    assert "-- runs on: the store (duckdb): not portable to Spark: list_cosine_similarity()" in blocks["score:sim"]
    assert "-- runs on: the store (duckdb): not portable to Spark: list_reduce()" in blocks["score:path"]
    for name in ("materialize:scoring_input", "summary", "runs:start", "runs:finish"):
        assert "-- runs on: the store (duckdb)\n" in blocks[name], name
