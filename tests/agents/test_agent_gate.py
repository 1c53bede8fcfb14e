"""The bundled agent domain end to end through the real CLI: `flywheel gate` PASSes the better agent and BLOCKs
the one that refunds without the required lookup, naming the forbidden call and the trajectory mismatch."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_cli

AGENT_GATE = ("dataset=[support_agent]", "metrics=[agent]", "gate=agent", "baseline=agent_baseline")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("agent_gate")  # one store: the baseline's outputs are cached for the second gate


@pytest.fixture(scope="module")
def careful(workdir):
    return run_cli("gate", *AGENT_GATE, "challenger=agent_careful", "out=careful.json", cwd=workdir)


@pytest.fixture(scope="module")
def fast(workdir, careful):
    return run_cli("gate", *AGENT_GATE, "challenger=agent_fast_refund", "out=fast.json", "report.path=fast.html",
                   cwd=workdir)


def rules(result) -> dict:
    return {r["name"]: r for r in result.json["rules"]}


def test_the_better_agent_passes(careful):
    assert careful.code == 0, careful
    got = rules(careful)
    assert careful.json["verdict"] == "PASS"
    assert got["no_forbidden_tools"]["message"] == "0 of 10 cases fail"  # the 10 must-not-refund tasks
    assert got["tool_calls_improve"]["status"] == "pass"
    assert got["no_trajectory_regressions"]["value"] == 0


def test_refunding_without_the_lookup_is_blocked_naming_the_forbidden_call_and_the_mismatch(fast):
    assert fast.code == 1, fast
    assert fast.json["verdict"] == "BLOCKED"
    got = rules(fast)
    forbidden = got["no_forbidden_tools"]
    assert (forbidden["status"], forbidden["value"]) == ("fail", 10.0)
    assert {c["case_id"] for c in forbidden["cases"]} == {f"no-refund-{i:02d}" for i in range(1, 11)}
    assert all(c["c_detail"].startswith("called forbidden tool refund_order (call #1)") for c in forbidden["cases"])
    regressed = got["no_trajectory_regressions"]
    assert regressed["status"] == "fail" and regressed["value"] == 20  # 10 eligible refunds + 10 forbidden ones
    eligible = next(c for c in regressed["cases"] if c["case_id"] == "refund-01")
    assert eligible["c_detail"] == ("exact: call #1 is refund_order, expected lookup_order "
                                    "(calls: refund_order; expected: lookup_order → refund_order)")
    # the regression listing puts both trajectories side by side
    assert eligible["baseline_calls"] == ('lookup_order({"order_id":"A-1016"}) → refund_order({"amount":'
                                          '127.42,"order_id":"A-1016","reason":"broken"})')
    assert eligible["challenger_calls"] == 'refund_order({"order_id":"A-1016","reason":"broken"})'
    assert "called forbidden tool refund_order" in fast.stdout
    assert "(calls:" in fast.stdout  # the terminal listing shows them too (wrapped by the table)


def test_the_html_report_shows_both_trajectories_with_personal_data_masked(fast, workdir):
    from engine.report.gate_html import masked

    html = (workdir / "fast.html").read_text(encoding="utf-8")
    assert "calls: lookup_order({&quot;order_id&quot;:&quot;A-1016&quot;})" in html
    assert "calls: refund_order({&quot;order_id&quot;:&quot;A-1016&quot;,&quot;reason&quot;:&quot;broken&quot;})" in html
    shown = masked({"challenger_calls": 'change_account({"value":"mia.k@example.org"})'})
    assert shown["challenger_calls"] == 'change_account({"value":"[EMAIL]"})'


def test_trajectories_are_stored_one_row_per_step(fast, workdir):
    con = duckdb.connect(str(workdir / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:
        kinds = dict(con.execute("SELECT kind, count(*) FROM trajectory_steps GROUP BY kind").fetchall())
        # 3 agents x 60 cases, each trajectory ending with its final answer
        assert kinds["final"] == 180
        assert con.execute("SELECT count(*) FROM trajectory_steps WHERE kind = 'tool_call' AND tool_name = "
                           "'refund_order' AND arguments ->> 'order_id' = 'A-1031'").fetchall()[0][0] == 1
    finally:
        con.close()


def test_whatif_rescores_a_stored_agent_run_and_replays_the_gate_without_model_calls(careful, workdir):
    """Forbidding change_account everywhere, re-scored from the stored trajectories: the careful agent's account
    changes now fail forbidden_tool, and its PASS flips to BLOCKED."""
    run_id = careful.json["challenger"]["run_id"]
    con = duckdb.connect(str(workdir / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:  # the oracle: the careful run's cases whose stored trajectory calls change_account
        changed = con.execute(
            "SELECT count(DISTINCT rc.case_id) FROM run_cases AS rc JOIN runs AS r ON r.run_id = rc.run_id "
            "JOIN trajectory_steps AS s ON s.model_fingerprint = r.model_fingerprint AND s.output_key = rc.output_key "
            "WHERE rc.run_id = ? AND s.tool_name = 'change_account'", [run_id]).fetchall()[0][0]
    finally:
        con.close()
    assert changed > 0
    edit = "+metrics.forbidden_tool.tools=[change_account]"
    rescored = run_cli("rescore", f"run={run_id}", "dataset=[support_agent]", "metrics=[agent]", edit,
                       "out=rescored.json", cwd=workdir)
    assert rescored.code == 0, rescored
    assert rescored.json["rescored"] == ["forbidden_tool"] and rescored.json["model_calls"] == 0
    forbidden = next(s for s in rescored.json["summary"] if s["metric"] == "forbidden_tool")
    assert forbidden["n"] == 60  # with metric-wide tools, every case is scored
    assert forbidden["pass_rate"] == pytest.approx(1 - changed / 60)
    replay = run_cli("whatif", "gate", *AGENT_GATE, edit, "out=whatif.json", cwd=workdir)
    assert replay.code == 1, replay
    decisions = {d["challenger"]["name"]: d for d in replay.json["decisions"]}
    assert decisions["agent_careful"]["verdict"] == {"before": "PASS", "after": "BLOCKED"}
    assert decisions["agent_fast_refund"]["verdict"] == {"before": "BLOCKED", "after": "BLOCKED"}
