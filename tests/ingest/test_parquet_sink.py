"""`flywheel ingest path=... to=parquet:LAKE`: the rows a store ingest accepts, in a Hive-partitioned Parquet lake,
published atomically and idempotently; the quarantine stays in the store (read = accepted + quarantined).

The same input is ingested into a store (project A) and into a lake (project B); the lake's rows must equal the
store's, column for column and byte for byte (all but batch_id, which names the lake batch), with the store's
column types.
"""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_cli

PRIVACY = ("ingest.privacy.salt=pepper", "ingest.privacy.redact=[comment]")
NFD = "Cafe\u0301 ne\u0301gociation"  # decomposed accents: must stay decomposed
RAW_TEXT = f"line\u2028separator {NFD} 日本語の質問 سؤال عربي \U0001F600 tab\tend"
RECORDS = [
    {"trace_id": "t1", "user_id": "u1", "timestamp": "2025-03-01T10:00:00Z", "model": "m", "input": "hello",
     "output": "hi", "latency_ms": 12.5, "attributes": {"topic": "billing"}},
    {"trace_id": "t2", "user_id": "u2", "timestamp": "2025-03-01T23:30:00-02:00", "model": "m",  # UTC: 03-02
     "input": RAW_TEXT, "output": "\u00e9 vs e\u0301", "attributes": {"topic": "Ünïcödé", "note": RAW_TEXT}},
    {"trace_id": "t1", "user_id": "u1", "timestamp": "2025-03-01T10:00:00Z", "model": "m", "input": "hello",
     "output": "hi", "latency_ms": 12.5, "attributes": {"topic": "billing"}},  # an exact repeat: a duplicate
    {"trace_id": "t2", "user_id": "u2", "timestamp": "2025-03-01T23:30:00-02:00", "model": "m",
     "input": "other content"},  # the same id, other content: a conflict, quarantined
    {"trace_id": "t3", "timestamp": "2025-03-02T08:00:00Z", "model": "m"},  # no input: quarantined
    {"feedback_id": "f1", "trace_id": "t2", "timestamp": "2025-03-02T09:00:00Z", "kind": "rating", "rating": 4,
     "comment": "secret"},
    {"event_id": "e1", "user_id": "u2", "timestamp": "2025-03-03T00:00:00Z", "type": "revenue", "amount": 9.5},
]


def _write_input(project: Path) -> None:
    lines = [json.dumps(r, ensure_ascii=False) for r in RECORDS] + ["{not json"]
    (project / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _store(project: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)


def _lake_rows(lake: Path, kind: str) -> tuple[list[str], list[tuple]]:
    con = duckdb.connect()
    rel = con.sql("SELECT * EXCLUDE (batch_id) FROM read_parquet(?, hive_partitioning = false) ORDER BY ALL",
                  params=[str(lake / kind / "ingest_batch=*" / "day=*" / "*.parquet")])
    return rel.columns, rel.fetchall()


def _visible_files(lake: Path) -> list[Path]:
    return sorted(lake.glob("*/ingest_batch=*/day=*/*.parquet"))


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """(project A: ingested into its store, project B: ingested into its lake), same input and options."""
    a, b = tmp_path_factory.mktemp("to_store"), tmp_path_factory.mktemp("to_lake")
    for p in (a, b):
        _write_input(p)
    ra = run_cli("ingest", "path=in.jsonl", *PRIVACY, "out=r.json", cwd=a)
    rb = run_cli("ingest", "path=in.jsonl", *PRIVACY, "to=parquet:lake", "out=r.json", cwd=b)
    assert ra.code == 1 and rb.code == 1, (ra, rb)  # 3 of 8 quarantined: above the share, an alert in both
    return a, ra.json, b, rb.json


def test_the_lake_holds_exactly_the_rows_the_store_accepts(both):
    a, ra, b, rb = both
    for key in ("totals", "by_kind", "quarantine_reasons", "unknown_fields_kept"):
        assert rb[key] == ra[key], key
    t = rb["totals"]
    assert t["read"] == t["accepted"] + t["quarantined"] == 8 and t["duplicates"] == 1 and t["inserted"] == 4
    store = _store(a)
    for kind in ("traces", "feedback", "events"):
        columns, rows = _lake_rows(b / "lake", kind)
        stored = store.sql(f"SELECT * EXCLUDE (batch_id) FROM {kind} ORDER BY ALL")
        assert columns == stored.columns, kind
        assert rows == stored.fetchall() and rows, kind
        # the store table's types, column for column (partition columns aside: they are directories)
        got = duckdb.connect().sql("SELECT * FROM read_parquet(?, hive_partitioning = false)", params=[
            str(next((b / "lake" / kind).glob("ingest_batch=*/day=*/*.parquet")))]).types
        want = store.sql(f"SELECT * FROM {kind}").types
        assert [str(x) for x in got] == [str(x) for x in want], kind
    lake_store = _store(b)
    assert lake_store.sql("SELECT count(*) FROM traces").fetchall() == [(0,)]  # nothing in the store's tables
    quarantined = "SELECT kind, source_line, reasons FROM quarantine ORDER BY source_line"
    assert lake_store.sql(quarantined).fetchall() == store.sql(quarantined).fetchall()
    assert len(lake_store.sql(quarantined).fetchall()) == 3


def test_layout_days_are_utc_and_unicode_round_trips_byte_exact(both):
    _, _, b, rb = both
    batch = rb["lake"]["batch_id"]
    days = sorted(p.name for p in (b / "lake" / "traces" / f"ingest_batch={batch}").iterdir())
    assert days == ["day=2025-03-01", "day=2025-03-02"]  # t2 at 23:30 -02:00 is 01:30 UTC the next day
    assert [p.name for p in (b / "lake" / "traces" / f"ingest_batch={batch}" / "day=2025-03-02").iterdir()] == [
        "part-00000.parquet"]
    con = duckdb.connect()
    (text, output, batch_col, user), = con.execute(
        "SELECT input, output, batch_id, user_id FROM read_parquet(?) WHERE trace_id = 't2'",
        [str(b / "lake" / "traces" / "*" / "*" / "*.parquet")]).fetchall()
    assert text.encode("utf-8") == RAW_TEXT.encode("utf-8")  # U+2028, NFD, non-Latin, emoji: as written
    assert output == "\u00e9 vs e\u0301" and batch_col == batch
    assert user != "u2" and len(user) == 64  # hashed with the salt, as in the store
    (comment,), = con.execute("SELECT comment FROM read_parquet(?)",
                              [str(b / "lake" / "feedback" / "*" / "*" / "*.parquet")]).fetchall()
    assert comment == "[REDACTED]"
    manifest = json.loads((b / "lake" / "_batches" / f"{batch}.json").read_text(encoding="utf-8"))
    assert manifest["kinds"]["traces"] == {"rows": 2, "days": ["2025-03-01", "2025-03-02"]}
    assert not [p for p in (b / "lake").rglob("*") if p.name.startswith("_staging")]


def test_reingesting_the_same_input_writes_nothing_twice(both):
    _, _, b, rb = both
    before = {p: p.stat().st_mtime_ns for p in _visible_files(b / "lake")}
    r = run_cli("ingest", "path=in.jsonl", *PRIVACY, "to=parquet:lake", "out=again.json", cwd=b)
    assert r.code == 0, r
    assert r.json["lake"]["already_published"] and r.json["lake"]["batch_id"] == rb["lake"]["batch_id"]
    assert "nothing written twice" in r.stdout
    assert {p: p.stat().st_mtime_ns for p in _visible_files(b / "lake")} == before
    assert _store(b).sql("SELECT count(*) FROM quarantine").fetchall() == [(3,)]  # not quarantined twice


def test_a_killed_ingest_publishes_nothing_and_the_next_one_cleans_up(tmp_path):
    _write_input(tmp_path)
    r = run_cli("ingest", "path=in.jsonl", "to=parquet:lake", cwd=tmp_path,
                env={"FLYWHEEL_TEST_KILL_INGEST_AT": "before_publish"})
    assert r.code == -9, r
    staging = [p for p in (tmp_path / "lake").rglob("_staging-*") if p.is_dir()]
    assert staging and list((tmp_path / "lake").rglob("*.parquet"))  # written, but only under staging names
    assert _visible_files(tmp_path / "lake") == [] and not (tmp_path / "lake" / "_batches").exists()
    assert _store(tmp_path).sql("SELECT count(*) FROM quarantine").fetchall() == [(0,)]  # rolled back too
    r = run_cli("ingest", "path=in.jsonl", "to=parquet:lake", "out=r.json", cwd=tmp_path)
    assert r.code == 1, r  # the share alert, as always with this input
    assert r.json["lake"]["cleaned_staging"] and not any(p.exists() for p in staging)
    assert len(_visible_files(tmp_path / "lake")) == 4  # traces: 2 days, feedback 1, events 1


def test_killed_after_publish_before_the_store_commits_the_rerun_records_the_quarantine_once(tmp_path):
    _write_input(tmp_path)
    r = run_cli("ingest", "path=in.jsonl", "to=parquet:lake", cwd=tmp_path,
                env={"FLYWHEEL_TEST_KILL_INGEST_AT": "after_publish"})
    assert r.code == -9, r
    published = {p: p.stat().st_mtime_ns for p in _visible_files(tmp_path / "lake")}
    assert len(published) == 4
    assert _store(tmp_path).sql("SELECT count(*) FROM quarantine").fetchall() == [(0,)]
    r = run_cli("ingest", "path=in.jsonl", "to=parquet:lake", "out=r.json", cwd=tmp_path)
    assert r.code == 1 and r.json["lake"]["already_published"], r
    assert {p: p.stat().st_mtime_ns for p in _visible_files(tmp_path / "lake")} == published
    assert _store(tmp_path).sql("SELECT count(*) FROM quarantine").fetchall() == [(3,)]
    r = run_cli("ingest", "path=in.jsonl", "to=parquet:lake", cwd=tmp_path)
    assert r.code == 0 and "nothing written twice" in r.stdout, r


def test_bad_destinations_exit_2_naming_to(tmp_path):
    _write_input(tmp_path)
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    cases = {"to=s3://bucket/lake": "unknown destination", "to=parquet:": "needs a directory",
             "to=parquet:afile": "is a file", "to=parquet:afile/lake": "cannot create"}
    for arg, message in cases.items():
        r = run_cli("ingest", "path=in.jsonl", arg, cwd=tmp_path)
        assert r.code == 2, (arg, r)
        assert "to" in r.stderr and message in r.stderr, (arg, r)
        assert "Traceback" not in r.stderr
    assert not (tmp_path / ".flywheel" / "flywheel.duckdb").exists() or _store(tmp_path).sql(
        "SELECT count(*) FROM ingest_batches").fetchall() == [(0,)]
