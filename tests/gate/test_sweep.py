"""Hydra sweeps over challengers: basic and joblib launchers, one writer, a leaderboard."""
from __future__ import annotations

import duckdb
import pytest
from jsonschema import Draft202012Validator

from engine.schemas import load_schema
from tests.test_run_artifacts import runs as run_artifacts


@pytest.mark.parametrize("launcher", [(), ("hydra/launcher=joblib", "hydra.launcher.n_jobs=2")])
def test_sweep_over_challengers_merges_into_one_store_and_ranks(cli, project, launcher):
    r = cli("gate", "-m", "challenger=lookup,lookup_better", "+challenger.params.flaky_cases=[],[m1]",
            *launcher, "out=leaderboard.json", cwd=project)
    assert r.code == 0, r
    assert "Could not set lock" not in r.stdout + r.stderr
    board = r.json
    Draft202012Validator(load_schema("leaderboard")).validate(board)
    assert len(board["entries"]) == 4 and board["main_metric"] == "found"
    top = board["entries"][0]
    assert (top["challenger"], top["verdict"]) == ("lookup_better", "PASS")
    assert top["deltas"]["mini.found"] == pytest.approx(0.2)
    assert top["swept"] == ["model@challenger=lookup_better", "+challenger.params.flaky_cases=[]"]
    # every job's decision and runs landed in the main store
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    decisions = {d for (d,) in con.execute("SELECT decision_id FROM gate_decisions").fetchall()}
    assert decisions == {e["decision_id"] for e in board["entries"]}
    runs = con.execute("SELECT count(*) FROM runs WHERE status = 'ok'").fetchall()[0][0]
    assert runs == 8  # a baseline and a challenger run per job
    scored = con.execute("SELECT count(DISTINCT run_id) FROM scores").fetchall()[0][0]
    assert scored == 8
    # the merge ran its plan (engine/gate/leaderboard.py), written with the sweep's run artifacts
    [(run_dir, data)] = run_artifacts(project, "gate_sweep")
    assert data["exit_code"] == 0 and data["summary"]["outside_plan"] == 0 and (run_dir / "plan.sql").exists()
    ran = [s["name"] for s in data["steps"] if s["in_plan"]]
    assert ran.count("merge:runs") == 4 and ran.count("leaderboard:deltas") == 4 and data["plan"]["not_run"] == []


def test_promote_is_refused_in_a_sweep(cli, project):
    r = cli("gate", "-m", "challenger=lookup,lookup_better", "promote=true", cwd=project)
    assert r.code == 2 and "not allowed in a sweep" in r.stderr
