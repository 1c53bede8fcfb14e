"""`flywheel gate` scenarios through the real CLI on the small test project."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import duckdb
import pytest
from jsonschema import Draft202012Validator

from engine.schemas import load_schema


def rule(result: dict, name: str) -> dict:
    return next(r for r in result["rules"] if r["name"] == name)


def valid(result: dict) -> dict:
    Draft202012Validator(load_schema("gate_result")).validate(result)
    return result


def test_clean_challenger_passes_and_is_promoted_then_becomes_the_default_baseline(cli, project):
    r = cli("gate", "promote=true", "out=g.json", cwd=project)
    assert r.code == 0, r
    result = valid(r.json)
    assert result["verdict"] == "PASS"
    assert result["baseline"]["source"] == "config" and result["promoted"] == {"version": 1, "model": "lookup_better"}
    assert rule(result, "found_improves")["stats"]["delta"] == pytest.approx(0.2)
    # next gate, no baseline named: compares against the blessed model
    r2 = cli("gate", "challenger=lookup", "out=g2.json", cwd=project)
    assert r2.code == 1, r2
    assert r2.json["baseline"] == {**r2.json["baseline"], "name": "lookup_better", "source": "blessed v1"}
    assert r2.json["baseline"]["calls"]["called"] == 1  # cached outputs; only the errored m4 is retried
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    rows = con.execute("SELECT verdict, gate_config_hash FROM gate_decisions ORDER BY decided_at").fetchall()
    assert [v for v, _ in rows] == ["PASS", "BLOCKED"] and rows[0][1] == result["gate_config_hash"]


def test_regressing_challenger_is_blocked_naming_the_case_and_cannot_be_promoted(cli, project):
    r = cli("gate", "challenger=lookup", "baseline=lookup_better", "promote=true", "out=g.json",
            "junit=ci/gate.xml", "markdown=ci/gate.md", cwd=project)
    assert r.code == 1, r
    result = valid(r.json)
    assert result["verdict"] == "BLOCKED"
    assert set(result["blocking_failures"]) == {"found_improves", "no_regressions"}
    regressions = rule(result, "no_regressions")
    assert [c["case_id"] for c in regressions["cases"]] == ["m5"]
    case = regressions["cases"][0]
    assert case["expected"] == "$12 per user"
    assert (case["baseline_output"], case["challenger_output"]) == ("$12 per user", "$15 per user")
    assert regressions["stats"]["per_tag"][1]["tag"] == "billing"
    assert result["promoted"] is None and "cannot be promoted" in result["promotion_refused"]
    assert "m5" in r.stdout and "BLOCKED" in r.stdout
    suite = ET.parse(project / "ci" / "gate.xml").getroot()
    assert suite.get("tests") == "3" and suite.get("failures") == "2"
    failed = {tc.get("name") for tc in suite if tc.find("failure") is not None}
    assert failed == {"found_improves", "no_regressions"}
    md = (project / "ci" / "gate.md").read_text()
    assert "**BLOCKED**" in md and "`m5`" in md
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM blessed_baselines").fetchall()[0][0] == 0


def test_a_challenger_whose_endpoint_fails_is_blocked(cli, project):
    (project / "conf" / "model" / "down.yaml").write_text(
        "name: down\nadapter: chat_completions\n"
        "params: {base_url: 'http://127.0.0.1:9/v1', model: x, max_retries: 0, timeout_s: 2}\n")
    r = cli("gate", "challenger=down", "out=g.json", cwd=project)
    assert r.code == 1, r
    result = valid(r.json)
    assert result["verdict"] == "BLOCKED"
    assert result["challenger"]["calls"]["errors"] == 5
    assert rule(result, "exact_floor")["status"] == "fail" and rule(result, "exact_floor")["value"] == 0.0


def test_an_empty_scope_cannot_be_computed_and_blocks(cli, project):
    r = cli("gate", "+gate.rules.exact_floor.tags=[no_such_tag]", "out=g.json", cwd=project)
    assert r.code == 1, r
    floor = rule(valid(r.json), "exact_floor")
    assert floor["status"] == "error" and "cannot compute" in floor["message"]


def test_stale_comparison_of_stored_runs_is_refused(cli, project):
    a = cli("evaluate", "model=lookup", "out=a.json", cwd=project)
    data = project / "data" / "mini.jsonl"
    data.write_text(data.read_text() + '{"id": "m6", "input": "new?", "expected": "x"}\n')
    b = cli("evaluate", "model=lookup_better", "out=b.json", cwd=project)
    assert a.code == 0 and b.code == 0
    r = cli("gate", f"baseline_run={a.json['run_id']}", f"challenger_run={b.json['run_id']}", cwd=project)
    assert r.code == 2, r
    assert "stale comparison refused" in r.stderr
    assert f"dataset 'mini': baseline scored on version {a.json['dataset_versions']['mini']}, " \
           f"challenger on {b.json['dataset_versions']['mini']}" in r.stderr


def test_stored_runs_on_the_same_data_can_be_gated_without_calling_models(cli, project):
    a = cli("evaluate", "model=lookup", "out=a.json", cwd=project)
    b = cli("evaluate", "model=lookup_better", "out=b.json", cwd=project)
    r = cli("gate", f"baseline_run={a.json['run_id']}", f"challenger_run={b.json['run_id']}",
            "out=g.json", cwd=project)
    assert r.code == 0, r
    assert valid(r.json)["baseline"]["source"] == "stored run"


def test_flaky_cases_are_reported_and_the_reducer_decides(cli, project):
    flaky = ("challenger=lookup_better", "+challenger.repeats=2", "+challenger.params.flaky_cases=[m1]")
    strict = cli("gate", *flaky, "out=all.json", cwd=project)
    lenient = cli("gate", *flaky, "gate.reducer=any", "out=any.json", cwd=project)
    # with `all`, the flaky m1 fails: a regression against the baseline, so BLOCKED; with `any` it passes
    assert strict.code == 1 and lenient.code == 0, (strict, lenient)
    assert [c["case_id"] for c in rule(strict.json, "no_regressions")["cases"]] == ["m1"]
    assert {(f["metric"], f["case_id"]) for f in strict.json["flaky"]} == {("found", "m1"), ("exact", "m1")}
    # values average over repeats (m1 scores 0.5); only pass/fail goes through the reducer
    assert rule(strict.json, "found_improves")["stats"]["challenger"] == pytest.approx(0.7)
    assert rule(strict.json, "found_improves")["stats"]["improved"] == 1  # m5 only: m1 is not passing
    assert rule(lenient.json, "found_improves")["stats"]["improved"] == 1


def test_bad_gate_config_names_every_problem(cli, project):
    r = cli("gate", "gate.rules.found_improves.metric=fnd", "+gate.rules.bogus.kind=treshold",
            "gate.rules.exact_floor.op=approx", cwd=project)
    assert r.code == 2, r
    assert "gate.rules.found_improves.metric: unknown metric 'fnd'; did you mean 'found'?" in r.stderr
    assert "gate.rules.bogus.kind: unknown rule kind 'treshold'; did you mean 'threshold'?" in r.stderr
    assert "gate.rules.exact_floor.op: 'approx' is not allowed" in r.stderr


def test_compile_gate_prints_each_rule_query(cli, project):
    r = cli("compile", "gate", cwd=project)
    assert r.code == 0, r
    for name in ("found_improves:summary", "found_improves:histogram", "no_regressions:regressed",
                 "exact_floor:aggregate"):
        assert f"-- {name}" in r.stdout
    assert "$challenger_run" in r.stdout
