"""A Parquet lake (`flywheel ingest to=parquet:`) read by Spark (engine/spark/sources.py) is the relation DuckDB
reads (engine/lake.py): the store's columns and types, one record per key across batches, row for row."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import api, lake
from engine.backend import DuckDBBackend
from engine.store import Store
from tests.conftest import run_cli

KEYS = {"traces": "trace_id", "feedback": "feedback_id", "events": "event_id"}
TEXTS = ["Où est ma facture ?", "e\u0301te\u0301 NFD", "請問退款要多久？", "line\u2028separator", "🙂 emoji", "مرحبا"]


def _trace(i: int, text: str, day: int, model_version: str = "v1") -> dict:
    return {"trace_id": f"tr-{i}", "session_id": f"se-{i % 3}", "user_id": f"u-{i % 4}",
            "timestamp": f"2025-03-{day:02d}T23:30:00-02:00", "model": "m", "model_version": model_version,
            "input": text, "output": text[::-1], "latency_ms": 100.0 + i, "prompt_tokens": i, "attributes":
            {"topic": ["billing", "login"][i % 2], "note": text}}


@pytest.fixture(scope="module")
def lake_project(tmp_path_factory):
    project = tmp_path_factory.mktemp("lake")
    assert run_cli("init", str(project), cwd=project).code == 0
    first = [_trace(i, t, 1 + i % 3) for i, t in enumerate(TEXTS)]
    # a second batch repeats tr-0 with other content (the lake keeps the earliest) and adds new traces
    second = [_trace(0, "a later, conflicting version", 9, "v2")] + [_trace(10 + i, t, 5) for i, t in enumerate(TEXTS)]
    feedback = [{"feedback_id": f"fb-{i}", "trace_id": f"tr-{i}", "timestamp": "2025-03-02T10:00:00Z",
                 "kind": "thumbs", "thumbs": ["up", "down"][i % 2], "comment": TEXTS[i % len(TEXTS)]} for i in range(8)]
    for name, records in (("one.jsonl", first + feedback), ("two.jsonl", second)):
        (project / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
        done = run_cli("ingest", f"path={name}", "to=parquet:lake", cwd=project)
        assert done.code == 0, done
    return project


def test_spark_reads_the_lake_as_duckdb_does(spark, lake_project):
    from engine.spark import sources

    overrides = [f"source.{t}.path=lake/{t}" for t in ("traces", "feedback")]
    cfg = api.config(overrides, lake_project).config
    with Store.open(lake_project / ".flywheel" / "flywheel.duckdb") as store, \
            lake.reading(store.con, cfg, lake_project) as used:
        assert "earliest published" in used["traces"]["dedupe"]
        frames = sources.frames(spark, DuckDBBackend(store), cfg, lake_project)
        for table in ("traces", "feedback"):
            duck = store.con.sql(f"SELECT * FROM {table}").to_arrow_table().to_pylist()
            theirs = frames[table].toArrow().to_pylist()
            key = KEYS[table]
            assert len(duck) == len(theirs) == len({r[key] for r in theirs}) > 0
            by_key = {r[key]: r for r in theirs}
            for row in duck:
                other = by_key[row[key]]
                for column, value in row.items():
                    theirs_value = other[column]
                    if column == "record_hash" and theirs_value is not None:
                        theirs_value = int(theirs_value)  # DECIMAL(20, 0) on Spark: no unsigned integers there
                    assert value == theirs_value, (table, row[key], column, value, theirs_value)
        traces = {r["trace_id"]: r for r in frames["traces"].toArrow().to_pylist()}
    assert traces["tr-0"]["input"] == TEXTS[0]  # the earliest batch's version, on Spark too
    assert {traces[f"tr-{i}"]["input"] for i in range(len(TEXTS))} == set(TEXTS)  # byte-exact Unicode
    assert len(traces) == 2 * len(TEXTS)


def test_a_lake_path_without_files_is_the_users_error(spark, lake_project):
    from engine.errors import UserError
    from engine.spark import sources

    (lake_project / "empty" / "_staging-x").mkdir(parents=True, exist_ok=True)  # only a hidden, unfinished batch
    (lake_project / "empty" / "_staging-x" / "part-0.parquet").write_bytes(b"not visible")
    cfg = {"source": {"traces": {"path": "empty"}}}
    with Store.open(lake_project / ".flywheel" / "flywheel.duckdb") as store:
        with pytest.raises(UserError, match="source.traces.path: empty holds no Parquet files"):
            sources.frames(spark, DuckDBBackend(store), cfg, Path(lake_project))
