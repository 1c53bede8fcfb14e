"""`flywheel ingest` on malformed inputs of every kind: exact counts, exact reasons, the good data intact."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingest_helpers import FIXTURE_PROJECT, flywheel, query, run_cli, trace, write_jsonl

T1 = trace("t1")
T2_EXTRA = trace("t2", app_build="1.2.3")  # an unknown field: accepted, kept in `extra`

def make_inbox(root: Path) -> Path:
    inbox = root / "inbox"
    write_jsonl(inbox / "traces_a.jsonl", [
        T1,                                                                      # 1 inserted
        T2_EXTRA,                                                                # 2 inserted, extra kept
        '{"trace_id": "t3", "timestamp": "2025-03-01T10:00:00Z", "model": "kw"',  # 3 broken JSON
        trace("t4", input=42),                                                   # 4 wrong type
        trace("t5", model=...),                                                  # 5 missing required
        trace("t6", latency_ms=-5),                                              # 6 out of range
        T1,                                                                      # 7 exact repeat: duplicate
        trace("t1", input="something else"),                                     # 8 same id, other content
        "",                                                                      # 9 empty line: no record
        b'{"trace_id": "t9", "timestamp": "2025-03-01T10:00:00Z", "model": "kw", "input": "caf\xe9"}',  # 10 latin-1
        trace(None, input="no id here"),                                         # 11 key = content hash
        trace("t12", timestamp="2025-13-01T10:00:00Z"),                          # 12 not a date
        "[1, 2]",                                                                # 13 not an object
    ])
    # the same t2 record with other key order and spacing: the same content, a duplicate across files
    b_line = json.dumps(dict(reversed(list(T2_EXTRA.items()))), indent=None, separators=(", ", ":  "))
    write_jsonl(inbox / "traces_b.jsonl", [b_line, trace("t11")])
    (inbox / "empty.jsonl").write_bytes(b"")
    (inbox / "feedback.csv").write_text(
        "feedback_id,trace_id,timestamp,kind,rating,thumbs,correction,comment\n"
        "f1,t1,2025-03-01T10:05:00Z,rating,5,,,\n"
        "f2,t1,2025-03-01T10:05:00Z,rating,9,,,\n"
        "f3,t2,2025-03-01T10:05:00Z,thumbs,,up,,\n"
        'f4,t2,2025-03-01T10:05:00Z,correction,,,The right answer,"quoted, with a comma"\n'
        "f5,t2,2025-03-01T10:05:00Z,rating,five,,,\n"
        "f6,t2,2025-03-01T10:05:00Z,correction,,,,\n"
        "f7,t2\n", encoding="utf-8")
    write_jsonl(inbox / "events.jsonl", [
        {"event_id": "e1", "user_id": "u1", "timestamp": "2025-03-02T00:00:00Z", "type": "conversion",
         "amount": 96, "currency": "USD"},
        {"event_id": "e2", "user_id": "u1", "timestamp": "2025-03-02T00:00:00Z", "type": "explode"},
        {"event_id": "e3", "user_id": "u1", "timestamp": "2025-03-02T00:00:00Z", "type": "revenue",
         "amount": 8, "currency": "usd"},
    ])
    return inbox

@pytest.fixture(scope="module")
def loaded(tmp_path_factory):

    project = tmp_path_factory.mktemp("ingest") / "project"
    shutil.copytree(FIXTURE_PROJECT, project)
    make_inbox(project)
    first = run_cli("ingest", "path=inbox", "out=first.json", cwd=project)
    second = run_cli("ingest", "path=inbox", "out=second.json", cwd=project)
    return project, first, second

def by_path(result: dict) -> dict:
    return {Path(f["path"]).name: f for f in result["files"]}

def test_counts_per_file_add_up_exactly(loaded):
    project, first, _ = loaded
    assert first.code == 1, first  # 14 of 24 quarantined: above ingest.max_quarantine_share (stored all the same)
    assert first.json["quarantine_share"] == {"share": round(14 / 24, 6), "limit": 0.05, "skipped": 0,
                                              "exceeded": True}
    assert "above ingest.max_quarantine_share" in first.stdout
    files = by_path(first.json)
    expect = {  # read, accepted, inserted, duplicates, quarantined
        "traces_a.jsonl": (12, 4, 3, 1, 8),
        "traces_b.jsonl": (2, 2, 1, 1, 0),
        "empty.jsonl": (0, 0, 0, 0, 0),
        "feedback.csv": (7, 3, 3, 0, 4),
        "events.jsonl": (3, 1, 1, 0, 2),
    }
    for name, (read, accepted, inserted, dups, quarantined) in expect.items():
        f = files[name]
        assert (f["read"], f["accepted"], f["inserted"], f["duplicates"], f["quarantined"]) == \
            (read, accepted, inserted, dups, quarantined), name
    t = first.json["totals"]
    assert t == {"read": 24, "accepted": 10, "inserted": 8, "duplicates": 2, "quarantined": 14}
    assert t["read"] == t["accepted"] + t["quarantined"]
    assert first.json["by_kind"]["traces"]["read"] == 14
    assert query(project, "SELECT count(*) FROM quarantine WHERE batch_id = ?", [first.json["batch_id"]])[0][0] == 14

def test_every_rejection_has_its_location_and_reasons(loaded):
    project, _, _ = loaded
    rows = query(project, "SELECT source_file, source_line, kind, reasons FROM quarantine WHERE batch_id = "
                          "(SELECT min(batch_id) FROM quarantine) ORDER BY source_file, source_line")
    got = {(Path(f).name, line): reasons for f, line, _, reasons in rows}
    assert got[("traces_a.jsonl", 3)] == ["invalid JSON: expecting ',' delimiter"]
    assert got[("traces_a.jsonl", 4)] == ["input: expected string, got number"]
    assert got[("traces_a.jsonl", 5)] == ["model: required but missing"]
    assert got[("traces_a.jsonl", 6)] == ["latency_ms: -5 is below the minimum 0"]
    assert got[("traces_a.jsonl", 8)][0].startswith("conflicting duplicate: trace_id t1 is already taken")
    assert got[("traces_a.jsonl", 10)][0].startswith("not valid UTF-8: byte 0xE9")
    assert got[("traces_a.jsonl", 12)] == ['timestamp: "2025-13-01T10:00:00Z" is not a valid date-time']
    assert got[("traces_a.jsonl", 13)] == ["not a JSON object"]
    assert got[("feedback.csv", 3)] == ["rating: 9 is above the maximum 5"]
    assert "rating: expected integer or null, got string" in got[("feedback.csv", 6)]
    assert got[("feedback.csv", 7)] == ["correction: required but missing"]
    assert got[("feedback.csv", 8)] == ["row has 2 fields, the header has 8"]
    assert got[("events.jsonl", 2)][0].startswith('type: "explode" is not allowed; allowed: signup')
    assert got[("events.jsonl", 3)][0] == 'currency: "usd" does not match the pattern ^[A-Z]{3}$'
    raw = query(project, "SELECT raw FROM quarantine WHERE source_line = 3 AND source_file LIKE '%traces_a%'")
    assert raw[0][0] == '{"trace_id": "t3", "timestamp": "2025-03-01T10:00:00Z", "model": "kw"'

def test_accepted_data_is_intact(loaded):
    project, _, _ = loaded
    rows = query(project, "SELECT trace_id, input, latency_ms, prompt_tokens, topic, attributes->>'$.channel', extra, "
                          "source_line FROM traces ORDER BY source_file, source_line")
    assert [(r[0], Path(str(r[7])).name) for r in rows][:1] == [("t1", "1")]
    t1 = next(r for r in rows if r[0] == "t1")
    assert t1[1:6] == ("question t1", 12.5, 10, "billing", "web") and t1[6] is None
    t2 = next(r for r in rows if r[0] == "t2")
    assert json.loads(t2[6]) == {"app_build": "1.2.3"}
    hashed = [r[0] for r in rows if r[0].startswith("h-")]
    assert len(hashed) == 1  # the record without an id is keyed by its content
    assert sorted(r[0] for r in rows) == sorted(["t1", "t2", "t11", hashed[0]])
    fb = query(project, "SELECT feedback_id, kind, rating, thumbs, correction, comment, score FROM feedback ORDER BY 1")
    assert fb == [("f1", "rating", 5, None, None, None, 1.0), ("f3", "thumbs", None, "up", None, None, 1.0),
                  ("f4", "correction", None, None, "The right answer", "quoted, with a comma", 0.0)]
    ev = query(project, "SELECT event_id, type, amount, currency FROM events")
    assert ev == [("e1", "conversion", 96.0, "USD")]

def test_ingesting_the_same_files_again_adds_nothing_and_says_so(loaded):
    project, first, second = loaded
    assert second.code == 1, second
    t = second.json["totals"]
    assert t["inserted"] == 0 and t["duplicates"] == first.json["totals"]["accepted"]
    assert t["read"] == t["accepted"] + t["quarantined"]
    assert query(project, "SELECT count(*) FROM traces")[0][0] == 4
    assert query(project, "SELECT count(*) FROM feedback")[0][0] == 3
    assert "was ingested before in " + first.json["batch_id"] in second.stdout
    assert query(project, "SELECT count(DISTINCT batch_id) FROM ingest_batches")[0][0] == 2

def test_parquet_and_a_truncated_parquet(project, cli):
    table = pa.table({"trace_id": ["p1", "p2"], "timestamp": ["2025-03-01T10:00:00Z", "2025-03-01 11:00:00"],
                      "model": ["kw", "kw"], "input": ["a", "b"], "latency_ms": [1.5, -1.0],
                      "prompt_tokens": pa.array([3, 4], pa.int64())})
    pq.write_table(table, project / "good.parquet")
    ok = cli("ingest", "ingest.max_quarantine_share=1", "path=good.parquet", "kind=traces", "out=r.json", cwd=project)
    assert ok.code == 0, ok
    assert ok.json["totals"] == {"read": 2, "accepted": 1, "inserted": 1, "duplicates": 0, "quarantined": 1}
    assert query(project, "SELECT source_line, reasons FROM quarantine") == \
        [(2, ["latency_ms: -1.0 is below the minimum 0"])]

    data = (project / "good.parquet").read_bytes()
    (project / "cut.parquet").write_bytes(data[: len(data) // 2])
    failed = cli("ingest", "path=cut.parquet", cwd=project)
    assert failed.code == 2, failed
    assert "cut.parquet" in failed.stderr and "nothing was stored" in failed.stderr
    assert "Traceback" not in failed.stderr
    kept = cli("ingest", "ingest.max_quarantine_share=1", "path=*.parquet", "ingest.on_unreadable_file=quarantine", "out=r2.json", cwd=project)
    assert kept.code == 0, kept
    files = by_path(kept.json)
    assert files["cut.parquet"]["read"] == 1 and files["cut.parquet"]["quarantined"] == 1
    assert files["good.parquet"]["duplicates"] == 1
    rows = query(project, "SELECT source_line, reasons[1] FROM quarantine WHERE source_file = 'cut.parquet'")
    assert rows[0][0] is None and rows[0][1].startswith("unreadable file: not a readable Parquet file")

def test_privacy_salt_hashes_user_ids_and_redaction_blanks_fields(project, capsys):
    write_jsonl(project / "t.jsonl", [trace("t1", attributes={"topic": "billing", "email": "a@b.c"}),
                                      {"feedback_id": "f1", "trace_id": "t1", "user_id": "u1", "kind": "thumbs",
                                       "thumbs": "down", "timestamp": "2025-03-01T10:00:00Z", "comment": "private"}])
    r = flywheel("ingest", "path=t.jsonl", "ingest.privacy.salt=s3cret",
                 "ingest.privacy.redact=[input,comment,attributes.email]", "out=r.json", project=project)
    assert r.code == 0
    expected = hashlib.sha256(b"s3cretu1").hexdigest()
    assert query(project, "SELECT user_id, input, attributes->>'$.email', topic FROM traces") == \
        [(expected, "[REDACTED]", "[REDACTED]", "billing")]
    assert query(project, "SELECT user_id, comment FROM feedback") == [(expected, "[REDACTED]")]
    assert "s3cret" not in (project / "r.json").read_text() and "s3cret" not in capsys.readouterr().out
    assert r.json["privacy"]["hashed_fields"] == ["user_id"]
    bad = flywheel("ingest", "path=t.jsonl", "ingest.privacy.redact=[inptu]", project=project)
    assert bad.code == 2 and "ingest.privacy.redact[0]" in capsys.readouterr().err


def test_unknown_fields_can_be_quarantined(project):
    write_jsonl(project / "t.jsonl", [trace("t1"), trace("t2", surprise=1)])
    r = flywheel("ingest", "ingest.max_quarantine_share=1", "path=t.jsonl", "ingest.unknown_fields=quarantine", "out=r.json", project=project)
    assert r.code == 0
    assert r.json["totals"]["quarantined"] == 1
    assert query(project, "SELECT reasons FROM quarantine") == [(["unknown field(s): surprise"],)]


def test_nothing_to_ingest_and_missing_paths_are_user_errors(project, capsys):
    assert flywheel("ingest", project=project).code == 2
    assert "nothing to ingest" in capsys.readouterr().err
    assert flywheel("ingest", "path=nope/*.jsonl", project=project).code == 2
    assert "matches no file" in capsys.readouterr().err


def test_compile_prints_the_schema_derived_sql(project, cli):
    r = cli("compile", "ingest", "kind=feedback", cwd=project)
    assert r.code == 0, r
    assert "-- validate_feedback:" in r.stdout and "checks derived from schemas/feedback.schema.json" in r.stdout
    assert "json_type" in r.stdout.lower() and "-- insert_feedback" in r.stdout
