"""Agent cases: the case format is validated like any golden case (file:line @ key), the task is stored as rows,
the conversation is part of the input hash, and a trajectory is stored one row per step."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from engine import datasets as ds
from engine.agents.steps import store_steps
from engine.agents.trajectory import TrajectoryError, normalize
from engine.errors import UserError
from engine.models.python_callable import _to_response
from engine.provenance import canonical_json, utc_now
from engine.store import Store


def write(tmp_path: Path, records: list) -> Path:
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_bad_agent_tasks_are_named_by_line_and_key(tmp_path):
    path = write(tmp_path, [
        {"id": "ok", "input": "q", "agent": {"tool_calls": [{"name": "lookup_order"}]}},
        {"id": "mode", "input": "q", "agent": {"order": "sorted"}},
        {"id": "regex", "input": "q", "agent": {"tool_calls": [{"name": "t", "arguments": [
            {"path": "$.x", "regex": "("}]}]}},
        {"id": "both", "input": "q", "agent": {"tool_calls": [{"name": "t", "arguments": [
            {"path": "$.x", "equals": 1, "regex": "a"}]}]}},
        {"id": "path", "input": "q", "agent": {"tool_calls": [{"name": "t", "arguments": [
            {"path": "x", "equals": 1}]}]}},
        {"id": "contradiction", "input": "q", "agent": {"tool_calls": [{"name": "refund"}],
                                                         "forbidden_tools": ["refund"]}},
        {"id": "msg", "input": "q", "messages": [{"role": "robot", "content": "hi"}]},
        {"id": "steps", "input": "q", "agent": {"max_steps": 0}},
        {"id": "re2", "input": "q", "agent": {"tool_calls": [{"name": "t", "arguments": [
            {"path": "$.x", "regex": "(?=damaged)"}]}]}},
    ])
    with pytest.raises(UserError) as e:
        ds.load_file("agents", path, "cases.jsonl")
    text = str(e.value)
    assert "8 bad record(s)" in text
    for where in ("cases.jsonl:2 @ agent.order", "cases.jsonl:3 @ agent.tool_calls[0].arguments[0].regex: not a valid regex",
                  "cases.jsonl:4 @ agent.tool_calls[0].arguments[0]", "cases.jsonl:5 @ agent.tool_calls[0].arguments[0].path",
                  "cases.jsonl:6 @ agent.forbidden_tools: 'refund' is both expected in tool_calls and forbidden",
                  "cases.jsonl:7 @ messages[0].role", "cases.jsonl:8 @ agent.max_steps",
                  "cases.jsonl:9 @ agent.tool_calls[0].arguments[0].regex: not a regex the scoring SQL can run"):
        assert where in text, where


def test_the_conversation_is_part_of_the_input_hash_and_plain_cases_keep_theirs(tmp_path):
    plain = {"id": "a", "input": "Where is my order?"}
    talk = {**plain, "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    assert ds.case_input_hash(plain) == ds.case_input_hash({**plain, "messages": []})
    assert ds.case_input_hash(plain) != ds.case_input_hash(talk)
    # the hash of a single-turn case is what it was before conversations existed
    from engine.provenance import content_hash
    assert ds.case_input_hash(plain) == content_hash({"input": plain["input"], "context": []}, length=24)


def test_a_task_is_stored_as_rows_and_read_back_as_written(tmp_path):
    task = {"tool_calls": [{"name": "lookup_order", "arguments": [{"path": "$.order_id", "equals": "Å-1"}]},
                           {"name": "refund_order", "arguments": [{"path": "$.amount", "approx": 9.5, "tolerance": 0.5},
                                                                  {"path": "$.reason", "regex": "damag"}]}],
            "order": "exact", "forbidden_tools": ["change_account"], "max_steps": 4}
    record = {"id": "t1", "input": "refund", "messages": [{"role": "user", "content": "my parcel"}], "agent": task}
    dataset = ds.load_file("agents", write(tmp_path, [record, {"id": "plain", "input": "q"}]), "cases.jsonl")
    store = Store(duckdb.connect(":memory:"), Path(":memory:"))
    store.migrate()
    ds.store_version(store, dataset)
    con = store.con
    assert con.execute("SELECT case_id, messages::VARCHAR, order_mode, forbidden_tools, max_steps, n_expected "
                       "FROM agent_cases").fetchall() == [
        ("t1", '[{"content":"my parcel","role":"user"}]', "exact", ["change_account"], 4, 2)]
    assert con.execute("SELECT position, name FROM agent_expected_calls ORDER BY position").fetchall() == [
        (0, "lookup_order"), (1, "refund_order")]
    assert con.execute("SELECT position, check_no, path, op, value::VARCHAR, pattern, approx, tolerance "
                       "FROM agent_argument_checks ORDER BY position, check_no").fetchall() == [
        (0, 0, "$.order_id", "equals", '"Å-1"', None, None, None),
        (1, 0, "$.amount", "approx", None, None, 9.5, 0.5), (1, 1, "$.reason", "regex", None, "damag", None, None)]
    assert ds.case_record(dataset.cases[0]) == record  # the bridge writes it back as it was


def test_a_trajectory_is_stored_one_row_per_step_with_the_final_answer_last():
    steps = normalize([
        {"type": "message", "role": "assistant", "content": "Let me check."},
        {"type": "tool_call", "name": "lookup_order", "arguments": {"order_id": "Ω-7"}, "result": {"status": "lost"},
         "latency_ms": 12, "id": "call_1"},
        {"type": "tool_call", "name": "refund_order", "arguments": {"order_id": "Ω-7"}, "error": "denied"}])
    store = Store(duckdb.connect(":memory:"), Path(":memory:"))
    store.migrate()
    con, now = store.con, utc_now()
    con.execute("INSERT INTO run_cases VALUES ('run', 'd', 'v', 'c', 'k', 'k')")
    con.execute("INSERT INTO outputs VALUES ('fp', 'k', 0, 'Refund denied.', NULL, 5, NULL, NULL, NULL, ?, 'run', ?)",
                [canonical_json({"trajectory": steps}), now])
    con.execute("INSERT INTO outputs VALUES ('fp', 'other', 0, 'plain', NULL, 5, NULL, NULL, NULL, NULL, 'run', ?)", [now])
    store_steps(con, "fp", "run")
    store_steps(con, "fp", "run")  # idempotent: the run's outputs are rewritten, never doubled
    rows = con.execute("SELECT step, kind, role, content, tool_name, tool_call_id, call_index, arguments::VARCHAR, "
                       "result::VARCHAR, error, latency_ms FROM trajectory_steps ORDER BY step").fetchall()
    assert rows == [
        (0, "message", "assistant", "Let me check.", None, None, None, None, None, None, None),
        (1, "tool_call", None, None, "lookup_order", "call_1", 0, '{"order_id":"Ω-7"}', '{"status":"lost"}', None, 12.0),
        (2, "tool_call", None, None, "refund_order", None, 1, '{"order_id":"Ω-7"}', "null", "denied", None),
        (3, "final", "assistant", "Refund denied.", None, None, None, None, None, None, None)]


@pytest.mark.parametrize("trajectory,reason", [
    ("steps", "trajectory must be a list of steps"),
    ([{"type": "tool_call"}], "trajectory[0].name: a tool call needs the tool's name"),
    ([{"type": "tool_call", "name": "t", "arguments": [1]}], "trajectory[0].arguments: must be an object"),
    ([{"type": "tool_call", "name": "t", "result": float("nan")}], "trajectory[0].result: nan is not a JSON number"),
    ([{"type": "message", "role": "bot", "content": "x"}], "trajectory[0].role"),
    ([{"type": "thought"}], "trajectory[0].type"),
])
def test_a_malformed_trajectory_makes_an_errored_case_not_an_empty_one(trajectory, reason):
    with pytest.raises(TrajectoryError, match=None):
        normalize(trajectory)
    response = _to_response({"output": "ok", "trajectory": trajectory}, 1.0)
    assert response.output_text is None and response.error.startswith("bad trajectory: " + reason), response.error


def test_datasets_diff_sees_a_changed_agent_task(tmp_path):
    from engine.commands.datasets import diff

    base = {"id": "t1", "input": "refund A-1", "agent": {"tool_calls": [{"name": "lookup_order", "arguments": [
        {"path": "$.order_id", "equals": "A-1"}]}], "order": "exact", "max_steps": 3}}
    edited = {**base, "agent": {**base["agent"], "tool_calls": [{"name": "lookup_order", "arguments": [
        {"path": "$.order_id", "equals": "A-2"}]}]}}
    talk = {"id": "t2", "input": "and now?", "messages": [{"role": "user", "content": "hi"}]}
    store = Store(duckdb.connect(":memory:"), Path(":memory:"))
    store.migrate()
    versions = []
    for i, records in enumerate(([base, talk], [edited, talk])):
        path = tmp_path / f"v{i}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        dataset = ds.load_file("agents", path, path.name)
        ds.store_version(store, dataset)
        versions.append(dataset.version)
    result = diff(store, versions[0], versions[1])
    assert result["changed"] == [{"case_id": "t1", "fields": ["agent"]}]
    from engine.agents.cases import stored_parts
    assert stored_parts(store.con, versions[0]) == {"t1": {"agent": base["agent"]}, "t2": {"messages": talk["messages"]}}
