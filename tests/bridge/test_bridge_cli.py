"""`flywheel bridge` end to end on simulated production traffic: leakage guard, dedup across exports, failures
into a new golden version, the label-queue round trip, `datasets diff`, and the next gate following the version."""
from __future__ import annotations

import json
import re

import duckdb
import pytest
from jsonschema import Draft202012Validator

from engine.schemas import load_schema
from tests.conftest import run_cli
from tests.simulated_month import monitored_copy, monitored_month, simulated_month  # noqa: F401


def norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", text.lower().replace("_", " ")).split())


@pytest.fixture(scope="module")
def bridged(monitored_month, tmp_path_factory):  # noqa: F811
    """The shared simulated month (tests/simulated_month.py), monitored when it was built, and bridged here."""
    project, monitored = monitored_copy(monitored_month, tmp_path_factory, "bridge")
    assert monitored.code == 1, monitored  # monitor alerts on the injected drift
    first = run_cli("bridge", "out=first.json", cwd=project)
    assert first.code == 0, first
    return project, first


def lines(path) -> list[dict]:
    return [json.loads(x) for x in open(path, encoding="utf-8")]


def test_training_export_never_contains_a_golden_case_and_carries_provenance(bridged):
    project, first = bridged
    result = first.json
    Draft202012Validator(load_schema("bridge_result")).validate(result)
    training = lines(result["training"]["path"])
    assert len(training) == result["training"]["records"] > 0
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    golden = {norm(t) for (t,) in con.execute("SELECT input_text FROM cases").fetchall()}
    exported = {norm(r["messages"][0]["content"]) for r in training}
    assert not exported & golden  # the leakage guard, checked independently of the SQL that enforces it
    assert result["training"]["excluded_golden_matches"] > 0  # simulated users do ask golden questions verbatim
    record = training[0]
    assert {"trace_id", "policy", "config_hash", "exported_at", "messages"} <= set(record)
    assert record["policy"] in result["policies"] and record["config_hash"] == result["config_hash"]
    # the sampling hash's version (engine/sampling_hash.py) travels with every record and every row sent
    assert result["sampling_hash"] == 1 and {r["sampling_hash"] for r in training} == {1}
    assert con.execute("SELECT DISTINCT sampling_hash FROM bridge_exports").fetchall() == [(1,)]
    assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
    assert "user_id" not in record  # a declared field is dropped
    # failures became golden cases or wait in the label queue: none of them is trained on
    con_ids = {t for (t,) in con.execute("SELECT trace_id FROM bridge_exports WHERE destination <> 'training'")
               .fetchall()}
    assert con_ids and not con_ids & {r["trace_id"] for r in training}


def test_failures_become_a_new_immutable_golden_version(bridged):
    project, first = bridged
    golden = first.json["golden"]
    assert golden["added"] > 0 and golden["version"] != golden["parent_version"]
    cases = lines(golden["path"])
    prod = [c for c in cases if c.get("metadata", {}).get("origin") == "production"]
    assert len(prod) == golden["added"] == golden["cases_from_production"]
    assert all(c["metadata"]["ground_truth"] == "correction" and c["expected"] for c in prod)
    assert len(cases) == len(prod) + 261  # the parent's cases are all kept
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    parent = con.execute("SELECT parent_version FROM dataset_versions WHERE dataset_version = ?",
                         [golden["version"]]).fetchall()[0][0]
    assert parent == golden["parent_version"]
    assert con.execute("SELECT dataset_version FROM dataset_heads WHERE name = 'support_qa'").fetchall()[0][0] == \
        golden["version"]
    # the label queue holds the failures without a correction
    queue = lines(golden["label_queue"]["path"])
    assert queue and all(q["expected"] is None and q["metadata"]["origin"] == "production" for q in queue)


def test_a_second_bridge_run_exports_nothing_twice(bridged):
    project, first = bridged
    again = run_cli("bridge", "out=again.json", cwd=project)
    assert again.code == 0, again
    exported_before = {r["trace_id"] for r in lines(first.json["training"]["path"])}
    exported_now = {r["trace_id"] for r in lines(again.json["training"]["path"])}
    assert not exported_before & exported_now
    assert again.json["golden"]["added"] == 0 and again.json["golden"]["version"] == first.json["golden"]["version"]


def test_label_queue_round_trip_and_diff(bridged, tmp_path):
    project, first = bridged
    golden = first.json["golden"]
    queue = lines(golden["label_queue"]["path"])[:3]
    queue[0]["expected"] = "the answer a person wrote"
    queue[1]["expected"] = "another labelled answer"
    queue[2]["reject"] = True
    done = tmp_path / "labelled.jsonl"
    done.write_text("".join(json.dumps(q) + "\n" for q in queue))
    r = run_cli("bridge", f"import_labels={done}", "out=import.json", cwd=project)
    assert r.code == 0, r
    imported = r.json["golden"]
    assert (imported["imported"], imported["rejected"], imported["still_unlabelled"]) == (2, 1, 0)
    assert imported["parent_version"] == golden["version"] != imported["version"]
    d = run_cli("datasets", "diff", golden["version"], imported["version"][:10], "out=diff.json", cwd=project)
    assert d.code == 0, d
    diff = d.json
    Draft202012Validator(load_schema("datasets_diff")).validate(diff)
    assert sorted(c["case_id"] for c in diff["added"]) == sorted([queue[0]["id"], queue[1]["id"]])
    assert diff["removed"] == [] and diff["changed"] == []
    assert diff["n_b"] == diff["n_a"] + 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\nnot json\n')
    r = run_cli("bridge", f"import_labels={bad}", cwd=project)
    assert r.code == 2 and "bad.jsonl:1: a label-queue record needs `id` and `input`" in r.stderr
    assert "bad.jsonl:2: invalid JSON" in r.stderr


def test_the_next_gate_follows_the_new_version_and_marks_production_cases(bridged):
    project, _ = bridged
    r = run_cli("gate", "challenger=bm25_short_query", "baseline=bm25_clean", "out=gate.json", cwd=project)
    assert r.code == 1, r
    result = r.json
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    head = con.execute("SELECT dataset_version FROM dataset_heads WHERE name = 'support_qa'").fetchall()[0][0]
    con.close()  # the store has one writer: let the next CLI call in
    assert result["dataset_versions"]["support_qa"] == head
    assert "using the bridge's version" in r.stdout
    regressions = next(x for x in result["rules"] if x["name"] == "no_regressions")
    assert regressions["status"] == "fail"
    assert all(c["metadata"]["origin"] == "production" for c in regressions["cases"])
    assert "(from production)" in r.stdout
    pinned = run_cli("gate", "challenger=bm25_short_query", "baseline=bm25_clean",
                     "dataset.support_qa.follow_bridge=false", "out=pinned.json", cwd=project)
    assert pinned.code == 0, pinned  # on the original golden set the same challenger passes


def test_bad_bridge_config_names_every_problem(cli, tmp_path):
    r = cli("bridge", "bridge.policies.random.kind=hash_rat", "bridge.golden.from_policies=[failurs]",
            "bridge.policies.drifted.rule=nope", "+bridge.policies.by_topic.per_stratum=5", cwd=tmp_path)
    assert r.code == 2, r
    assert "bridge.policies.random.kind: unknown sampler 'hash_rat'; did you mean 'hash_rate'?" in r.stderr
    assert "bridge.golden.from_policies[0]: unknown policy 'failurs'; did you mean 'failures'?" in r.stderr
    assert "bridge.policies.drifted.rule: unknown drift rule 'nope'" in r.stderr
    assert "bridge.policies.by_topic: give exactly one of per_stratum or total" in r.stderr
