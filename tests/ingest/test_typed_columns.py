"""The typed columns of stored records: each value as the record holds it, NULL for a JSON null or an absent field.

The insert takes an extracted value as it is where the schema allows only the column's JSON type (and null) at its
path (engine/ingest/checks.py `_typed`): these cases pin what a record that passed the checks is stored as."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from ingest_helpers import trace, write_jsonl

from engine.ingest import readers
from engine.ingest.load import Batch, Options
from engine.ingest.records import KINDS
from engine.ingest.timestamps import instant
from engine.store import Store

ABSENT = ...
NULLABLE = ("span_id", "session_id", "user_id", "model_version", "output", "latency_ms", "prompt_tokens",
            "completion_tokens", "cost", "error", "attributes")
RECORDS = [
    trace("t-full", span_id="sp1", model_version="v2", error="timeout", latency_ms=12, prompt_tokens=10.0,
          completion_tokens=3, cost=0.25, timestamp="2025-03-01t10:00:00.1234567+02:00",
          attributes={"topic": "billing", "channel": "web", "locale": "fr-FR", "feature": "refunds", "x": [1, 2]},
          input='say "hi"\n\u00e9\u2028'),
    trace("t-nulls", **{name: None for name in NULLABLE}),
    trace("t-absent", **{name: ABSENT for name in NULLABLE}),
    trace("t-attr-nulls", attributes={"topic": None, "locale": "de"}, latency_ms=1e3, cost=0),
    trace("t-attr-empty", attributes={}, timestamp="2024-02-29 23:59:59"),
]


def _expected(record: dict) -> dict:
    out = {}
    for column in KINDS["traces"].columns:
        value = record
        for name in column.path:
            value = value.get(name) if isinstance(value, dict) else None
        if value is not None and column.type == "DOUBLE":
            value = float(value)
        elif value is not None and column.type == "BIGINT":
            value = int(value)
        elif value is not None and column.type == "TIMESTAMPTZ":
            value = instant(value)
        out[column.name] = value
    return out


def test_stored_values_are_the_records_values_and_null_where_null_or_absent(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", RECORDS)
    names = [c.name for c in KINDS["traces"].columns]
    with Store.open(tmp_path / "s.duckdb") as store:
        with store.transaction() as con:
            counts = Batch(con, Options(kind="traces"), "b1", datetime.now(timezone.utc)).run(
                [readers.SourceFile(path, path.name, "jsonl", path.stat().st_size)])[0]
        assert (counts.read, counts.inserted, counts.quarantined) == (len(RECORDS), len(RECORDS), 0)
        rows = store.con.execute(f"SELECT {', '.join(names)} FROM traces ORDER BY source_line").fetchall()
    for record, row in zip(RECORDS, rows):
        stored = dict(zip(names, row))
        stored["attributes"] = None if stored["attributes"] is None else json.loads(stored["attributes"])
        stored["timestamp"] = stored["timestamp"].astimezone(timezone.utc)
        assert stored == _expected(record), record["trace_id"]
