"""Every chunk mixing kinds, rejected records, duplicates and conflicts, in one file and again in a re-ingest: what
is stored and what is quarantined, line by line, is what the per-record validator (jsonschema) and the
first-comes-first rule say. (The checks of one scope are folded into one test in the insert's filter: see
engine/ingest/schema_sql.py `folded`; feedback's if/then/else rules go through it too.)"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from ingest_helpers import trace, write_jsonl

from engine.ingest.load import Batch, Options
from engine.ingest.readers import SourceFile
from engine.ingest.records import record_validator
from engine.ingest.strict import problem
from engine.store import Store


def _feedback(fid: str, **fields) -> dict:
    return {"feedback_id": fid, "trace_id": "t1", "timestamp": "2025-03-01T10:00:00Z", "kind": "rating",
            "rating": 4, **fields}


def _lines(n: int) -> list[str]:
    """n lines: traces and feedback in turn, every 7th broken by a rule, every 10th a repeat of the key two lines
    up (the same kind; every other one with other content: a conflict), every 29th not JSON."""
    out = []
    for i in range(1, n + 1):
        kind = "traces" if i % 2 else "feedback"
        key = f"k{i - 2}" if i % 10 == 0 else f"k{i}"
        other = i % 20 == 0  # a repeat with other content
        if kind == "traces":
            record = trace(key, input=f"question {key}" + (" changed" if other else ""))
            if i % 7 == 0:
                record["latency_ms"] = -5
        else:
            record = _feedback(key, comment="changed" if other else None)
            if i % 7 == 0:
                record["rating"] = 9
        out.append('{"trace_id": "x", "input": ' if i % 29 == 0 else json.dumps(record))
    return out


def _expected(lines: list[str], stored_before: dict[tuple[str, str], str]) -> tuple[dict, set[int]]:
    """(kind -> lines stored, lines quarantined) by the per-record validator and the first-comes-first rule."""
    validators = {k: record_validator(k) for k in ("traces", "feedback")}
    first = dict(stored_before)  # (kind, key) -> the content stored first
    stored: dict[str, set[int]] = {"traces": set(), "feedback": set()}
    quarantined = set()
    for line, text in enumerate(lines, start=1):
        if problem(text) is not None:
            quarantined.add(line)
            continue
        record = json.loads(text)
        kind = "traces" if "input" in record else "feedback"
        if next(validators[kind].iter_errors(record), None) is not None:
            quarantined.add(line)
            continue
        key = (kind, record["trace_id"] if kind == "traces" else record["feedback_id"])
        content = json.dumps(record, sort_keys=True)
        if key not in first:
            first[key] = content
            stored[kind].add(line)
        elif first[key] != content:
            quarantined.add(line)  # a conflicting duplicate; an exact repeat is accepted, not stored
    return stored, quarantined


def _ingest(store: Store, path: Path, batch_id: str):
    with store.transaction() as con:
        batch = Batch(con, Options(kind="auto", chunk_bytes=4096), batch_id, datetime.now(timezone.utc))
        counts = batch.run([SourceFile(path, path.name, "jsonl", path.stat().st_size)])[0]
    return counts


def test_mixed_chunks_store_and_quarantine_what_the_per_record_validator_says(tmp_path):
    lines = _lines(240)
    path = write_jsonl(tmp_path / "mixed.jsonl", lines)
    assert path.stat().st_size > 10 * 4096  # many chunks, each with rejected records
    stored, quarantined = _expected(lines, {})
    with Store.open(tmp_path / "s.duckdb") as store:
        counts = _ingest(store, path, "b1")
        assert counts.read == len(lines) == counts.accepted + counts.quarantined
        for kind, table in (("traces", "traces"), ("feedback", "feedback")):
            got = {line for (line,) in store.con.execute(f"SELECT source_line FROM {table}").fetchall()}
            assert got == stored[kind], kind
        got_q = [line for (line,) in store.con.execute("SELECT source_line FROM quarantine ORDER BY 1").fetchall()]
        assert got_q == sorted(quarantined)
        assert counts.inserted == len(stored["traces"]) + len(stored["feedback"])

        # Again: every accepted record is a duplicate of a stored one, nothing new goes in; the rejected and
        # the conflicting ones are quarantined again.
        before = store.con.execute("SELECT count(*) FROM traces").fetchone()[0]
        again = _ingest(store, path, "b2")
        assert again.inserted == 0 and again.read == len(lines) == again.accepted + again.quarantined
        assert store.con.execute("SELECT count(*) FROM traces").fetchone()[0] == before
        got_q2 = [line for (line,) in store.con.execute(
            "SELECT source_line FROM quarantine WHERE batch_id = 'b2' ORDER BY 1").fetchall()]
        assert got_q2 == sorted(quarantined)
