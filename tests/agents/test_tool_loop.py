"""The chat_completions tool loop against a real local server speaking the OpenAI tool-call protocol, through
the real CLI: tools declared in config and implemented by Python callables, bounded by max_steps, the
trajectory stored as step rows, scored, and cached with the output."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_cli

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tool_server import ToolServer  # noqa: E402

TOOLS = """
    lookup_order:
      _target_: engine.demo_models.agent_tools.lookup_order
      description: Look an order up by its id
      parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
    refund_order:
      _target_: engine.demo_models.agent_tools.refund_order
      description: Refund an order
      parameters: {type: object, properties: {order_id: {type: string}, amount: {type: number},
                   reason: {type: string}}, required: [order_id]}
"""
LOOKUP_1001 = {"name": "lookup_order", "arguments": [{"path": "$.order_id", "equals": "A-1001"}]}
CASES = [
    {"id": "status", "input": "Where is order A-1001?", "expected": "shipped",
     "agent": {"tool_calls": [LOOKUP_1001], "order": "exact", "max_steps": 3}},
    {"id": "refund", "input": "I want a refund please.", "expected": "127.42",
     "messages": [{"role": "user", "content": "It is about order A-1016."},
                  {"role": "assistant", "content": "Sorry to hear that. What happened?"}],
     "agent": {"tool_calls": [{"name": "lookup_order"}, {"name": "refund_order", "arguments": [
         {"path": "$.amount", "approx": 127.42, "tolerance": 0.01}]}], "order": "exact"}},
    {"id": "loop", "input": "loop", "agent": {"tool_calls": [], "order": "exact"}},
    {"id": "garbled", "input": "garbled", "agent": {"tool_calls": [], "order": "exact"}},
    {"id": "ghost", "input": "ghost", "agent": {"tool_calls": [], "order": "exact"}},
    {"id": "interrupted", "input": "Where is order A-1002? (interrupted)", "agent": {"tool_calls": [
        {"name": "lookup_order", "arguments": [{"path": "$.order_id", "equals": "A-1002"}]}], "order": "exact"}},
]
INTERRUPTED = "Where is order A-1002? (interrupted)"


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    from tests.conftest import FIXTURE_PROJECT
    import shutil

    project = tmp_path_factory.mktemp("tool_loop") / "project"
    shutil.copytree(FIXTURE_PROJECT, project, ignore=shutil.ignore_patterns(".flywheel", "__pycache__"))
    (project / "data" / "agent.jsonl").write_text("".join(json.dumps(c) + "\n" for c in CASES), encoding="utf-8")
    (project / "conf" / "dataset" / "agent_mini.yaml").write_text("agent_mini:\n  path: data/agent.jsonl\n")
    (project / "conf" / "metrics" / "agent_mini.yaml").write_text(
        "match:\n  kind: tool_call_match\ntool_errors:\n  kind: tool_error_rate\n"
        "answer:\n  kind: contains\n  normalizer: lower_strip\n")
    with ToolServer() as server:
        (project / "conf" / "model" / "tool_agent.yaml").write_text(
            f"name: tool_agent\nadapter: chat_completions\nparams:\n  base_url: {server.base_url}\n"
            f"  model: scripted-agent\n  max_steps: 4\n  max_retries: 0\n  tools:{TOOLS}")
        args = ("evaluate", "model=tool_agent", "dataset=[agent_mini]", "metrics=[agent_mini]")
        first = run_cli(*args, "out=first.json", cwd=project)
        requests_after_first = len(server.requests)
        second = run_cli(*args, "out=second.json", cwd=project)
        yield project, server, first, second, requests_after_first


def steps(project: Path, input_text: str) -> list[tuple]:
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:
        return con.execute(
            "SELECT s.kind, s.tool_name, s.arguments::VARCHAR, s.error, s.content FROM trajectory_steps AS s "
            "JOIN cases AS c ON c.input_hash = s.output_key WHERE c.input_text = ? ORDER BY s.step",
            [input_text]).fetchall()
    finally:
        con.close()


def scores(result) -> dict:
    return {(r["metric"]): r for r in result.json["summary"] if r["tag"] is None}


def test_the_loop_runs_declared_tools_and_answers(evaluated):
    project, server, first, _, _ = evaluated
    assert first.code == 0, first
    assert steps(project, "Where is order A-1001?") == [
        ("message", None, None, None, "Let me look that up."),
        ("tool_call", "lookup_order", '{"order_id":"A-1001"}', None, None),
        ("final", None, None, None, "Your order A-1001 is shipped.")]
    # the earlier turns of the conversation reach the model, and the refund uses the looked-up total
    refund = steps(project, "I want a refund please.")
    assert [s[1] for s in refund if s[0] == "tool_call"] == ["lookup_order", "refund_order"]
    assert refund[-1][4] == "I have refunded $127.42 for order A-1016."
    # the protocol: tools declared on every turn, each result answered by tool_call_id
    turn = next(r for r in server.requests if r["messages"][-1]["role"] == "tool")
    assert {t["function"]["name"] for t in turn["tools"]} == {"lookup_order", "refund_order"}
    assert turn["messages"][-2]["tool_calls"][0]["id"] == turn["messages"][-1]["tool_call_id"]


def test_failed_calls_are_recorded_and_the_loop_is_bounded(evaluated):
    project, _, first, _, _ = evaluated
    garbled = steps(project, "garbled")
    assert garbled[0][0:2] == ("tool_call", "lookup_order")
    assert garbled[0][3].startswith("arguments are not a JSON object")
    ghost = steps(project, "ghost")
    assert ghost[0][3].startswith("unknown tool 'delete_everything'")
    # max_steps=4 model turns, each calling lookup_order: an errored case, its trajectory kept
    loop = steps(project, "loop")
    assert [s[0] for s in loop] == ["tool_call"] * 4 + ["final"]
    assert first.json["calls"]["errors"] == 2  # the loop, and the loop the endpoint cut short
    messages = sorted(e["message"] for e in first.json["error_messages"])
    assert messages[0].startswith("gave up after 1 attempt(s): HTTP 500")
    assert messages[1].startswith("no final answer within max_steps=4")


def test_the_trajectory_is_scored(evaluated):
    _, _, first, _, _ = evaluated
    got = scores(first)
    # status and refund match; loop and interrupted errored; garbled and ghost called a tool where none was expected
    assert got["match"]["n"] == 6 and got["match"]["pass_rate"] == pytest.approx(2 / 6)
    # tool error rate over cases with calls: status 0, refund 0, garbled 1, ghost 1, loop and interrupted (errored
    # cases: fail)
    assert got["tool_errors"]["n"] == 6 and got["tool_errors"]["pass_rate"] == pytest.approx(2 / 6)


def asked(requests: list[dict], input_text: str) -> int:
    return sum(1 for r in requests if [m for m in r["messages"] if m["role"] == "user"][-1]["content"] == input_text)


def test_each_turn_is_cached_so_a_rerun_replays_and_an_interrupted_loop_resumes(evaluated):
    project, server, first, second, requests_after_first = evaluated
    assert second.code == 0, second
    before, after = server.requests[:requests_after_first], server.requests[requests_after_first:]
    # first run: the loop's 4 turns; the interrupted case's first turn, then its failed second turn
    assert (asked(before, "loop"), asked(before, INTERRUPTED)) == (4, 2)
    # the errored cases are asked again: the loop's 4 turns all re-played from the turn cache (no request), the
    # interrupted one resumes at its second turn (one request: the final answer)
    assert second.json["calls"]["called"] == 2
    assert len(after) == 1 and asked(after, INTERRUPTED) == 1
    assert after[0]["messages"][-1]["role"] == "tool"
    assert steps(project, INTERRUPTED) == [
        ("message", None, None, None, "Let me look that up."), ("tool_call", "lookup_order", '{"order_id":"A-1002"}', None, None),
        ("final", None, None, None, "Your order A-1002 is in transit.")]
    assert scores(second)["match"]["pass_rate"] == pytest.approx(3 / 6)  # the resumed case now matches


def test_a_tool_that_cannot_be_imported_is_the_users_error_naming_the_key(project):
    (project / "conf" / "model" / "bad_tools.yaml").write_text(
        "name: bad_tools\nadapter: chat_completions\nparams:\n  base_url: http://127.0.0.1:9/v1\n  model: m\n"
        "  tools:\n    lookup_order:\n      _target_: engine.demo_models.agent_tools.lookup_ordr\n")
    r = run_cli("evaluate", "model=bad_tools", cwd=project)
    assert r.code == 2, r
    assert "model 'bad_tools' @ params.tools.lookup_order._target_: cannot import" in r.stderr
    assert "Traceback" not in r.stderr
