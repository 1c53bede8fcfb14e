"""The commands around the loops run their compiled plans too: `datasets`, `store`, `whatif` and `rescore` write
plan.sql equal to `flywheel compile <command> ...` and run nothing outside it (tests/test_run_artifacts.py holds
evaluate, gate, monitor and the bridge the same way)."""
from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.simulated_month import monitored_copy, monitored_month, simulated_month  # noqa: F401
from tests.test_run_artifacts import assert_plan_is_what_ran, runs

EDITED_METRIC = "metrics.found.normalizer=squad"  # a definition the stored runs were not scored with


def newest(project, command):
    return runs(project, command)[-1]


def held(project, command, *args) -> dict:
    """Run `flywheel command args`, then hold its run artifacts to `flywheel compile command args`."""
    r = run_cli(command, *args, cwd=project)
    run_dir, data = newest(project, command)
    assert data["exit_code"] == r.code, (r, data)
    compiled = run_cli("compile", command, *[a for a in args if not a.startswith("out=")], cwd=project)
    assert compiled.code == 0, compiled
    assert_plan_is_what_ran(run_dir, data, compiled.stdout)
    return {"result": r, "data": data, "ran": {s["name"] for s in data["steps"] if s["in_plan"]}}


def test_datasets_whatif_gate_and_rescore_run_their_compiled_plans(project):
    assert run_cli("gate", cwd=project).code == 0

    listed = held(project, "datasets", "list", "out=list.json")
    assert listed["result"].code == 0 and listed["ran"] == {"versions"}
    [version] = [v["version"] for v in listed["result"].json["versions"]]
    diff = held(project, "datasets", "diff", version, "mini@latest", "out=diff.json")
    assert diff["result"].json["added"] == [] and {"resolve:prefix", "resolve:versions_of", "cases"} <= diff["ran"]

    # the stored policy against itself: nothing re-scored, the recomputed rules' queries ran as plan steps
    same = held(project, "whatif", "gate", "gate.rules.found_improves.min_delta=0.5", "out=w.json")
    assert same["result"].code == 1 and same["result"].json["summary"]["flipped"] == 1
    assert {"decisions", "runs", "versions", "policy:rescored_table", "policy:prepare"} <= same["ran"]
    assert not any(n.startswith("policy:rescore:") for n in same["ran"])
    # an edited metric definition: the stored runs are re-scored by the plan's statements (no model call)
    edited = held(project, "whatif", "gate", EDITED_METRIC, "against=current", "out=w2.json")
    assert edited["result"].json["model_calls"] == 0
    assert {"policy:rescore:found", "repeats", "outputs_check", "policy:prepare", "against:rescored_table"} <= edited["ran"]

    run_id = json.loads((project / "w.json").read_text())["decisions"][0]["challenger"]["run_id"]
    rescored = held(project, "rescore", f"run={run_id}", EDITED_METRIC, "out=r.json")
    assert rescored["result"].code == 0 and rescored["result"].json["rescored"] == ["found"]
    assert {"rescore:found", "store:run", "store:copied", "store:rescored", "summary"} <= rescored["ran"]


def test_a_refused_command_that_compiled_its_plan_records_it(project):
    assert run_cli("evaluate", cwd=project).code == 0
    r = run_cli("datasets", "diff", "nope@head", "mini@latest", cwd=project)
    assert r.code == 2 and "no stored dataset named 'nope'" in r.stderr, r
    run_dir, data = newest(project, "datasets")
    # the plan it was running is kept, with what ran before the refusal named in it
    assert (run_dir / "plan.sql").exists() and data["exit_code"] == 2
    assert [s["name"] for s in data["steps"] if s["in_plan"]] == ["resolve:versions_of", "resolve:names"]
    assert data["summary"]["outside_plan"] == 0


def test_store_and_whatif_monitor_run_their_compiled_plans(monitored_month, tmp_path_factory):  # noqa: F811
    # the shared simulated month (one ingest batch) after its first `flywheel monitor` (tests/simulated_month.py)
    project, first = monitored_copy(monitored_month, tmp_path_factory, "small_commands")
    assert first.code in (0, 1), first
    batches = held(project, "store", "batches", "out=b.json")
    [batch] = batches["result"].json["batches"]
    assert batches["ran"] == {"batches", "stored_now", "quarantine_open", "stale_monitor_runs"}

    replay = held(project, "whatif", "monitor", "out=wm.json")
    assert replay["result"].code == 0 and {"monitor_runs", "policies:exists", "policies"} <= replay["ran"]

    retracted = held(project, "store", "retract", batch["batch_id"], "out=r.json")
    result = retracted["result"].json
    assert retracted["result"].code == 0 and result["removed"]["traces"] == batch["stored_now"]["traces"] > 0
    assert result["stale_monitor_runs"] == [first.json["run_id"]]  # the monitor run read the retracted records
    assert {"retract:span", "retract:delete:traces", "retract:stale_runs", "retract:mark_stale",
            "retract:record"} <= retracted["ran"]
    again = held(project, "store", "retract", batch["batch_id"], "out=r2.json")
    assert again["result"].json["already_retracted_at"] and again["ran"] == {"retract:batch", "retract:already"}
