"""Bulk writes of an evaluation go through Arrow (engine/bulk.py), never row-by-row `executemany`."""
from __future__ import annotations

import inspect
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import engine.bulk
import engine.evaluation
import engine.runner
from engine.bulk import write_arrow
from engine.runner import OUTPUT_SCHEMA
from engine.store import Store


def test_the_evaluation_path_never_binds_rows_one_by_one():
    for module in (engine.evaluation, engine.runner, engine.bulk):
        assert ".executemany(" not in inspect.getsource(module), module.__name__


def _outputs(keys: list[str], text: str, error: str | None = None) -> pa.Table:
    n = len(keys)
    return pa.Table.from_pydict({
        "model_fingerprint": ["fp"] * n, "output_key": keys, "repeat": [0] * n, "output_text": [text] * n,
        "error": [error] * n, "latency_ms": [1.0] * n, "prompt_tokens": [1] * n, "completion_tokens": [1] * n,
        "cost": [0.0] * n, "raw": [None] * n, "run_id": ["r"] * n,
        "created_at": pa.array([None] * n, pa.timestamp("us", tz="UTC")).fill_null(0)}, schema=OUTPUT_SCHEMA)


def test_arrow_writes_append_and_replace_on_the_primary_key():
    store = Store(duckdb.connect(":memory:"), Path(":memory:"))
    store.migrate()
    assert write_arrow(store.con, "outputs", _outputs([f"k{i}" for i in range(10_000)], "old", "boom")) == 10_000
    with pytest.raises(duckdb.ConstraintException):
        write_arrow(store.con, "outputs", _outputs(["k1"], "new"))
    write_arrow(store.con, "outputs", _outputs(["k1", "k2"], "new"), replace=True)
    rows = store.con.execute("SELECT output_key, output_text, error FROM outputs WHERE output_key IN ('k1', 'k2', 'k3') "
                             "ORDER BY output_key").fetchall()
    assert rows == [("k1", "new", None), ("k2", "new", None), ("k3", "old", "boom")]
    with pytest.raises(ValueError):
        write_arrow(store.con, "runs; DROP TABLE outputs", _outputs(["x"], "y"))
