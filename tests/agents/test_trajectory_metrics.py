"""The trajectory metrics on hand-computed cases: golden agent cases loaded and stored by the real dataset code,
trajectories stored as step rows by the real SQL (engine/agents/steps.py), scored by the compiled metrics on
DuckDB. Each expectation below is worked out by hand from the case's task and the recorded calls."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from engine import datasets as ds
from engine.agents.steps import store_steps
from engine.agents.trajectory import normalize
from engine.compiler import compile_evaluate
from engine.executor import execute
from engine.provenance import canonical_json, utc_now
from engine.store import Store


def call(tool_name, error=None, **arguments):
    return {"type": "tool_call", "name": tool_name, "arguments": arguments, "result": {"ok": error is None},
            "error": error}


LOOKUP_A1 = {"name": "lookup_order", "arguments": [{"path": "$.order_id", "equals": "A1"}]}
REFUND = {"name": "refund_order", "arguments": [{"path": "$.order_id", "equals": "A1"},
                                                {"path": "$.amount", "approx": 12.5, "tolerance": 0.01},
                                                {"path": "$.reason", "regex": "damag"}]}
REFUND_OK = call("refund_order", order_id="A1", amount=12.504, reason="item damaged")


def task(order, calls=(LOOKUP_A1, REFUND), **extra):
    return {"tool_calls": list(calls), "order": order, **extra}


# (case id, agent task, recorded trajectory or None for an output without one)
CASES = [
    ("exact_ok", task("exact"), [call("lookup_order", order_id="A1"), REFUND_OK]),
    ("exact_swapped", task("exact"), [REFUND_OK, call("lookup_order", order_id="A1")]),
    ("exact_extra", task("exact"), [call("lookup_order", order_id="A1"), REFUND_OK, call("lookup_order", order_id="A1")]),
    ("exact_missing", task("exact"), [call("lookup_order", order_id="A1")]),
    ("exact_bad_args", task("exact"), [call("lookup_order", order_id="A2"), REFUND_OK]),
    ("in_order_between", task("in_order"), [call("lookup_order", order_id="A1"), call("search_kb", q="refund"), REFUND_OK]),
    ("in_order_reversed", task("in_order"), [REFUND_OK, call("lookup_order", order_id="A1")]),
    ("any_order_ok", task("any_order"), [REFUND_OK, call("lookup_order", order_id="A1")]),
    ("any_order_extra", task("any_order"), [REFUND_OK, call("lookup_order", order_id="A1"), call("lookup_order", order_id="A1")]),
    ("subset_ok", task("subset"), [call("lookup_order", order_id="A1")]),
    ("subset_other", task("subset"), [call("lookup_order", order_id="A1"), call("change_account", email="x@y.z")]),
    ("none_expected_none_called", task("exact", calls=()), []),
    ("none_expected_one_called", task("exact", calls=()), [call("lookup_order", order_id="A1")]),
    ("repeated_any", task("any_order", calls=(LOOKUP_A1, {"name": "lookup_order", "arguments": [
        {"path": "$.order_id", "equals": "A2"}]})), [call("lookup_order", order_id="A2"), call("lookup_order", order_id="A1")]),
    ("repeated_in_order", task("in_order", calls=(LOOKUP_A1, {"name": "lookup_order", "arguments": [
        {"path": "$.order_id", "equals": "A2"}]})), [call("lookup_order", order_id="A2"), call("lookup_order", order_id="A1")]),
    ("unicode_args", task("exact", calls=({"name": "change_account", "arguments": [
        {"path": "$.name", "equals": "Zoë Ångström"}, {"path": "$.name", "regex": "^Zoë"},
        {"path": "$.tags[1]", "equals": "日本"}]},)), [call("change_account", name="Zoë Ångström", tags=["a", "日本"])]),
    ("number_equals_float", task("exact", calls=({"name": "refund_order", "arguments": [
        {"path": "$.amount", "equals": 12}]},)), [call("refund_order", amount=12.0)]),
    ("approx_outside", task("exact", calls=(REFUND,)), [call("refund_order", order_id="A1", amount=12.6, reason="damaged")]),
    ("no_trajectory", task("exact"), None),
    ("forbidden_called", task("in_order", calls=(LOOKUP_A1,), forbidden_tools=["refund_order"]),
     [call("lookup_order", order_id="A1"), REFUND_OK]),
    ("forbidden_respected", task("in_order", calls=(LOOKUP_A1,), forbidden_tools=["refund_order"]),
     [call("lookup_order", order_id="A1")]),
    ("budget_met", task("in_order", max_steps=3), [call("lookup_order", order_id="A1"), REFUND_OK]),
    ("budget_exceeded", task("in_order", max_steps=3),
     [call("lookup_order", order_id="A1"), {"type": "message", "role": "assistant", "content": "checking"}, REFUND_OK]),
    ("tool_failed", task("in_order"), [call("lookup_order", order_id="A1"), call("refund_order", error="timeout"),
                                       REFUND_OK]),
    ("no_task", None, [call("lookup_order", order_id="A1")]),
]

METRICS = {"match": {"kind": "tool_call_match"}, "args": {"kind": "tool_arguments"},
           "forbidden": {"kind": "forbidden_tool"}, "steps": {"kind": "step_efficiency"},
           "tool_errors": {"kind": "tool_error_rate"}}


@pytest.fixture(scope="module")
def scores(tmp_path_factory) -> dict:
    """{(case id, metric): (value, passed, detail)} for every score row written."""
    path = Path(tmp_path_factory.mktemp("agents")) / "agent_cases.jsonl"
    records = [{"id": cid, "input": f"request {cid}", "expected": "done", **({"agent": t} if t else {})}
               for cid, t, _ in CASES]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    dataset = ds.load_file("agents", path, "agent_cases.jsonl")
    store = Store(duckdb.connect(":memory:"), Path(":memory:"))
    store.migrate()
    ds.store_version(store, dataset)
    con, now = store.con, utc_now()
    con.execute("INSERT INTO runs (run_id, command, model_name, model_fingerprint, config_hash, metrics_hash, "
                "dataset_versions, started_at, status, config) VALUES ('run', 'evaluate', 'm', 'fp', '', '', "
                "'{}', ?, 'running', '{}')", [now])
    for case, (cid, _, trajectory) in zip(dataset.cases, CASES):
        con.execute("INSERT INTO run_cases VALUES ('run', 'agents', ?, ?, ?, ?)",
                    [dataset.version, cid, case.input_hash, case.input_hash])
        raw = None if trajectory is None else canonical_json({"trajectory": normalize(trajectory)})
        con.execute("INSERT INTO outputs VALUES ('fp', ?, 0, 'done', NULL, 1.0, NULL, NULL, NULL, ?, 'run', ?)",
                    [case.input_hash, raw, now])
    store_steps(con, "fp", "run")
    for statement in compile_evaluate(METRICS).statements:
        execute(con, statement, {"run_id": "run", "repeats": 1})
    rows = con.execute("SELECT case_id, metric, value, passed, detail FROM scores").fetchall()
    return {(c, m): (v, p, d) for c, m, v, p, d in rows}


MATCH = [  # case id, value, detail starts with
    ("exact_ok", 1.0, None),
    ("exact_swapped", 0.0, "exact: call #1 is refund_order, expected lookup_order"),
    ("exact_extra", 0.0, "exact: unexpected call #3 lookup_order"),
    ("exact_missing", 0.0, "exact: missing call #2 refund_order"),
    ("exact_bad_args", 0.0, "exact: call #1 lookup_order has arguments that do not match"),
    ("in_order_between", 1.0, None),
    ("in_order_reversed", 0.0, "in_order: expected call #2 refund_order was called, but not in order"),
    ("any_order_ok", 1.0, None),
    ("any_order_extra", 0.0, "any_order: unexpected call #3 lookup_order"),
    ("subset_ok", 1.0, None),
    ("subset_other", 0.0, "subset: call #2 change_account is not an expected tool"),
    ("none_expected_none_called", 1.0, None),
    ("none_expected_one_called", 0.0, "exact: unexpected call #1 lookup_order"),
    ("repeated_any", 1.0, None),
    ("repeated_in_order", 0.0, "in_order: expected call #2 lookup_order was called, but not in order"),
    ("unicode_args", 1.0, None),
    ("number_equals_float", 1.0, None),
    ("approx_outside", 0.0, "exact: call #1 refund_order has arguments that do not match"),
    ("no_trajectory", None, "no trajectory recorded"),
]


@pytest.mark.parametrize("case_id,value,detail", MATCH)
def test_tool_call_match_per_order_mode(scores, case_id, value, detail):
    got_value, passed, got_detail = scores[(case_id, "match")]
    assert (got_value, passed) == (value, value == 1.0)
    if detail is None:
        assert got_detail is None
    else:
        assert got_detail.startswith(detail), got_detail


def test_a_mismatch_lists_both_call_sequences(scores):
    detail = scores[("exact_swapped", "match")][2]
    assert detail.endswith("(calls: refund_order → lookup_order; expected: lookup_order → refund_order)")


def test_cases_without_a_task_or_declared_calls_get_no_match_score(scores):
    assert ("no_task", "match") not in scores
    assert not any(m == "forbidden" and c == "no_task" for c, m in scores)


def test_tool_arguments_share_of_expected_calls_satisfied(scores):
    assert scores[("exact_ok", "args")][:2] == (1.0, True)
    assert scores[("exact_bad_args", "args")][:2] == (0.5, False)  # lookup A2 fails, refund holds
    assert scores[("exact_bad_args", "args")][2].startswith(
        "expected call #1 lookup_order: no call of it meets the argument checks")
    assert scores[("approx_outside", "args")][:2] == (0.0, False)
    assert scores[("exact_missing", "args")][2].startswith("expected call #2 refund_order: not called")
    assert ("none_expected_none_called", "args") not in scores  # nothing expected: no share to compute


def test_forbidden_tool_any_call_fails_the_case(scores):
    assert scores[("forbidden_called", "forbidden")] == (
        1.0, False, "called forbidden tool refund_order (call #2) (calls: lookup_order → refund_order; "
                    "expected: lookup_order)")
    assert scores[("forbidden_respected", "forbidden")] == (0.0, True, None)
    assert ("exact_ok", "forbidden") not in scores  # no forbidden tool declared


def test_step_efficiency_counts_calls_messages_and_the_final_answer(scores):
    assert scores[("budget_met", "steps")][:2] == (1.0, True)  # 2 calls + final = 3 of 3
    value, passed, detail = scores[("budget_exceeded", "steps")]
    assert (value, passed) == (pytest.approx(4 / 3), False)
    assert detail.startswith("used 4 steps, budget 3")


def test_tool_error_rate_over_calls_made(scores):
    value, passed, detail = scores[("tool_failed", "tool_errors")]
    assert (value, passed) == (pytest.approx(1 / 3), False)
    assert detail.startswith("tool call #2 refund_order failed")
    assert scores[("exact_ok", "tool_errors")] == (0.0, True, None)
    assert ("none_expected_none_called", "tool_errors") not in scores  # no calls: no rate, not a 0
    assert ("no_trajectory", "tool_errors") not in scores

