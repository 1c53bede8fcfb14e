"""What identifies a model output in the cache (engine/output_identity.py), through the real CLI.

Replay predictions belong to their case id; a python model shares one output between cases with equal inputs
unless its config says `output_identity: case`; old stores (outputs keyed by input hash) stay readable.
"""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from engine.provenance import canonical_json, utc_now
from engine.store import MIGRATIONS, Store


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def shared_input_project(project: Path, pairs: int = 20) -> list[dict]:
    """A golden file of `pairs` questions each asked twice, with different expected answers."""
    rows = []
    for i in range(pairs):
        for side in ("a", "b"):
            rows.append({"id": f"q{i}{side}", "input": f"Which plan does customer {i} need?",
                         "expected": f"plan-{i}-{side}"})
    write_jsonl(project / "data" / "mini.jsonl", rows)
    return rows


def summary(result: dict, metric: str) -> dict:
    return next(r for r in result["summary"] if r["metric"] == metric and r["tag"] is None)


def test_replayed_cases_sharing_an_input_keep_their_own_predictions(cli, project):
    rows = shared_input_project(project)
    write_jsonl(project / "preds.jsonl", [{"id": r["id"], "output": r["expected"]} for r in rows])
    (project / "conf" / "model" / "replayed.yaml").write_text(
        "name: replayed\nadapter: replay\nparams:\n  path: preds.jsonl\n")
    r = cli("evaluate", "model=replayed", "out=r.json", cwd=project)
    assert r.code == 0, r
    # every prediction equals its own case's answer: all 40 exact (sharing by input scored 20 of them wrong)
    assert summary(r.json, "exact") == {**summary(r.json, "exact"), "n": 40, "mean": 1.0}
    assert r.json["calls"] == {"needed": 40, "cached": 0, "called": 40, "errors": 0}
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    wrong = con.execute("SELECT s.case_id, o.output_text FROM scores AS s JOIN run_cases AS rc USING (run_id, case_id) "
                        "JOIN outputs AS o ON o.output_key = rc.output_key WHERE s.metric = 'exact' "
                        "AND NOT s.passed").fetchall()
    assert wrong == []
    con.close()
    # the second run reads all 40 from the cache and scores the same
    again = cli("evaluate", "model=replayed", "out=r2.json", cwd=project)
    assert again.code == 0, again
    assert again.json["calls"] == {"needed": 40, "cached": 40, "called": 0, "errors": 0}
    assert again.json["summary"] == r.json["summary"]


def test_a_python_model_shares_by_input_unless_its_answers_belong_to_cases(cli, project, tmp_path):
    rows = shared_input_project(project, pairs=3)
    answers = {r["id"]: r["expected"] for r in rows}
    calls = tmp_path / "calls.jsonl"
    model = project / "conf" / "model" / "by_case.yaml"
    model.write_text(json.dumps({"name": "by_case", "adapter": "python", "_target_": "lookup_model.LookupModel",
                                 "params": {"answers": answers, "calls_file": str(calls)}}))
    # input identity (the python default): one call per distinct question, so each pair shares one answer
    shared = cli("evaluate", "model=by_case", "out=shared.json", cwd=project)
    assert shared.code == 0, shared
    assert shared.json["calls"]["called"] == 3 and len(calls.read_text().splitlines()) == 3
    assert summary(shared.json, "exact")["mean"] == pytest.approx(0.5)
    # a model whose answers depend on the case says so, and every case gets its own call and answer
    calls.write_text("")
    own = cli("evaluate", "model=by_case", "+model.output_identity=case", "out=own.json", cwd=project)
    assert own.code == 0, own
    assert own.json["calls"]["called"] == 6
    assert sorted(json.loads(x) for x in calls.read_text().splitlines()) == sorted(answers)
    assert summary(own.json, "exact")["mean"] == 1.0


def test_replay_refuses_to_share_outputs_by_input(cli, project):
    (project / "preds.jsonl").write_text('{"id": "m1", "output": "30 days"}\n')
    (project / "conf" / "model" / "replayed.yaml").write_text(
        "name: replayed\nadapter: replay\noutput_identity: input\nparams:\n  path: preds.jsonl\n")
    r = cli("evaluate", "model=replayed", cwd=project)
    assert r.code == 2, r
    assert "model.output_identity" in r.stderr + r.stdout
    assert "answers per case id" in r.stderr + r.stdout
    assert "Traceback" not in r.stderr


def test_two_predictions_for_one_case_id_are_an_error_not_a_silent_choice(cli, project):
    write_jsonl(project / "preds.jsonl", [{"id": "m1", "output": "30 days"}, {"id": "m2", "output": "x"},
                                          {"id": "m1", "output": "60 days"}])
    (project / "conf" / "model" / "replayed.yaml").write_text(
        "name: replayed\nadapter: replay\nparams:\n  path: preds.jsonl\n")
    r = cli("evaluate", "model=replayed", cwd=project)
    assert r.code == 2, r
    assert "'m1' at records 1, 3" in r.stderr + r.stdout
    assert not (project / ".flywheel" / "flywheel.duckdb").exists() or _no_ok_runs(project)


def _no_ok_runs(project: Path) -> bool:
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM runs WHERE status = 'ok'").fetchall()[0][0] == 0
    finally:
        con.close()


def _old_store(path: Path) -> None:
    """A store as Flywheel left it before migration 40: outputs and run_cases keyed by input hash only."""
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description VARCHAR, "
                "applied_at TIMESTAMPTZ DEFAULT now())")
    for version, description, statements in sorted(m for m in MIGRATIONS if m[0] < 40):
        for statement in statements:
            con.execute(statement)
        con.execute("INSERT INTO schema_migrations (version, description) VALUES (?, ?)", [version, description])
    now = utc_now()
    con.execute("INSERT INTO dataset_versions VALUES ('v1', 'mini', 'data/mini.jsonl', 1, NULL, ?, '{}')", [now])
    con.execute("INSERT INTO cases VALUES ('v1', 'm1', 1, '\"q\"', 'q', '\"30 days\"', ['30 days'], [], ['billing'], "
                "'{}', 'h1')")
    for run, fp, answer, passed in (("old-b", "fp-b", "30 days", True), ("old-c", "fp-c", "no idea", False)):
        con.execute("INSERT INTO runs (run_id, command, model_name, model_fingerprint, config_hash, metrics_hash, "
                    "dataset_versions, started_at, finished_at, status, n_cases, config) "
                    "VALUES (?, 'evaluate', ?, ?, 'c', 'mh', ?, ?, ?, 'ok', 1, '{}')",
                    [run, run, fp, canonical_json({"mini": "v1"}), now, now])
        con.execute("INSERT INTO run_cases VALUES (?, 'mini', 'v1', 'm1', 'h1')", [run])
        con.execute("INSERT INTO outputs VALUES (?, 'h1', 0, ?, NULL, 5.0, 1, 1, 0.0, NULL, ?, ?)",
                    [fp, answer, run, now])
        con.execute("INSERT INTO scores VALUES (?, 'mini', 'v1', 'm1', 0, 'found', ?, ?, NULL)",
                    [run, 1.0 if passed else 0.0, passed])
    con.close()


def test_an_old_store_is_migrated_and_its_runs_read_back_with_their_outputs(cli, project):
    store = project / ".flywheel" / "flywheel.duckdb"
    store.parent.mkdir(parents=True)
    _old_store(store)
    (project / "conf" / "gate" / "mini.yaml").write_text(
        "rules:\n  no_regressions:\n    kind: no_regression\n    metric: found\n")
    # the stored runs' metrics hash is not this config's: compare them through the stored-run path anyway
    with Store.open(store) as s:  # migrates
        columns = [r[0] for r in s.con.execute("DESCRIBE outputs").fetchall()]
        assert "output_key" in columns and "input_hash" not in columns
        assert s.con.execute("SELECT output_key FROM run_cases ORDER BY run_id").fetchall() == [("h1",), ("h1",)]
        s.con.execute("UPDATE runs SET metrics_hash = ?", [_metrics_hash(project)])
    r = cli("gate", "baseline_run=old-b", "challenger_run=old-c", "out=g.json", cwd=project)
    assert r.code == 1, r
    case = next(x for x in r.json["rules"] if x["name"] == "no_regressions")["cases"][0]
    assert (case["baseline_output"], case["challenger_output"]) == ("30 days", "no idea")


def _metrics_hash(project: Path) -> str:
    from engine.config import compose, find_project
    from engine.evaluation import metrics_hash

    return metrics_hash(compose(find_project(str(project)), []).config["metrics"])
