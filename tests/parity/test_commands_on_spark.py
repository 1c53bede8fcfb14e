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


def test_bridge_on_spark_over_the_lake_exports_what_duckdb_exports_from_the_store(spark, monitored_month,
                                                                                   tmp_path_factory):
    """The bridge three ways over the same month: DuckDB reading the store, DuckDB reading a Parquet lake of the
    same records (`flywheel ingest to=parquet:`), Spark reading that lake. Same policies, same records, same
    export rows (ids and timestamps of the export aside), same golden cases added."""
    project = month_copy(monitored_month / "project", tmp_path_factory, "bridge-lake")
    lake = api.run("ingest", ["path=data/production", "to=parquet:lake"], project)
    assert lake["exit_code"] == 0 and lake["totals"]["accepted"] > 1000 and lake["lake"], lake
    from_lake = [f"source.{kind}.path={project / 'lake' / kind}" for kind in ("traces", "feedback", "events")]
    exports = {}
    for label, backend, sources in (("store", "duckdb", []), ("lake", "duckdb", from_lake),
                                    ("lake on spark", "spark", from_lake)):
        copy = month_copy(project, tmp_path_factory, f"bridge-{label.replace(' ', '-')}")
        result = api.run("bridge", [f"backend={backend}", *[o.replace(str(project), str(copy)) for o in sources]],
                         copy)
        assert result["exit_code"] == 0 and result["backend"]["name"] == backend, (label, result)
        path = result["training"]["path"]
        rows = [json.loads(line) for line in open(path, encoding="utf-8")] if path.endswith(".jsonl") else None
        exports[label] = (result["policies"], result["training"]["records"], rows, result["golden"])
    duck = exports["store"]
    assert duck[1] > 0
    key = lambda rows: sorted((r["trace_id"], r["policy"], json.dumps(r, sort_keys=True, ensure_ascii=False)
                               .replace(r["export_id"], "").replace(r["exported_at"], "")) for r in rows)
    for label in ("lake", "lake on spark"):
        other = exports[label]
        assert duck[:2] == other[:2], label
        assert key(duck[2]) == key(other[2]), label
        assert (duck[3] or {}).get("added") == (other[3] or {}).get("added"), label
