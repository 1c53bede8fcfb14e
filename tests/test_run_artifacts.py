"""Run artifacts (.flywheel/runs/<id>/plan.sql and run_results.json) and the promise behind them: the plan that
`flywheel compile X` prints is what `flywheel X` runs. Every statement the store executes is journaled by the
real connection, so these tests compare the compiled plan with what DuckDB actually ran."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from jsonschema import Draft202012Validator

from engine.journal import Journal, RecordingConnection
from engine.run_artifacts import normalized
from engine.schemas import load_schema
from tests.conftest import run_cli
from tests.production_fixture import production_project, production_template  # noqa: F401

VALIDATOR = Draft202012Validator(load_schema("run_results"))
OTEL = Path(__file__).resolve().parent / "fixtures" / "otel"


def runs(project: Path, command: str) -> list[tuple[Path, dict]]:
    """The command's run directories in the project, oldest first."""
    found = []
    for path in (project / ".flywheel" / "runs").glob("*/run_results.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        VALIDATOR.validate(data)
        if data["command"] == command:
            found.append((path.parent, data))
    return sorted(found, key=lambda item: item[1]["started_at"])


def compiled_statements(plan_text: str) -> dict[str, str]:
    """plan.sql / `flywheel compile` output -> {statement name: SQL}, from the `-- name` headers."""
    out: dict[str, list[str]] = {}
    name = None
    for line in plan_text.splitlines():
        if line.startswith("-- ") and not line.startswith(("-- parameters:", "-- runs only", "-- python step",
                                                          "-- write: ")):
            name = line[3:].split(": ", 1)[0]
            out[name] = []
        elif not line.startswith("-- ") and name is not None:
            out[name].append(line)
    return {n: normalized("\n".join(lines)) for n, lines in out.items()}


def assert_plan_is_what_ran(run_dir: Path, data: dict, compile_stdout: str) -> None:
    """The plan ran, nothing but the plan ran: every statement is a plan statement (with the compiled text), issued
    by a named Python or write step of the plan, or the store's own bookkeeping."""
    plan_text = (run_dir / "plan.sql").read_text(encoding="utf-8")
    assert plan_text == compile_stdout  # the artifact and `flywheel compile` agree
    assert data["plan"]["not_run"] == [], data["plan"]
    planned = set(data["plan"]["statements"])
    assert set(compiled_statements(plan_text)) == planned
    for step in data["steps"]:
        # run by the executor as a plan statement: its text is the compiled text. A named statement of a Python
        # step or of the store's bookkeeping is that step's own (named, with its SQL shown), never a plan's.
        if step["name"] in planned or not (step["phase"] or step["step"]):
            assert step["in_plan"] and step["name"] in planned and step["sql"] is None, step
        elif step["name"] is not None:
            assert not step["in_plan"] and step["sql"], step
    ran = {s["name"] for s in data["steps"] if s["in_plan"]}
    assert ran <= planned and ran, data["plan"]
    assert data["summary"]["outside_plan"] == 0, [s["sql"] for s in data["steps"]
                                                  if not (s["in_plan"] or s["phase"] or s["step"])]
    assert {s["step"] for s in data["steps"] if s["step"]} <= planned


def test_evaluate_and_gate_run_their_compiled_plans(project):
    gate = run_cli("gate", cwd=project)
    assert gate.code == 0, gate
    compiled = run_cli("compile", "gate", cwd=project)
    assert compiled.code == 0, compiled
    [(run_dir, data)] = runs(project, "gate")
    assert data["exit_code"] == 0 and data["error"] is None
    assert_plan_is_what_ran(run_dir, data, compiled.stdout)
    # the gate evaluated both sides in-process: its scoring statements ran twice, as plan steps
    assert sum(s["name"] == "summary" for s in data["steps"]) == 2
    assert "prepare_repeated" in data["plan"]["skipped"]  # the fixture's runs have no repeats

    evaluate = run_cli("evaluate", cwd=project)
    assert evaluate.code == 0, evaluate
    [(run_dir, data)] = runs(project, "evaluate")
    assert_plan_is_what_ran(run_dir, data, run_cli("compile", "evaluate", cwd=project).stdout)
    scored = [s for s in data["steps"] if s["name"] and s["name"].startswith("score:")]
    assert scored and all(s["status"] == "ok" and s["ms"] >= 0 for s in scored)
    summary = data["summary"]
    assert summary["executed"] == len(data["steps"]) == (summary["in_plan"] + summary["store_bookkeeping"]
                                                         + summary["in_python_steps"] + summary["outside_plan"])



def test_monitor_and_bridge_run_their_compiled_plans(production_project):  # noqa: F811
    project = production_project
    assert run_cli("evaluate", "model=bm25_clean", "dataset=[support_qa]", cwd=project).code == 0
    compiled = run_cli("compile", "monitor", cwd=project)
    assert compiled.code == 0, compiled
    # the drift samples are filtered on parameters that the run binds, never on a literal NULL
    assert not re.search(r">=\s*NULL", compiled.stdout)
    for rule in ("input_length_psi", "topic_mix"):
        assert re.search(rf"-- drift\.{rule}\.current:.*\n-- parameters: \$cur_start, \$cur_end", compiled.stdout)
        assert re.search(rf"-- drift\.{rule}\.reference:.*\n-- parameters: \$ref_start, \$ref_end", compiled.stdout)

    monitor = run_cli("monitor", "out=monitor.json", cwd=project)
    assert monitor.code in (0, 1), monitor
    [(run_dir, data)] = runs(project, "monitor")
    assert data["run_id"] == monitor.json["run_id"] and data["exit_code"] == monitor.code
    assert_plan_is_what_ran(run_dir, data, compiled.stdout)
    current = next(s for s in data["steps"] if s["name"] == "drift.input_length_psi.current")
    assert current["params"] == ["cur_end", "cur_start"]
    # the drift statistics ran as plan statements over the two samples; the rules' Python steps (p-values)
    # issue no SQL at all
    for rule in ("input_length_psi", "topic_mix"):
        ran = {s["name"] for s in data["steps"] if s["in_plan"] and s["name"].startswith(f"drift.{rule}.")}
        assert {f"drift.{rule}.{role}" for role in ("reference_rows", "stored_profile", "current_bins",
                                                    "distribution", "statistic")} <= ran, ran
        statistic = next(s for s in data["steps"] if s["name"] == f"drift.{rule}.statistic")
        assert statistic["rows"] >= 1 and statistic["status"] == "ok"
    assert "ref_counts" in next(s for s in data["steps"] if s["name"] == "drift.input_length_psi.statistic")["params"]
    assert not [s for s in data["steps"] if (s["step"] or "").startswith("drift.")]
    assert "-- drift.input_length_psi.cut_points:" in compiled.stdout

    # ingest: the same files again, so every record is a duplicate: its conditional drop statements run, the
    # rejection ones are skipped
    ingest = run_cli("ingest", "path=data/production", cwd=project)
    assert ingest.code == 0, ingest
    run_dir, data = runs(project, "ingest")[-1]  # the template's own ingest came first
    assert_plan_is_what_ran(run_dir, data, run_cli("compile", "ingest", "path=data/production", cwd=project).stdout)
    assert {"drop_settled_traces", "settle_traces"} <= {s["name"] for s in data["steps"]}
    assert "validate_traces" in data["plan"]["skipped"]

    bridge = run_cli("bridge", cwd=project)
    assert bridge.code == 0, bridge
    [(run_dir, data)] = runs(project, "bridge")
    assert_plan_is_what_ran(run_dir, data, run_cli("compile", "bridge", cwd=project).stdout)
    assert {"select", "golden_hashes", "training", "exports:training"} <= {s["name"] for s in data["steps"]}


def _trace(tid, **fields) -> str:
    record = {"trace_id": tid, "timestamp": "2025-03-01T10:00:00Z", "model": "kw", "input": f"question {tid}",
              "output": "answer", "latency_ms": 12.5}
    return json.dumps({**record, **fields})


def _ingest_runs_its_plan(project: Path, *args: str, compiled: dict[tuple, str]) -> dict:
    """`flywheel ingest ARGS`: its plan.sql is `flywheel compile ingest ARGS` and nothing else ran.

    `compiled` holds the test's `flywheel compile ingest ARGS` outputs by ARGS: that command reads the config and
    its arguments, never the store nor the input files (engine/commands/ingest.py compile_sql), so the same ARGS
    in the same project are compiled once."""
    r = run_cli("ingest", *args, "ingest.max_quarantine_share=1", "out=ingest.json", cwd=project)
    assert r.code == 0, r
    run_dir, data = runs(project, "ingest")[-1]
    if args not in compiled:
        c = run_cli("compile", "ingest", *args, "ingest.max_quarantine_share=1", cwd=project)
        assert c.code == 0, c
        compiled[args] = c.stdout
    assert_plan_is_what_ran(run_dir, data, compiled[args])
    return {"ran": {s["name"] for s in data["steps"] if s["in_plan"]} | {s["step"] for s in data["steps"] if s["step"]},
            "result": r.json, "skipped": set(data["plan"]["skipped"])}


def test_ingest_runs_its_compiled_plan(project):
    inbox = project / "inbox"
    inbox.mkdir()
    (inbox / "traces.jsonl").write_text("\n".join([
        _trace("t1"), _trace("t2", app_build="1.2.3"), '{"trace_id": "t3"', _trace("t4", latency_ms=-5),
        _trace("t1"), _trace("t1", input="other content"), "[1, 2]"]) + "\n", encoding="utf-8")
    (inbox / "feedback.csv").write_text(
        "feedback_id,trace_id,timestamp,kind,rating,thumbs,correction,comment\n"
        "f1,t1,2025-03-01T10:05:00Z,rating,5,,,\nf2,t1,2025-03-01T10:05:00Z,rating,9,,,\n", encoding="utf-8")
    (inbox / "events.jsonl").write_text(json.dumps(
        {"event_id": "e1", "user_id": "u1", "timestamp": "2025-03-02T00:00:00Z", "type": "conversion", "amount": 96,
         "currency": "USD"}) + "\n" + json.dumps({"event_id": "e2", "timestamp": "x", "type": "explode"}) + "\n",
        encoding="utf-8")

    plans: dict[tuple, str] = {}
    # a fresh ingest of every kind, accepted and quarantined records, a repeat and a conflict in one file
    first = _ingest_runs_its_plan(project, "path=inbox", compiled=plans)
    totals = first["result"]["totals"]
    assert (totals["read"], totals["inserted"], totals["duplicates"]) == (11, 4, 1), totals
    assert {"insert_traces", "insert_events", "validate_traces", "validate_feedback",
            "validate_events", "quarantine_rejected_traces", "quarantine_conflicts_traces", "record_batch",
            "quarantine_examples", "resolve_quarantine"} <= first["ran"]
    assert {"insert_feedback", "insert_of_kind_feedback"} & first["ran"]  # CSV rows: by their header's kind
    assert "save_compiled_sql" in first["ran"] or "save_compiled_sql" in first["skipped"]

    # the same files again: every accepted record is a duplicate; earlier quarantined records are read again
    again = _ingest_runs_its_plan(project, "path=inbox", compiled=plans)  # compiled above
    assert again["result"]["totals"]["inserted"] == 0 and again["result"]["totals"]["duplicates"] == 5
    assert {"drop_settled_traces", "earlier_ingests", "load_compiled_sql"} <= again["ran"]
    assert "save_compiled_sql" in again["skipped"]  # the store held every compiled statement

    # one declared kind (its plan holds only that kind's statements), OTLP spans, Parquet
    (project / "more.jsonl").write_text(_trace("t9") + "\n", encoding="utf-8")
    declared = _ingest_runs_its_plan(project, "path=more.jsonl", "kind=traces", compiled=plans)
    assert "insert_traces" in declared["ran"] and not any(n.endswith("_feedback") for n in declared["ran"])
    (project / "salted.jsonl").write_text(_trace("t10", user_id="alice") + "\n", encoding="utf-8")
    salted = _ingest_runs_its_plan(project, "path=salted.jsonl", "ingest.privacy.salt=s3cret-salt", compiled=plans)
    assert salted["result"]["totals"]["inserted"] == 1
    plan_text = (runs(project, "ingest")[-1][0] / "plan.sql").read_text(encoding="utf-8")
    assert "$salt" in plan_text and "s3cret-salt" not in plan_text  # the salt is bound, never in the plan
    shutil.copy(OTEL / "current_layout.jsonl", project / "spans.jsonl")
    otlp = _ingest_runs_its_plan(project, "path=spans.jsonl", compiled=plans)
    assert otlp["result"]["totals"]["inserted"] > 0 and "detect" in otlp["ran"]
    pq.write_table(pa.table({"event_id": ["p1"], "user_id": ["u1"], "timestamp": ["2025-03-02T00:00:00Z"],
                             "type": ["conversion"], "amount": [1.0], "currency": ["USD"]}), project / "e.parquet")
    parquet = _ingest_runs_its_plan(project, "path=e.parquet", compiled=plans)
    assert "rows_to_json" in parquet["ran"] and parquet["result"]["totals"]["inserted"] == 1

    # the quarantine out to a file: its statements are the plan's too
    export = _ingest_runs_its_plan(project, "export_quarantine=bad.jsonl", compiled=plans)
    assert export["result"]["export"]["records"] > 0 and (project / "bad.jsonl").exists()
    assert {"export_records", "export_forget", "export_lines", "export_withheld"} <= export["ran"]
    assert not any(n.startswith("insert_") for n in export["ran"])


def test_a_command_that_fails_after_opening_the_store_writes_its_results(project):
    assert run_cli("evaluate", cwd=project).code == 0
    r = run_cli("gate", "baseline_run=no-such-run", "challenger_run=another", cwd=project)
    assert r.code == 2, r
    [(run_dir, data)] = runs(project, "gate")
    assert data["exit_code"] == 2 and "no stored run 'no-such-run'" in data["error"]
    assert not (run_dir / "plan.sql").exists()  # nothing compiled for a run that failed
    assert any("FROM runs WHERE run_id" in " ".join((s["sql"] or "").split())  # what it read before failing
               for s in data["steps"])


def test_a_command_refused_before_touching_the_store_leaves_nothing(project):
    (project / "data" / "mini.jsonl").write_text('{"id": "a", "input": "x", "expected": "y"}\n{not json\n',
                                                 encoding="utf-8")
    r = run_cli("evaluate", cwd=project)
    assert r.code == 2 and "mini.jsonl:2" in r.stderr, r
    assert not (project / ".flywheel").exists()


def test_recording_connection_journals_failures_and_keeps_duckdb_results():
    journal = Journal()
    con = RecordingConnection(duckdb.connect(), journal)
    assert con.execute("SELECT 40 + $n AS x", {"n": 2}).fetchall() == [(42,)]
    with pytest.raises(duckdb.CatalogException):
        con.execute("SELECT * FROM no_such_table")
    assert [(e.status, e.params) for e in journal.entries] == [("ok", ("n",)), ("error", ())]
    assert journal.entries[1].sql == "SELECT * FROM no_such_table"
