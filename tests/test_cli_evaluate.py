"""`flywheel evaluate` through the real CLI on a temporary project with its own conf/."""
from __future__ import annotations

import json
import subprocess

import duckdb
import pytest
from jsonschema import Draft202012Validator

from engine.schemas import load_schema


def summary_row(result: dict, metric: str, tag: str | None = None) -> dict:
    return next(r for r in result["summary"] if r["metric"] == metric and r["tag"] == tag)


def test_help_lists_every_command_on_one_line(cli, project):
    r = cli("--help", cwd=project)
    assert r.code == 0
    lines = r.stdout.splitlines()
    assert any(line.strip().startswith("evaluate ") for line in lines)
    assert any(line.strip().startswith("compile <command>") for line in lines)


def test_evaluate_scores_every_case_and_records_errors(cli, project):
    r = cli("evaluate", "out=result.json", cwd=project)
    assert r.code == 0, r
    result = r.json
    Draft202012Validator(load_schema("evaluate_result")).validate(result)
    # lookup answers: m1 exact, m2 contained in a sentence, m3 "Yes" (one of two answers), m4 crashes, m5 wrong
    assert summary_row(result, "exact")["mean"] == pytest.approx(2 / 5)
    assert summary_row(result, "found")["mean"] == pytest.approx(3 / 5)
    assert summary_row(result, "found", "account")["mean"] == 1.0
    assert summary_row(result, "found", "billing")["mean"] == 0.5
    assert summary_row(result, "exact", "troubleshooting")["pass_rate"] == 0.0
    assert result["calls"] == {"needed": 5, "cached": 0, "called": 5, "errors": 1}

    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    detail = con.execute("SELECT passed, detail FROM scores WHERE case_id = 'm4' AND metric = 'exact'").fetchall()
    assert detail == [(False, "errored: RuntimeError: model crashed on purpose")]
    run = con.execute("SELECT status, n_cases, n_errors, config_hash, metrics_hash, model_fingerprint "
                      "FROM runs").fetchall()
    assert run == [("ok", 5, 1, result["config_hash"], result["metrics_hash"], result["model"]["fingerprint"])]


def test_second_run_calls_the_model_zero_times_except_errored_cases(cli, project, tmp_path):
    calls = tmp_path / "calls.jsonl"
    args = ("evaluate", f"+model.params.calls_file={calls}", "out=r.json")
    first = cli(*args, cwd=project)
    assert first.code == 0, first
    assert len(calls.read_text().splitlines()) >= 5
    calls.write_text("")
    second = cli(*args, cwd=project)
    assert second.code == 0, second
    # only the crashing case is sent again (errors are not cached); the four good outputs come from the cache
    assert [json.loads(x) for x in calls.read_text().splitlines()] == ["m4"]
    assert second.json["calls"] == {"needed": 5, "cached": 4, "called": 1, "errors": 1}
    assert second.json["summary"] == first.json["summary"]


def test_same_dataset_content_reuses_its_version(cli, project):
    assert cli("evaluate", "out=a.json", cwd=project).code == 0
    assert cli("evaluate", "out=b.json", cwd=project).code == 0
    a = json.loads((project / "a.json").read_text())
    b = json.loads((project / "b.json").read_text())
    assert a["dataset_versions"] == b["dataset_versions"]
    data = project / "data" / "mini.jsonl"
    data.write_text(data.read_text() + '{"id": "m6", "input": "new?", "expected": "x"}\n')
    c = cli("evaluate", "out=c.json", cwd=project)
    assert c.code == 0, c
    assert c.json["dataset_versions"]["mini"] != a["dataset_versions"]["mini"]
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM dataset_versions").fetchall()[0][0] == 2


def test_git_commit_of_the_project_is_recorded(cli, project):
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(git + ["init", "-q"], cwd=project, check=True)
    subprocess.run(git + ["add", "-A"], cwd=project, check=True)
    subprocess.run(git + ["commit", "-qm", "init"], cwd=project, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout.strip()
    r = cli("evaluate", "out=r.json", cwd=project)
    assert r.code == 0, r
    # r.json is written after the run, so the tree was clean when the commit was read
    assert r.json["git_commit"] == head


def test_compile_prints_the_sql_without_touching_the_store(cli, project):
    r = cli("compile", "evaluate", cwd=project)
    assert r.code == 0, r
    assert "INSERT INTO scores" in r.stdout and "-- score:exact" in r.stdout and "-- summary" in r.stdout
    assert not (project / ".flywheel").exists()


def test_replay_adapter_scores_predictions_from_a_file(cli, project):
    (project / "preds.jsonl").write_text("\n".join(json.dumps(x) for x in [
        {"id": "m1", "output": "30 days"}, {"id": "m2", "output": "settings > security"},
        {"id": "m3", "output": "no"}, {"id": "m5", "output": "$12 per user", "latency_ms": 12.5}]) + "\n")
    (project / "conf" / "model" / "replayed.yaml").write_text(
        "name: replayed\nadapter: replay\nparams:\n  path: preds.jsonl\n")
    r = cli("evaluate", "model=replayed", "out=r.json", cwd=project)
    assert r.code == 0, r
    assert summary_row(r.json, "exact")["mean"] == pytest.approx(3 / 5)
    assert r.json["calls"]["errors"] == 1  # m4 has no prediction
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    assert con.execute("SELECT detail FROM scores WHERE case_id='m4' AND metric='exact'").fetchall()[0][0] == \
        "errored: no prediction for case 'm4' in preds.jsonl"
