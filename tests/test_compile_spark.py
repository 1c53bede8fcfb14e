"""`flywheel compile monitor backend=spark` prints each statement in the dialect of the engine it runs on."""
from __future__ import annotations

import re

from tests.conftest import run_cli


def _blocks(text: str) -> dict[str, str]:
    return {b.removeprefix("-- ").split("\n", 1)[0].split(": ")[0]: b for b in ("\n\n" + text).split("\n\n-- ") if b}


def test_compile_prints_spark_sql_for_production_reads_and_duckdb_for_the_store(tmp_path):
    project = tmp_path / "project"
    assert run_cli("init", str(project), cwd=tmp_path).code == 0  # its monitor: drift, online scores, KPIs, parity
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
