"""Correcting data through the real CLI: a conflicting re-ingest says which batch to retract, `store batches`
lists it, `store retract` removes it in one transaction and marks the monitor runs that read it stale, and the
corrected data then loads. `ingest` exits 1 when the quarantine share is above ingest.max_quarantine_share."""
from __future__ import annotations

import json

import duckdb
from ingest_helpers import flywheel, query, run_cli, trace, write_jsonl
from jsonschema import Draft202012Validator

from engine.ingest.share import DEFAULT_MAX_SHARE, quarantine_share, share_verdict
from engine.schemas import load_schema
from tests.production_fixture import production_project, production_template  # noqa: F401


def _feedback(traces: list[dict], rating: int) -> list[dict]:
    return [{"feedback_id": f"rating-fix-{i}", "trace_id": t["trace_id"], "timestamp": t["timestamp"], "kind": "rating",
             "rating": rating} for i, t in enumerate(traces)]


def test_correct_and_reingest_loop_end_to_end(production_project):  # noqa: F811
    project = production_project  # 8 simulated days, ingested (tests/production_fixture.py)
    traces = [json.loads(x) for x in (project / "data/production/traces.jsonl").read_text().splitlines()[:12]]
    write_jsonl(project / "ratings.jsonl", _feedback(traces, 1))                 # a bad export: every rating 1
    bad = run_cli("ingest", "path=ratings.jsonl", "out=bad.json", cwd=project)
    assert bad.code == 0, bad
    bad_batch = bad.json["batch_id"]
    monitored = run_cli("monitor", "out=m1.json", cwd=project)
    assert monitored.code in (0, 1), monitored

    write_jsonl(project / "ratings.jsonl", _feedback(traces, 5))                 # the corrected export
    conflict = run_cli("ingest", "path=ratings.jsonl", "out=c.json", cwd=project)
    assert conflict.code == 1, conflict                                          # 100 % quarantined: an alert
    assert conflict.json["conflicts"]["stored_by"] == {bad_batch: 12}
    assert f"flywheel store retract {bad_batch}" in conflict.stdout
    assert conflict.json["quarantine_share"] == {"share": 1.0, "limit": DEFAULT_MAX_SHARE, "skipped": 0,
                                                 "exceeded": True}

    listed = run_cli("store", "batches", "out=b.json", cwd=project)
    assert listed.code == 0, listed
    Draft202012Validator(load_schema("store_batches_result")).validate(listed.json)
    rows = {b["batch_id"]: b for b in listed.json["batches"]}
    assert rows[bad_batch]["stored_now"]["feedback"] == 12 and rows[bad_batch]["sources"][0]["path"] == "ratings.jsonl"
    assert rows[conflict.json["batch_id"]]["counts"]["quarantined"] == 12

    retracted = run_cli("store", "retract", bad_batch, "out=r.json", cwd=project)
    assert retracted.code == 0, retracted
    Draft202012Validator(load_schema("store_retract_result")).validate(retracted.json)
    assert retracted.json["removed"]["feedback"] == 12 and retracted.json["removed"]["traces"] == 0
    assert retracted.json["stale_monitor_runs"] == [monitored.json["run_id"]]
    assert query(project, "SELECT count(*) FROM feedback WHERE batch_id = ?", [bad_batch]) == [(0,)]
    again = run_cli("store", "retract", bad_batch, cwd=project)
    assert again.code == 0 and "already retracted" in again.stdout

    fixed = run_cli("ingest", "path=ratings.jsonl", "out=f.json", cwd=project)
    assert fixed.code == 0, fixed
    assert fixed.json["totals"]["inserted"] == 12 and fixed.json["resolved"] == {"accepted": 12}
    assert query(project, "SELECT min(rating), max(rating) FROM feedback WHERE feedback_id LIKE 'rating-fix-%'") == [(5, 5)]
    assert run_cli("ingest", "export_quarantine=q.jsonl", "out=q.json", cwd=project).json["export"]["records"] == 0

    after = run_cli("monitor", "out=m2.json", cwd=project)
    assert [s["run_id"] for s in after.json["stale_runs"]] == [monitored.json["run_id"]]
    assert after.json["stale_runs"][0]["retracted_batches"] == [bad_batch]
    assert "STALE" in after.stdout
    final = run_cli("store", "batches", "out=b2.json", cwd=project)
    done = {b["batch_id"]: b for b in final.json["batches"]}[bad_batch]
    assert done["retracted_at"] and done["stored_now"]["feedback"] == 0


def test_retract_removes_a_batch_in_one_transaction_and_reopens_what_it_resolved(project):
    write_jsonl(project / "t.jsonl", [trace("t1"), trace("t2", latency_ms=-1)])
    flywheel("ingest", "path=t.jsonl", "ingest.max_quarantine_share=1", project=project)
    flywheel("ingest", "export_quarantine=q.jsonl", project=project)
    (project / "q.jsonl").write_text(json.dumps(trace("t2")) + "\n")
    fix = flywheel("ingest", "path=q.jsonl", "out=r.json", project=project)
    assert fix.json["resolved"] == {"accepted": 1}
    live = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"))
    live.execute("INSERT INTO live_scores VALUES ('t2', 'm', 'h', 1.0, true, NULL, now())")
    live.close()
    r = flywheel("store", "retract", fix.json["batch_id"], "out=r2.json", project=project)
    assert r.code == 0
    assert r.json["removed"] == {"traces": 1, "feedback": 0, "events": 0, "live_scores": 1, "quarantine": 0,
                                 "quarantine_reopened": 1, "tool_steps": 0}
    assert [t for (t,) in query(project, "SELECT trace_id FROM traces")] == ["t1"]
    assert query(project, "SELECT count(*) FROM live_scores") == [(0,)]
    assert flywheel("ingest", "export_quarantine=q2.jsonl", "out=e.json", project=project).json["export"]["records"] == 1


def test_retracting_an_unknown_batch_is_a_user_error_naming_the_known_ones(project, capsys):
    write_jsonl(project / "t.jsonl", [trace("t1")])
    batch = flywheel("ingest", "path=t.jsonl", "out=r.json", project=project).json["batch_id"]
    capsys.readouterr()
    assert flywheel("store", "retract", "ingest-nope", project=project).code == 2
    err = capsys.readouterr().err
    assert "no ingest batch 'ingest-nope'" in err and batch in err
    assert flywheel("store", "frobnicate", project=project).code == 2


def test_the_quarantine_share_decides_the_exit_code(project):
    write_jsonl(project / "t.jsonl", [trace(f"t{i}") for i in range(19)] + [trace("bad", latency_ms=-1)])
    at_limit = flywheel("ingest", "path=t.jsonl", "out=r.json", project=project)  # 1/20 = 5 %: not above
    assert at_limit.code == 0 and at_limit.json["quarantine_share"]["share"] == 0.05
    strict = flywheel("ingest", "path=t.jsonl", "ingest.max_quarantine_share=0.01", "out=r2.json", project=project)
    assert strict.code == 1 and strict.json["quarantine_share"]["exceeded"]
    assert query(project, "SELECT count(DISTINCT batch_id) FROM ingest_batches") == [(2,)]  # stored all the same
    write_jsonl(project / "e.jsonl", [])
    assert flywheel("ingest", "path=e.jsonl", "out=r3.json", project=project).code == 0


def test_the_share_counts_records_a_reader_skipped():
    assert quarantine_share(100, 5) == 0.05
    assert quarantine_share(90, 0, skipped=10) == 0.1  # 10 spans skipped of 100 model calls
    assert quarantine_share(0, 0) is None
    assert share_verdict({"read": 90, "quarantined": 0, "skipped": 10}, None)["exceeded"]
    assert not share_verdict({"read": 90, "quarantined": 0, "skipped": 10}, 0.1)["exceeded"]


def test_records_a_reader_skips_count_against_the_share(project, monkeypatch):
    """The hook for readers that must leave input out (OTel model-call spans they cannot convert)."""
    from engine.ingest import readers

    original = readers.read_jsonl

    def skipping(source, chunk_bytes):
        for i, chunk in enumerate(original(source, chunk_bytes)):
            chunk.skipped = 10 if i == 0 else 0
            yield chunk

    monkeypatch.setattr(readers, "read_jsonl", skipping)
    write_jsonl(project / "t.jsonl", [trace(f"t{i}") for i in range(90)])
    r = flywheel("ingest", "path=t.jsonl", "out=r.json", project=project)
    assert r.code == 1
    assert r.json["quarantine_share"] == {"share": 0.1, "limit": DEFAULT_MAX_SHARE, "skipped": 10, "exceeded": True}
    assert r.json["files"][0]["skipped"] == 10 and r.json["totals"]["read"] == 90
