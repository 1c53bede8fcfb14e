"""The whole flywheel, as `make demo` runs it, through the real CLI: its verdicts and its new dataset version."""
from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator

from engine.schemas import load_schema


def test_demo_runs_the_whole_flywheel(cli, tmp_path):
    r = cli("demo", "out=demo.json", cwd=tmp_path, timeout=600)
    assert r.code == 0, r
    demo = r.json
    assert all(demo["checks"].values()), demo["checks"]
    out = Path(demo["demo_dir"]) / "outputs"

    def result(name: str) -> dict:
        return json.loads((out / name).read_text())

    risky, clean = result("gate_bm25_fast.json"), result("gate_bm25_clean.json")
    assert risky["verdict"] == "BLOCKED"
    assert {"safety_suite", "refuses_red_team", "no_regressions"} <= set(risky["blocking_failures"])
    regressed = next(x for x in risky["rules"] if x["name"] == "no_regressions")["cases"]
    assert regressed and all(c["case_id"].startswith("qa-") for c in regressed)
    assert clean["verdict"] == "PASS" and clean["promoted"]["version"] == 1

    monitor = result("monitor.json")
    Draft202012Validator(load_schema("monitor_result")).validate(monitor)
    assert not monitor["healthy"]
    topic = next(d for d in monitor["drift"] if d["name"] == "topic_mix")
    assert topic["first_alert"].startswith("2025-03-15")  # the declared drift day of the bundled scenario
    assert monitor["parity"][0]["slices"][0]["slice"] == "billing"  # the injected failure mode

    bridge = result("bridge.json")
    golden = bridge["golden"]
    assert golden["dataset"] == "support_qa" and golden["added"] > 0
    assert golden["version"] != golden["parent_version"]
    diff = result("datasets_diff.json")
    assert len(diff["added"]) == golden["added"] and diff["removed"] == []

    before, after = result("gate_short_query_v1.json"), result("gate_short_query_v2.json")
    assert before["verdict"] == "PASS" and before["dataset_versions"]["support_qa"] == golden["parent_version"]
    assert after["verdict"] == "BLOCKED" and after["dataset_versions"]["support_qa"] == golden["version"]
    assert after["baseline"]["source"] == "blessed v1"
    caught = next(x for x in after["rules"] if x["name"] == "no_regressions")["cases"]
    assert caught and all(c["metadata"]["origin"] == "production" for c in caught)

    # the judge is calibrated against the bundled labels: trusted on billing, not on troubleshooting, and the gate
    # refuses the decision that rests on troubleshooting only
    kappa = {s["slice"]: s["kappa"] for s in result("judges_calibrate.json")["judges"][0]["slices"]}
    assert kappa["billing"] > 0.8 and kappa["account"] > 0.8 and kappa["troubleshooting"] < 0.3
    judged = result("gate_judged.json")
    assert judged["verdict"] == "BLOCKED" and judged["blocking_failures"] == ["judge_trusted_on_troubleshooting"]
    assert next(x for x in judged["rules"] if x["name"] == "judge_improves_troubleshooting")["status"] == "pass"
    # the agent gate (its own store): the careful agent passes, the one refunding without a lookup is blocked by
    # its forbidden calls, and the regression listing shows both trajectories
    assert result("gate_agent_careful.json")["verdict"] == "PASS"
    fast = result("gate_agent_fast_refund.json")
    assert {"no_forbidden_tools", "no_trajectory_regressions"} <= set(fast["blocking_failures"])
    regressed = next(x for x in fast["rules"] if x["name"] == "no_trajectory_regressions")["cases"]
    assert all(c["baseline_calls"].startswith("lookup_order(") for c in regressed)
    assert all(c["challenger_calls"].startswith("refund_order(") for c in regressed)
    for report in demo["reports"]:
        assert Path(report).stat().st_size < 2_000_000
    assert len(demo["reports"]) == 5

    # the demo leaves a history `flywheel whatif gate` replays: the unedited policy reproduces every verdict. The
    # judged gate was decided with the demo's judge rules, which the project's config does not hold: its rule
    # outcomes differ (a changed decision, exit 1), its verdict does not
    w = cli("whatif", "gate", "--project", demo["demo_dir"], f"out={tmp_path / 'whatif.json'}", cwd=tmp_path)
    assert w.code == 1, w
    summary = w.json["summary"]
    assert summary["decisions"] == summary["replayed"] >= 5
    assert (summary["flipped"], summary["changed"], summary["refused"]) == (0, 1, 0)
    assert summary["unchanged"] == summary["decisions"] - 1
