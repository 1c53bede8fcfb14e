"""`flywheel whatif gate` and `flywheel rescore` through the real CLI, on a history whose effect under each policy
edit is known by construction (tests/whatif/conftest.py)."""
from __future__ import annotations

import json
import re
import subprocess

import duckdb
import pytest
from jsonschema import Draft202012Validator

from engine.provenance import content_hash
from engine.schemas import load_schema
from tests.conftest import run_cli
from whatif_history import EMAIL_RULE, METRICS, build_history, copy_project

CHANGED_PACK = "+metrics.safety.packs.pii=[{name: email, category: pii, pattern: '" + EMAIL_RULE["pattern"] + "'}]"


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    project = tmp_path_factory.mktemp("whatif") / "project"
    gates = build_history(project)
    return project, gates


def valid(result: dict, schema: str = "whatif_gate_result") -> dict:
    Draft202012Validator(load_schema(schema)).validate(result)
    return result


def by_challenger(result: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for d in result["decisions"]:
        out.setdefault(d["challenger"]["name"], []).append(d)
    return out


def stored_delta(gate: dict) -> float:
    return next(r for r in gate["rules"] if r["name"] == "found_improves")["stats"]["delta"]


def calls(project) -> int:
    path = project / "model_calls.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_the_unedited_policy_reproduces_every_stored_decision(history):
    project, gates = history
    assert {g["verdict"] for g in gates.values()} == {"PASS", "BLOCKED"}
    before = calls(project)
    r = run_cli("whatif", "gate", "out=w.json", "markdown=w.md", "report=w.html", cwd=project)
    assert r.code == 0, r
    result = valid(r.json)
    assert result["summary"] == {**result["summary"], "decisions": 7, "replayed": 7, "flipped": 0, "unchanged": 7,
                                 "refused": 0, "rescored": 0}
    assert result["summary_line"].startswith("this policy flips 0 of 7 past decisions: 0 newly blocked, 0 newly passing")
    assert calls(project) == before and result["model_calls"] == 0
    # every replayed decision states the metric definitions and dataset versions it used
    for d in result["decisions"]:
        gate = next(g for g in gates.values() if g["decision_id"] == d["decision_id"])
        assert d["dataset_versions"] == gate["dataset_versions"]
        assert d["verdict"] == {"before": gate["verdict"], "after": gate["verdict"]} and d["changes"] == []
        assert d["recomputed"] == []  # same definitions as decided: the stored outcomes stand
        for metric in ("found", "safety"):
            assert d["metrics"][metric] == {"hash": content_hash(METRICS[metric]), "source": "stored scores",
                                            "scored_with": {"baseline": content_hash(METRICS[metric]),
                                                            "challenger": content_hash(METRICS[metric])}}
    assert "this policy flips 0 of 7" in (project / "w.md").read_text()
    assert all(d["decision_id"] in (project / "w.html").read_text() for d in result["decisions"])


def test_rules_run_again_under_a_new_definition_with_the_same_meaning_reproduce_the_stored_outcomes(history):
    project, gates = history
    # `significance: none` is the default and `qa` the only dataset: new definitions, the same meaning
    r = run_cli("whatif", "gate", "+gate.rules.found_improves.significance={test: none}",
                "+gate.rules.safety_suite.datasets=[qa]", "out=same.json", cwd=project)
    assert r.code == 0, r
    result = valid(r.json)
    for d in result["decisions"]:
        gate = next(g for g in gates.values() if g["decision_id"] == d["decision_id"])
        assert d["recomputed"] == ["found_improves", "safety_suite"] and d["status"] == "unchanged"
        assert [(x["name"], x["status"]) for x in d["rules"]] == [(x["name"], x["status"]) for x in gate["rules"]]
        assert [x["value"] for x in d["rules"]] == pytest.approx([x["value"] for x in gate["rules"]])


def test_a_tighter_improvement_bound_flips_exactly_the_decisions_between_the_two_bounds(history):
    project, gates = history
    old, new = 0.0, 0.12
    r = run_cli("whatif", "gate", f"gate.rules.found_improves.min_delta={new}", "out=w.json", "markdown=w.md",
                cwd=project)
    assert r.code == 1, r
    result = valid(r.json)
    expected = {g["decision_id"] for g in gates.values() if old <= stored_delta(g) < new}
    assert len(expected) == 2  # c1 (+0.05) and c2 (+0.10)
    flipped = {d["decision_id"] for d in result["decisions"] if d["status"] == "flipped"}
    assert flipped == expected
    assert result["summary"]["newly_blocked"] == 2 and result["summary"]["newly_passing"] == 0
    assert result["summary_line"].startswith("this policy flips 2 of 7 past decisions: 2 newly blocked, 0 newly passing")
    for d in result["decisions"]:
        if d["decision_id"] in expected:
            (change,) = d["changes"]
            delta = stored_delta(next(g for g in gates.values() if g["decision_id"] == d["decision_id"]))
            assert change["rule"] == "found_improves" and change["change"] == "status"
            assert (change["before"]["status"], change["after"]["status"]) == ("pass", "fail")
            assert change["after"]["margin"] == pytest.approx(delta - new)  # by how much it misses the new bound
            assert change["before"]["margin"] == pytest.approx(delta - old)
            assert "misses it by" in change["explanation"]
    md = (project / "w.md").read_text()
    assert "**this policy flips 2 of 7 past decisions: 2 newly blocked, 0 newly passing**" in md
    assert all(f"`{i}`" in md for i in expected) and "**PASS → BLOCKED**" in md


def test_a_looser_bound_lets_the_blocked_challenger_pass(history):
    project, gates = history
    r = run_cli("whatif", "gate", "gate.rules.found_improves.min_delta=-0.15", "out=w.json", cwd=project)
    assert r.code == 1, r
    result = valid(r.json)
    (flipped,) = [d for d in result["decisions"] if d["status"] == "flipped"]
    assert flipped["challenger"]["name"] == "c0" and flipped["verdict"] == {"before": "BLOCKED", "after": "PASS"}
    assert result["summary"]["newly_passing"] == 1 and result["summary"]["newly_blocked"] == 0


def test_a_new_safety_rule_blocks_exactly_the_decisions_whose_stored_outputs_violate_it(history):
    project, gates = history
    # the oracle: the challengers' stored outputs, read back from the store and matched in Python
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    leaking = set()
    for g in gates.values():
        outputs = [o for (o,) in con.execute(
            "SELECT o.output_text FROM run_cases rc JOIN runs r USING (run_id) JOIN outputs o ON "
            "o.model_fingerprint = r.model_fingerprint AND o.output_key = rc.output_key WHERE rc.run_id = ?",
            [g["challenger"]["run_id"]]).fetchall()]
        if any(re.search(EMAIL_RULE["pattern"], o or "") for o in outputs):
            leaking.add(g["decision_id"])
    con.close()
    assert len(leaking) == 3  # c0, c2, c4
    before = calls(project)
    r = run_cli("whatif", "gate", CHANGED_PACK, "out=w.json", cwd=project)
    assert r.code == 1, r
    result = valid(r.json)
    assert calls(project) == before and result["model_calls"] == 0
    safety_flips = {d["decision_id"] for d in result["decisions"]
                    if any(c["rule"] == "safety_suite" and c["outcome_changed"] for c in d["changes"])}
    assert safety_flips == leaking
    newly_blocked = {d["decision_id"] for d in result["decisions"] if d["status"] == "flipped"}
    assert newly_blocked == {g["decision_id"] for g in gates.values()
                             if g["decision_id"] in leaking and g["verdict"] == "PASS"}  # c2, c4
    c0 = by_challenger(result)["c0"][0]  # already blocked: a rule outcome changes, the verdict does not
    assert c0["status"] == "changed" and c0["verdict"] == {"before": "BLOCKED", "after": "BLOCKED"}
    new_spec = {**METRICS["safety"], "packs": {**METRICS["safety"]["packs"], "pii": [EMAIL_RULE]}}
    for d in result["decisions"]:  # every decision was re-scored from stored outputs, and says so
        assert d["rescored"] == ["safety"]
        assert d["metrics"]["safety"] == {"hash": content_hash(new_spec), "source": "re-scored from stored outputs",
                                          "scored_with": {"baseline": content_hash(METRICS["safety"]),
                                                          "challenger": content_hash(METRICS["safety"])}}
        assert d["metrics"]["found"]["source"] == "stored scores"
    change = next(c for c in by_challenger(result)["c2"][0]["changes"] if c["rule"] == "safety_suite")
    assert change["after"]["value"] == 8 and change["after"]["margin"] == -8  # q13-q20 mention the address
    assert {c["case_id"] for c in change["new_cases"]} == {f"q{i}" for i in range(13, 21)}
    assert result["summary"]["rescored"] == 7
    assert "7 re-scored from stored outputs" in result["summary_line"]


def test_selection_by_limit_since_and_challenger(history):
    project, gates = history
    r = run_cli("whatif", "gate", "limit=2", "challenger=c5", "out=w.json", cwd=project)
    assert r.code == 0, r
    assert [d["decision_id"] for d in r.json["decisions"]] == [gates["c5"]["decision_id"], gates["c5_v2"]["decision_id"]]
    since = gates["c3"]["decided_at"]
    r = run_cli("whatif", "gate", f"since={since}", "out=since.json", cwd=project)
    assert r.code == 0, r
    assert [d["challenger"]["name"] for d in r.json["decisions"]] == ["c3", "c4", "c5", "c5"]
    r = run_cli("whatif", "gate", "limit=1", "out=last.json", cwd=project)
    assert r.code == 0, r
    assert [d["decision_id"] for d in r.json["decisions"]] == [gates["c5_v2"]["decision_id"]]


@pytest.mark.parametrize("args,message", [
    (("gate", "limit=0"), "limit='0': expected a positive number"),
    (("gate", "since=yesterday"), "since='yesterday': expected an ISO date"),
    (("gate", "since=2999-01-01"), "no stored gate decisions match the selection (since=2999-01-01"),
    (("gate", "challenger=nobody"), "no stored gate decisions match"),
    (("gates",), "unknown subcommand 'gates'"),
    ((), "usage: flywheel whatif gate"),
    (("monitor", "limit=3"), "whatif monitor takes no limit="),
    (("gate", "gate.rules.found_improves.metric=nope"), "unknown metric 'nope'"),
])
def test_bad_input_exits_2_with_a_message(history, args, message):
    project, _ = history
    r = run_cli("whatif", *args, cwd=project)
    assert r.code == 2, r
    assert message in r.stderr and "Traceback" not in r.stderr


def test_a_decision_whose_dataset_version_is_gone_is_refused_and_counted(history, tmp_path):
    src, gates = history
    project = copy_project(src, tmp_path / "p")
    old_version = gates["c1"]["dataset_versions"]["qa"]
    assert old_version != gates["c5_v2"]["dataset_versions"]["qa"]
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"))
    con.execute("DELETE FROM cases WHERE dataset_version = ?", [old_version])
    con.execute("DELETE FROM dataset_versions WHERE dataset_version = ?", [old_version])
    con.close()
    r = run_cli("whatif", "gate", "out=w.json", "markdown=w.md", cwd=project)
    assert r.code == 1, r  # fail closed: six decisions could not be checked
    result = valid(r.json)
    refused = [d for d in result["decisions"] if d["status"] == "refused"]
    assert len(refused) == 6 and result["summary"]["refused"] == 6 and result["summary"]["replayed"] == 1
    assert all(d["reason"] == f"dataset 'qa' version {old_version} is no longer stored" for d in refused)
    assert "6 could not be replayed" in result["summary_line"]
    assert "6 decision(s) could not be replayed" in (project / "w.md").read_text()


def test_missing_outputs_refuse_only_the_decisions_that_need_re_scoring(history, tmp_path):
    src, gates = history
    project = copy_project(src, tmp_path / "p")
    c4 = gates["c4"]["challenger"]["fingerprint"]
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"))
    con.execute("DELETE FROM outputs WHERE model_fingerprint = ? AND output_key IN (SELECT output_key FROM run_cases "
                "WHERE case_id IN ('q02', 'q03'))", [c4])
    con.close()
    # stored scores suffice for a bound edit: c4 is replayed
    r = run_cli("whatif", "gate", "gate.rules.found_improves.min_delta=0.12", "out=bound.json", cwd=project)
    assert r.code == 1 and r.json["summary"]["refused"] == 0, r
    # a new safety rule needs c4's outputs: left out, with the reason, and counted
    r = run_cli("whatif", "gate", CHANGED_PACK, "out=w.json", cwd=project)
    assert r.code == 1, r
    result = valid(r.json)
    (refused,) = [d for d in result["decisions"] if d["status"] == "refused"]
    assert refused["decision_id"] == gates["c4"]["decision_id"]
    assert "2 of its 20 outputs are missing (e.g. q02, q03): cannot re-score from stored outputs" in refused["reason"]
    assert result["summary"]["refused"] == 1 and result["summary"]["flipped"] == 1  # c2 only now


def test_policy_from_a_git_revision(history, tmp_path):
    src, gates = history
    project = copy_project(src, tmp_path / "p")

    def git(*args):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "add", "conf")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "the policy the history was decided with")
    gate_file = project / "conf" / "gate" / "wi.yaml"
    gate_file.write_text(gate_file.read_text().replace("min_delta: 0.0", "min_delta: 0.12"))
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qam", "tighter improvement bound")
    expected = {gates["c1"]["decision_id"], gates["c2"]["decision_id"]}

    old = run_cli("whatif", "gate", "policy=HEAD~1", "out=old.json", cwd=project)
    assert old.code == 0, old
    assert valid(old.json)["policy"]["source"] == "git" and old.json["policy"]["rev"] == "HEAD~1"
    new = run_cli("whatif", "gate", "policy=HEAD", "out=new.json", cwd=project)
    assert new.code == 1, new
    assert {d["decision_id"] for d in new.json["decisions"] if d["status"] == "flipped"} == expected
    # the pull-request recipe: this tree's policy against the base branch's, both replayed
    pr = run_cli("whatif", "gate", "against=HEAD~1", "out=pr.json", "markdown=pr.md", cwd=project)
    assert pr.code == 1, pr
    result = valid(pr.json)
    assert result["against"]["source"] == "git" and result["policy"]["source"] == "current"
    assert {d["decision_id"] for d in result["decisions"] if d["status"] == "flipped"} == expected
    # a broken policy in a revision names the file as REV:path
    gate_file.write_text("rules:\n  x: {kind: treshold, metric: found}\n")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qam", "typo")
    bad = run_cli("whatif", "gate", "policy=HEAD", cwd=project)
    assert bad.code == 2 and "the policy at HEAD is not valid" in bad.stderr and "HEAD:conf/gate/wi.yaml" in bad.stderr
    missing = run_cli("whatif", "gate", "policy=no-such-branch", cwd=project)
    assert missing.code == 2 and "policy=no-such-branch: no such revision" in missing.stderr


def test_policy_from_git_outside_a_repository_is_bad_input(history, tmp_path):
    src, _ = history
    project = copy_project(src, tmp_path / "p")
    r = run_cli("whatif", "gate", "policy=main", cwd=project, env={"GIT_CEILING_DIRECTORIES": str(tmp_path)})
    assert r.code == 2 and "needs the project" in r.stderr and "in a git repository" in r.stderr


def test_rescore_a_stored_run_under_an_edited_metric_then_gate_the_rescored_runs(history, tmp_path):
    src, gates = history
    project = copy_project(src, tmp_path / "p")
    before = calls(project)
    runs = {}
    for side in ("baseline", "challenger"):
        r = run_cli("rescore", f"run={gates['c2'][side]['run_id']}", CHANGED_PACK, f"out={side}.json", cwd=project)
        assert r.code == 0, r
        result = valid(r.json, "whatif_rescore_result")
        assert result["rescored"] == ["safety"] and result["copied"] == ["found"] and result["model_calls"] == 0
        runs[side] = result
    assert calls(project) == before
    challenger = runs["challenger"]
    safety = {(x["dataset"], x["metric"]): x for x in challenger["summary"]}[("qa", "safety")]
    assert safety["pass_rate"] == pytest.approx(12 / 20)  # q13-q20 now violate the new rule
    old = {(x["dataset"], x["metric"]): x for x in challenger["before"]}[("qa", "safety")]
    assert old["pass_rate"] == 1.0
    found = {(x["dataset"], x["metric"]): x for x in challenger["summary"]}[("qa", "found")]
    assert found["mean"] == pytest.approx(12 / 20)
    g = run_cli("gate", f"baseline_run={runs['baseline']['run_id']}", f"challenger_run={challenger['run_id']}",
                CHANGED_PACK, "out=g.json", cwd=project)
    assert g.code == 1, g
    assert g.json["blocking_failures"] == ["safety_suite"]
    # a run that is not stored, and a metric that needs a model
    assert run_cli("rescore", "run=nope", cwd=project).code == 2
    r = run_cli("rescore", f"run={gates['c2']['challenger']['run_id']}",
                "+metrics.judged={kind: llm_judge, judge: {name: j, adapter: python, _target_: x.Y}}", cwd=project)
    assert r.code == 2 and "needs a model or an encoder" in r.stderr, r
