"""`flywheel monitor source.*.path=LAKE/...` reads the Parquet lake `flywheel ingest to=parquet:LAKE` wrote, and
gives the same monitor result as the store: drift statistics, KPIs, parity, periods and online scores.

The simulated month (tests/simulated_month.py) is ingested into the store and monitored once (first.json). A copy
ingests the same files into a lake, retracts the store's batch (the store's tables are then empty: whatever the
lake-reading monitor finds comes from the lake) and monitors from the lake.
"""
from __future__ import annotations

import json
import math

import duckdb
import pytest

from tests.conftest import run_cli
from tests.simulated_month import first_monitor, month_copy, monitored_month, simulated_month  # noqa: F401  (fixtures)

def same(got, want, where: str = "") -> None:
    """Equal, floats within 1e-9 relative (the store and the lake sum in another order: the last bits differ, as
    between two DuckDB runs with another thread schedule); counts, labels, statuses and messages exactly."""
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (where, got, want)
    elif isinstance(want, dict) and isinstance(got, dict):
        assert got.keys() == want.keys(), where
        for k in want:
            same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list) and isinstance(got, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            same(g, w, f"{where}[{i}]")
    else:
        assert got == want, (where, got, want)


SAME = ("drift", "kpis", "parity", "periods", "healthy", "blocking_alerts", "warnings", "window", "model")
FROM_LAKE = ("source.traces.path=lake/traces", "source.feedback.path=lake/feedback", "source.events.path=lake/events")


@pytest.fixture(scope="module")
def lake_month(simulated_month, tmp_path_factory):
    project = month_copy(simulated_month, tmp_path_factory, "lake_month")
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    (stored_batch,), = con.execute("SELECT DISTINCT batch_id FROM ingest_batches").fetchall()
    con.close()
    r = run_cli("ingest", "path=data/production", "to=parquet:lake", "out=ingest.json", cwd=project)
    assert r.code == 0, r
    r = run_cli("store", "retract", stored_batch, cwd=project)
    assert r.code == 0, r
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    assert con.execute("SELECT (SELECT count(*) FROM traces) + (SELECT count(*) FROM feedback) "
                       "+ (SELECT count(*) FROM events)").fetchall() == [(0,)]
    con.close()
    return project


def test_monitor_from_the_lake_equals_monitor_from_the_store(lake_month, monitored_month):
    store = first_monitor(monitored_month)
    r = run_cli("monitor", *FROM_LAKE, "out=lake.json", cwd=lake_month)
    assert r.code == store.code, r
    want, got = store.json, json.loads((lake_month / "lake.json").read_text(encoding="utf-8"))
    for key in SAME:
        same(got[key], want[key], key)
    same(got["online"]["metrics"], want["online"]["metrics"], "online.metrics")
    assert sum(len(d["windows"]) for d in got["drift"]) > 10  # a real comparison, not two empty results
    assert any(d["status"] == "alert" for d in got["drift"])  # the injected drift is found in the lake too
    assert want["data_sources"] == {t: {"format": "store"} for t in ("traces", "feedback", "events")}
    traces = got["data_sources"]["traces"]
    assert traces["format"] == "parquet" and traces["path"] == "lake/traces" and traces["files"] >= 20
    assert traces["dedupe"] == "not needed (one flywheel batch)"


def test_a_batch_ingested_twice_into_the_lake_is_read_once(lake_month, monitored_month):
    """A second batch repeating the feedback (another batch id: another file set) is deduplicated by the view,
    as the store would count it duplicate: the KPIs over feedback do not move."""
    r_twice = run_cli("ingest", "path=data/production/feedback.jsonl", "to=parquet:lake", "out=twice_ingest.json",
                      cwd=lake_month)
    assert r_twice.code == 0, r_twice
    r = run_cli("monitor", *FROM_LAKE, "out=twice.json", cwd=lake_month)
    got = json.loads((lake_month / "twice.json").read_text(encoding="utf-8"))
    want = first_monitor(monitored_month).json
    same(got["kpis"], want["kpis"], "kpis")
    same(got["parity"], want["parity"], "parity")
    assert got["data_sources"]["feedback"]["dedupe"].startswith("one record per feedback_id across 2 batch")
    rows = duckdb.connect().execute(
        "SELECT count(*), count(DISTINCT feedback_id) FROM read_parquet(?, hive_partitioning = true)",
        [str(lake_month / "lake" / "feedback" / "ingest_batch=*" / "day=*" / "*.parquet")]).fetchall()[0]
    first = json.loads((lake_month / "ingest.json").read_text(encoding="utf-8"))["by_kind"]["feedback"]["inserted"]
    second = json.loads((lake_month / "twice_ingest.json").read_text(encoding="utf-8"))
    assert rows[1] == first and rows[0] == first + second["by_kind"]["feedback"]["inserted"] > first
    # (the files hold the repeated feedback twice; the view read each record once)


def test_the_bridge_reads_the_lake(lake_month):
    r = run_cli("bridge", *FROM_LAKE, "out=bridge.json", cwd=lake_month)
    assert r.code == 0, r
    got = json.loads((lake_month / "bridge.json").read_text(encoding="utf-8"))
    assert got["data_sources"]["traces"]["format"] == "parquet"
    assert sum(p["selected"] for p in got["policies"].values()) > 0  # the store's tables are empty: from the lake


def test_bad_sources_exit_2_naming_the_key(lake_month):
    cases = {("source.traces.format=csv",): "source.traces.format",
             ("source.traces.format=parquet",): "source.traces.path",
             ("source.traces.format=store", "source.traces.path=lake/traces"): "source.traces.format",
             ("source.events.path=no/such/dir",): "source.events.path",
             ("source.events.path=lake/_batches",): "source.events.path",  # only skipped (hidden) names
             ("+source.traces.colour=red",): "source.traces"}
    for args, key in cases.items():
        r = run_cli("monitor", *args, cwd=lake_month)
        assert r.code == 2, (args, r)
        assert key in r.stderr + r.stdout, (args, r)
        assert "Traceback" not in r.stderr
