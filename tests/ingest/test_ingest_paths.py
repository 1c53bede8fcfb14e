"""The load path: accepted records go straight into their table, rejected ones are explained at the end of the
batch, repeated keys are settled at the end. Chunk boundaries, record kinds and earlier batches must not change
any decision, count, reason or raw text."""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from ingest_helpers import FIXTURE_PROJECT, flywheel, query, trace, write_jsonl
from test_schema_sql import mutations

from engine.ingest import readers
from engine.ingest.load import Batch, Options
from engine.ingest.records import record_validator
from engine.store import Store


def _lines() -> list:
    """Good and bad traces, keys repeated within and across what will be chunks, a conflict, blank lines."""
    out: list = []
    for i in range(60):
        if i % 7 == 3:
            out.append(trace(f"t{i}", latency_ms=-1))  # rejected
        elif i % 11 == 5:
            out.append('{"trace_id": "broken", "input": ')  # invalid JSON
        elif i % 13 == 6:
            out.append("")  # not a record
        else:
            out.append(trace(f"t{i}", input=f"question {i} \u00e9\"quoted\"\n"))
    out += [trace("t1", input="question 1 \u00e9\"quoted\"\n"),  # exact repeat of line 2: duplicate
            trace("t2", input="other content"),                    # same key, other content: conflict
            trace(None, input="keyed by content"), trace(None, input="keyed by content")]
    return out


def _outcome(project: Path, result: dict) -> tuple:
    quarantined = query(project, "SELECT source_line, reasons, raw FROM quarantine ORDER BY source_line")
    stored = query(project, "SELECT trace_id, input, latency_ms, record_hash, source_line FROM traces ORDER BY 1")
    return result["totals"], quarantined, stored


def test_chunk_boundaries_change_nothing(project, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(FIXTURE_PROJECT, other)
    for p in (project, other):
        write_jsonl(p / "t.jsonl", _lines())
    one = flywheel("ingest", "ingest.max_quarantine_share=1", "path=t.jsonl", "kind=traces", "out=r.json", project=project)
    many = flywheel("ingest", "ingest.max_quarantine_share=1", "path=t.jsonl", "kind=traces", "ingest.chunk_bytes=4096", "out=r.json", project=other)
    assert one.code == many.code == 0
    assert _outcome(project, one.json) == _outcome(other, many.json)
    totals = one.json["totals"]
    assert totals["duplicates"] == 2 and totals["read"] == totals["accepted"] + totals["quarantined"]
    conflict = [r for r in query(project, "SELECT raw, reasons FROM quarantine") if "conflicting" in r[1][0]]
    assert conflict == [(json.dumps(trace("t2", input="other content")),
                         ["conflicting duplicate: trace_id t2 is already taken by different content at t.jsonl:3 "
                          "in this batch"])]


def test_a_conflict_with_an_earlier_batch_is_quarantined_as_read(project):
    write_jsonl(project / "a.jsonl", [trace("t1"), trace("t2")])
    first = flywheel("ingest", "ingest.max_quarantine_share=1", "path=a.jsonl", "out=first.json", project=project).json
    line = '{"trace_id":"t1",  "timestamp":"2025-03-01T10:00:00Z","model":"kw","input":"changed"}'
    write_jsonl(project / "b.jsonl", [trace("t2"), line])
    second = flywheel("ingest", "ingest.max_quarantine_share=1", "path=b.jsonl", "out=second.json", project=project)
    assert second.code == 0
    assert second.json["totals"] == {"read": 2, "accepted": 1, "inserted": 0, "duplicates": 1, "quarantined": 1}
    assert query(project, "SELECT source_line, raw, reasons FROM quarantine") == [
        (2, line, [f"conflicting duplicate: trace_id t1 is already taken by different content at a.jsonl:1 "
                   f"(batch {first['batch_id']})"])]
    assert query(project, "SELECT input FROM traces WHERE trace_id = 't1'") == [("question t1",)]


def test_a_file_that_changes_while_its_conflicts_are_read_again_fails_the_batch(tmp_path):
    path = tmp_path / "t.jsonl"
    store_path = tmp_path / "s.duckdb"
    write_jsonl(path, [trace("t1")])
    with Store.open(store_path) as store:
        with store.transaction() as con:
            Batch(con, Options(kind="traces"), "b1", datetime.now(timezone.utc)).run(
                [readers.SourceFile(path, "t.jsonl", "jsonl", path.stat().st_size)])
    write_jsonl(path, [trace("t1", input="changed")])

    def append(source, n_records, bytes_done):  # the file grows after it was read, before the conflict is
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(trace("t9")) + "\n")

    with Store.open(store_path) as store:
        with pytest.raises(readers.UnreadableFile, match="changed while it was being ingested"):
            with store.transaction() as con:
                Batch(con, Options(kind="traces"), "b2", datetime.now(timezone.utc), append).run(
                    [readers.SourceFile(path, "t.jsonl", "jsonl", path.stat().st_size)])
        assert store.con.execute("SELECT count(*), min(batch_id) FROM traces").fetchall() == [(1, "b1")]
        assert store.con.execute("SELECT count(*) FROM quarantine").fetchall() == [(0,)]


def test_a_file_of_mixed_kinds_routes_each_record_to_its_kind(project):
    fb = {"feedback_id": "f1", "trace_id": "t1", "timestamp": "2025-03-01T10:05:00Z", "kind": "rating", "rating": 4}
    write_jsonl(project / "mixed.jsonl", [
        trace("t1"), fb, trace("t2", model=7), {**fb, "feedback_id": "f2", "rating": 9},
        {"event_id": "e1", "user_id": "u1", "timestamp": "2025-03-02T00:00:00Z", "type": "signup"},
        {"something": "else"}, trace("t1")])
    r = flywheel("ingest", "ingest.max_quarantine_share=1", "path=mixed.jsonl", "out=r.json", project=project)
    assert r.code == 0
    kinds = {k: (v["read"], v["inserted"], v["duplicates"], v["quarantined"]) for k, v in r.json["by_kind"].items()}
    assert kinds == {"traces": (3, 1, 1, 1), "feedback": (2, 1, 0, 1), "events": (1, 1, 0, 0),
                     "unknown": (1, 0, 0, 1)}
    assert query(project, "SELECT source_line, kind, reasons FROM quarantine ORDER BY 1") == [
        (3, "traces", ["model: expected string, got number"]), (4, "feedback", ["rating: 9 is above the maximum 5"]),
        (6, None, ["cannot tell the record kind: no input (traces), kind (feedback) or type (events) field"])]


@pytest.mark.parametrize("kind", ["traces", "feedback", "events"])
def test_the_load_path_rejects_exactly_what_jsonschema_rejects(project, kind):
    records = mutations(kind, 300, seed=7)
    write_jsonl(project / "m.jsonl", records)
    r = flywheel("ingest", "ingest.max_quarantine_share=1", "path=m.jsonl", f"kind={kind}", "ingest.chunk_bytes=4096", "out=r.json", project=project)
    assert r.code == 0
    check = record_validator(kind)
    expected = {i for i, rec in enumerate(records, start=1) if list(check.iter_errors(rec))}
    rejected = {line for line, reasons in query(project, "SELECT source_line, reasons FROM quarantine")
                if not reasons[0].startswith("conflicting duplicate")}
    assert rejected == expected
    assert 0 < len(expected) < len(records)
