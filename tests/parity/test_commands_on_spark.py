"""`flywheel monitor backend=spark` and `flywheel bridge backend=spark` give what DuckDB gives, on the simulated
month (tests/simulated_month.py): every drift statistic and p-value per window, KPI, online mean and parity gap
within 1e-9 relative, counts and statuses exactly; the bridge selects and exports the same traces.

The commands run in this process (engine.api.run), so they use the suite's one Spark session."""
from __future__ import annotations

import json

import pytest

from engine import api
from engine.monitor.figures import differences, figures
from tests.simulated_month import first_monitor, month_copy, monitored_month, simulated_month  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def spark_monitor(spark, simulated_month, tmp_path_factory):
    project = month_copy(simulated_month, tmp_path_factory, "spark-monitor")
    return project, api.run("monitor", ["backend=spark"], project)


def test_monitor_on_spark_equals_duckdb(spark_monitor, monitored_month):
    project, on_spark = spark_monitor
    on_duckdb = json.loads((monitored_month / "project" / "first.json").read_text(encoding="utf-8"))
    compared, differ = differences(on_duckdb, on_spark)
    assert compared > 100 and not differ, [(k, figures(on_duckdb).get(k), figures(on_spark).get(k))
                                           for k in differ[:10]]
    assert on_spark["exit_code"] == first_monitor(monitored_month).code == 1  # the month's drift alerts on both
    assert on_spark["blocking_alerts"] == on_duckdb["blocking_alerts"]
    assert on_spark["backend"]["name"] == "spark" and on_spark["backend"]["statements_on_spark"] > 20
    assert on_duckdb["online"]["newly_scored"] == on_spark["online"]["newly_scored"]


def test_bridge_on_spark_exports_what_duckdb_exports(spark, monitored_month, tmp_path_factory):
    exports = {}
    for backend in ("duckdb", "spark"):
        project = month_copy(monitored_month / "project", tmp_path_factory, f"bridge-{backend}")
        result = api.run("bridge", [f"backend={backend}"], project)
        assert result["exit_code"] == 0 and result["backend"]["name"] == backend
        path = result["training"]["path"]
        rows = [json.loads(line) for line in open(path, encoding="utf-8")] if path.endswith(".jsonl") else None
        exports[backend] = (result["policies"], result["training"]["records"], rows, result["golden"])
    duck, spark_ = exports["duckdb"], exports["spark"]
    assert duck[1] > 0 and duck[:2] == spark_[:2]
    key = lambda rows: sorted((r["trace_id"], r["policy"], json.dumps(r, sort_keys=True, ensure_ascii=False)
                               .replace(r["export_id"], "").replace(r["exported_at"], "")) for r in rows)
    assert key(duck[2]) == key(spark_[2])
    assert (duck[3] or {}).get("added") == (spark_[3] or {}).get("added")
