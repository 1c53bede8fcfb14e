"""A CI job retried after its promotion committed: promoting the blessed head again is a no-op that says so;
gating the blessed model against itself is an error (exit 2) that says why."""
from __future__ import annotations

import duckdb
from jsonschema import Draft202012Validator

from engine.schemas import load_schema


def blessed(project) -> list[tuple]:
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:
        return con.execute("SELECT version, model_name, decision_id FROM blessed_baselines ORDER BY version").fetchall()
    finally:
        con.close()


def decisions(project) -> int:
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM gate_decisions").fetchall()[0][0]
    finally:
        con.close()


def test_a_retried_promotion_is_a_no_op_that_says_so(cli, project):
    first = cli("gate", "promote=true", "out=first.json", "junit=first.xml", cwd=project)
    assert first.code == 0, first
    assert blessed(project) == [(1, "lookup_better", first.json["decision_id"])]
    retry = cli("gate", "promote=true", "out=retry.json", "junit=retry.xml", cwd=project)  # the CI retry
    assert retry.code == 0, retry
    assert "already promoted" in retry.stdout and "blessed baseline v1" in retry.stdout
    assert "nothing to promote" in retry.stdout
    assert blessed(project) == [(1, "lookup_better", first.json["decision_id"])]  # no v2 of the same model
    assert decisions(project) == 1  # nothing re-decided
    result = retry.json
    Draft202012Validator(load_schema("gate_result")).validate(result)
    assert result["decision_id"] == first.json["decision_id"] and result["verdict"] == "PASS"
    assert result["promoted"]["already_blessed"] is True and result["promoted"]["version"] == 1
    assert (project / "retry.xml").read_text() == (project / "first.xml").read_text()  # CI artifacts still written
    # with the baseline named explicitly, the same: the fingerprint is already the head
    named = cli("gate", "promote=true", "baseline=lookup", cwd=project)
    assert named.code == 0 and "already promoted" in named.stdout
    assert len(blessed(project)) == 1


def test_gating_the_blessed_model_against_itself_is_an_error_that_says_why(cli, project):
    assert cli("gate", "promote=true", cwd=project).code == 0
    r = cli("gate", cwd=project)  # no baseline named: the blessed head, which is this very challenger
    assert r.code == 2, r
    assert "the challenger 'lookup_better' is the blessed baseline v1 itself" in r.stderr
    assert "a gate of a model against itself decides nothing" in r.stderr
    assert "Traceback" not in r.stderr
    assert decisions(project) == 1  # nothing decided, nothing stored


def test_the_same_model_on_both_sides_is_refused(cli, project):
    r = cli("gate", "challenger=lookup", "baseline=lookup", cwd=project)
    assert r.code == 2, r
    assert "the challenger 'lookup' and the baseline (config) are the same model" in r.stderr
    ev = cli("evaluate", "out=ev.json", cwd=project)
    assert ev.code == 0
    run_id = ev.json["run_id"]
    stored = cli("gate", f"baseline_run={run_id}", f"challenger_run={run_id}", cwd=project)
    assert stored.code == 2 and "are the same model" in stored.stderr
