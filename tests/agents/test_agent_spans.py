"""OTel GenAI agent spans through the real CLI: `flywheel ingest` makes the trace record from the invoke_agent span
(engine/ingest/otel.py), each execute_tool span a row of trace_tool_steps parented to its trace, and the agent's
earlier turns a row of trace_conversations; `flywheel monitor` watches the tool mix, error rate and call counts;
`flywheel bridge` turns failed sessions into multi-turn golden cases that `flywheel evaluate` runs."""
from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import pytest
from jsonschema import Draft202012Validator

from engine.schemas import load_schema
from tests.conftest import run_cli

T1, T2 = "ab" * 16, "cd" * 16
BASE_MS = 1740823200000


def attr(key, value):
    kind = {str: "stringValue", int: "intValue", float: "doubleValue"}[type(value)]
    return {"key": key, "value": {kind: str(value) if kind == "intValue" else value}}


def span(trace, span_id, start_ms, end_ms, attrs, parent=None, status=None):
    out = {"traceId": trace, "spanId": span_id, "name": attrs.get("gen_ai.operation.name", "span"),
           "startTimeUnixNano": f"{BASE_MS + start_ms}000000", "endTimeUnixNano": f"{BASE_MS + end_ms}000000",
           "attributes": [attr(k, v) for k, v in attrs.items()]}
    if parent:
        out["parentSpanId"] = parent
    if status:
        out["status"] = status
    return out


def agent(trace, span_id, question, answer):
    return span(trace, span_id, 0, 900, {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support", "gen_ai.request.model": "gpt-x",
        "gen_ai.input.messages": json.dumps([{"role": "user", "content": question}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "content": answer}])})


def tool(trace, span_id, start, end, name, call_id, arguments=None, result=None, parent=None, status=None):
    attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name, "gen_ai.tool.call.id": call_id}
    if arguments is not None:
        attrs["gen_ai.tool.call.arguments"] = arguments
    if result is not None:
        attrs["gen_ai.tool.call.result"] = result
    return span(trace, span_id, start, end, attrs, parent, status)


def request(*spans):
    return {"resourceSpans": [{"resource": {"attributes": [attr("service.name", "support")]},
                               "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}]}]}


def test_execute_tool_spans_become_step_rows_of_their_trace(project):
    a1 = "a1" * 8
    lines = [
        # trace 1: written over two lines, the refund call before the lookup in the file
        request(conversation(T1, a1, [("user", "Hello"), ("user", "Refund order Ω-7")], "Refunded $12.50."),
                tool(T1, "c2" * 8, 300, 340, "refund_order", "call_2", json.dumps({"order_id": "Ω-7", "amount": 12.5}),
                     json.dumps({"refund_id": "R-1"}), parent=a1)),
        request(tool(T1, "c1" * 8, 100, 130, "lookup_order", "call_1", json.dumps({"order_id": "Ω-7"}), parent=a1)),
        # trace 2: a failed call, arguments not captured
        request(agent(T2, "a2" * 8, "Change my email", "Sorry, that failed."),
                tool(T2, "d1" * 8, 50, 60, "change_account", "call_9", parent="a2" * 8,
                     status={"code": 2, "message": "no account C-999"})),
    ]
    path = project / "spans.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    first = run_cli("ingest", "path=spans.jsonl", "out=first.json", cwd=project)
    assert first.code == 0, first
    assert first.json["tool_steps"] == 3
    again = run_cli("ingest", "path=spans.jsonl", "out=again.json", cwd=project)  # idempotent: rows replaced
    assert again.code == 0, again
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT trace_id, messages::VARCHAR FROM trace_conversations").fetchall() == [
            (T1, '[{"content":"Hello","role":"user"}]')]
        rows = con.execute(
            "SELECT s.trace_id, s.step, s.tool_name, s.tool_call_id, s.parent_span_id, s.arguments::VARCHAR, "
            "s.result::VARCHAR, s.error, s.latency_ms, s.source_line, t.output "
            "FROM trace_tool_steps AS s JOIN traces AS t ON t.trace_id = s.trace_id ORDER BY s.trace_id, s.step"
        ).fetchall()
    finally:
        con.close()
    assert rows == [
        (T1, 0, "lookup_order", "call_1", a1, '{"order_id":"Ω-7"}', None, None, 30.0, 2, "Refunded $12.50."),
        (T1, 1, "refund_order", "call_2", a1, '{"amount":12.5,"order_id":"Ω-7"}', '{"refund_id":"R-1"}', None, 40.0, 1,
         "Refunded $12.50."),
        (T2, 0, "change_account", "call_9", "a2" * 8, None, None, "no account C-999", 10.0, 3, "Sorry, that failed."),
    ]
    # retracting the batch that brought the traces takes their tool steps with them (none left behind)
    retracted = run_cli("store", "retract", first.json["batch_id"], "out=r.json", cwd=project)
    assert retracted.code == 0, retracted
    assert retracted.json["removed"]["traces"] == 2 and retracted.json["removed"]["tool_steps"] == 3
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM trace_tool_steps").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM trace_conversations").fetchone()[0] == 0  # the earlier turns too
    finally:
        con.close()


AGENT_MONITOR = """
window: day
reference: {kind: first_days, days: 1}
online: {rate: 0.0, metrics: []}
features:
  tool_mix: {expr: tool_sequence, type: categorical}
  tool_calls: {expr: tool_calls, type: numeric}
drift:
  tool_mix_psi: {feature: tool_mix, test: psi, epsilon: 0.0001, threshold: 0.1, severity: blocking}
kpis:
  tool_error_rate:
    category: efficacy
    aggregates:
      errors: {from: traces, agg: "sum(tool_errors)"}
      calls: {from: traces, agg: "sum(tool_calls)"}
    value: "errors / nullif(calls, 0)"
    target: {op: "<=", value: 0.1}
    severity: warn
  tool_calls_per_session:
    category: usage
    aggregates:
      calls: {from: traces, agg: "avg(tool_calls)"}
    value: calls
    target: {op: "<=", value: 3}
    severity: warn
"""


def test_tool_mix_drift_error_rate_and_step_counts_per_window_in_flywheel_monitor(project):
    """Day 1 (the reference): 3 sessions look an order up, 1 looks up then refunds. Day 2: the other way round,
    and 2 of its 7 calls fail. Tool-mix PSI = (.25-.75) ln(.25/.75) + (.75-.25) ln(.75/.25) = ln 3."""
    day = 86_400_000
    lines, n = [], 0
    failed = {(5, 0), (7, 1)}  # (session, call): day 2's first lookup and one of its refunds
    for offset, sequences in ((0, ["L", "L", "L", "LR"]), (day, ["L", "LR", "LR", "LR"])):
        for tools in sequences:
            n += 1
            trace, parent = f"{n:032x}", f"{n:016x}"
            spans = [span(trace, parent, offset, offset + 900, {
                "gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "gpt-x",
                "gen_ai.input.messages": json.dumps([{"role": "user", "content": f"order {n}"}]),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "content": "done"}])})]
            for k, letter in enumerate(tools):
                name = {"L": "lookup_order", "R": "refund_order"}[letter]
                spans.append(tool(trace, f"{n:014x}{k:02x}", offset + 100 * (k + 1), offset + 100 * (k + 1) + 50,
                                  name, f"call_{k}", parent=parent,
                                  status={"code": 2, "message": "boom"} if (n, k) in failed else None))
            lines.append(request(*spans))
    (project / "spans.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    assert run_cli("ingest", "path=spans.jsonl", cwd=project).code == 0
    (project / "conf" / "monitor").mkdir(exist_ok=True)
    (project / "conf" / "monitor" / "agents.yaml").write_text(AGENT_MONITOR, encoding="utf-8")
    r = run_cli("monitor", "monitor=agents", "out=monitor.json", cwd=project)
    assert r.code == 1, r  # the tool mix drifted: a blocking alert
    drift = {d["name"]: d for d in r.json["drift"]}["tool_mix_psi"]
    assert drift["status"] == "alert"
    assert [w["statistic"] for w in drift["windows"]] == [pytest.approx(math.log(3), rel=1e-3)]
    kpis = {k["name"]: k for k in r.json["kpis"]}
    assert kpis["tool_error_rate"]["value"] == pytest.approx(2 / 7)  # day 2: 7 calls, 2 failed
    assert kpis["tool_error_rate"]["status"] == "alert"
    assert kpis["tool_calls_per_session"]["value"] == pytest.approx(7 / 4)


T3, T4 = "ef" * 16, "01" * 16


def conversation(trace, span_id, turns, answer):
    """An invoke_agent span whose input holds a whole conversation (earlier turns, then the current request)."""
    span_ = agent(trace, span_id, "", answer)
    attrs = [a for a in span_["attributes"] if a["key"] != "gen_ai.input.messages"]
    span_["attributes"] = attrs + [attr("gen_ai.input.messages", json.dumps(
        [{"role": role, "parts": [{"type": "text", "content": text}]} for role, text in turns]))]
    return span_


def test_failed_agent_sessions_become_multi_turn_golden_cases_that_evaluate_runs(project):
    lines = [
        # T1: a failed tool call, corrected by the user; a three-turn conversation before the request
        request(conversation(T1, "a1" * 8, [("system", "You are a support agent."),
                                            ("user", "Hi, I am mia.k@example.org"),
                                            ("assistant", "Hello! How can I help?"),
                                            ("user", "Refund order A-1031 please")], "I have refunded $57.97."),
                tool(T1, "c1" * 8, 100, 130, "lookup_order", "call_1", json.dumps({"order_id": "A-1031"}),
                     parent="a1" * 8, status={"code": 2, "message": "order service timeout"})),
        # T2: a session that went fine: not a failure
        request(agent(T2, "a2" * 8, "Where is order A-1001?", "It is shipped."),
                tool(T2, "d1" * 8, 50, 60, "lookup_order", "call_9", parent="a2" * 8)),
        # T3: a forbidden call (refunds are for people only), nobody complained; the order id is in an earlier turn
        request(conversation(T3, "a3" * 8, [("user", "It is about order A-1016."),
                                            ("assistant", "Sorry to hear that. What happened?"),
                                            ("user", "I want a refund, it arrived broken.")],
                             "I have refunded $127.42 for order A-1016."),
                tool(T3, "e1" * 8, 40, 90, "refund_order", "call_3", json.dumps({"order_id": "A-1016"}),
                     parent="a3" * 8)),
        # T4: thumbs down, no correction: to the label queue
        request(agent(T4, "a4" * 8, "Where is order A-1001?", "I cannot tell."),
                tool(T4, "f1" * 8, 50, 60, "change_account", "call_4", parent="a4" * 8)),
    ]
    (project / "spans.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    feedback = [{"feedback_id": "fb-1", "trace_id": T1, "timestamp": "2025-03-01T12:00:00Z", "kind": "correction",
                 "correction": "Order A-1031 is not eligible for a refund."},
                {"feedback_id": "fb-2", "trace_id": T4, "timestamp": "2025-03-01T12:00:00Z", "kind": "thumbs",
                 "thumbs": "down"}]
    (project / "feedback.jsonl").write_text("".join(json.dumps(f) + "\n" for f in feedback), encoding="utf-8")
    (project / "conf" / "bridge").mkdir(exist_ok=True)
    (project / "conf" / "bridge" / "agents.yaml").write_text(
        "out_dir: data/bridge\nsalt: bridge\npolicies:\n  agent_failures:\n    kind: failure_first\n"
        "    signals: [tool_error, forbidden_tool, negative_feedback]\n    forbidden_tools: [refund_order]\n"
        "    limit: 10\nexport:\n  format: jsonl\n  layout: chat\n  redact: {pii: [email]}\n"
        "golden:\n  dataset: mini\n  from_policies: [agent_failures]\n  label_queue: true\n")
    # the fixture project has no live metrics for the bundled monitor config to reference
    monitor = ("monitor.online.metrics=[]", "~monitor.parity", "~monitor.features.live_relevance",
               "~monitor.drift.live_relevance_drift")
    unnamed = run_cli("bridge", "bridge=agents", *monitor, "~bridge.policies.agent_failures.forbidden_tools",
                      cwd=project)
    assert unnamed.code == 2 and "bridge.policies.agent_failures: the forbidden_tool signal and forbidden_tools " \
                                 "go together" in unnamed.stderr, unnamed
    assert run_cli("ingest", "path=spans.jsonl", cwd=project).code == 0
    assert run_cli("ingest", "path=feedback.jsonl", "kind=feedback", cwd=project).code == 0
    bridged = run_cli("bridge", "bridge=agents", *monitor, "out=bridge.json", cwd=project)
    assert bridged.code == 0, bridged
    golden = bridged.json["golden"]
    # T1 (correction) and T3 (a forbidden call is its own label) are added; T4 waits for a label; T2 is fine
    assert (golden["candidates"], golden["added"], golden["label_queue"]["records"]) == (3, 2, 1)
    cases = {c["id"]: c for c in map(json.loads, Path(golden["path"]).read_text(encoding="utf-8").splitlines())}
    for case in cases.values():
        Draft202012Validator(load_schema("case")).validate(case)
    corrected, forbidden = cases[f"prod-{T1}"], cases[f"prod-{T3}"]
    assert corrected["input"] == "Refund order A-1031 please"
    assert corrected["messages"] == [{"role": "system", "content": "You are a support agent."},
                                     {"role": "user", "content": "Hi, I am [EMAIL]"},
                                     {"role": "assistant", "content": "Hello! How can I help?"}]
    assert corrected["expected"] == "Order A-1031 is not eligible for a refund."
    assert corrected["metadata"]["production_tool_calls"] == [{"name": "lookup_order", "error": "order service timeout"}]
    assert "agent" not in corrected
    assert (forbidden["input"], forbidden["expected"]) == ("I want a refund, it arrived broken.", None)
    assert forbidden["agent"] == {"forbidden_tools": ["refund_order"]}
    assert forbidden["metadata"]["ground_truth"] == "forbidden_call"
    assert [m["role"] for m in forbidden["messages"]] == ["user", "assistant"]

    # `flywheel evaluate` takes the new version (the bridge's head): the risky demo agent, reading the earlier
    # turns for the order id, refunds again, and the forbidden_tool metric fails exactly that case
    args = ("evaluate", "model=agent_fast_refund", "dataset=[mini]", "metrics=[agent]")
    evaluated = run_cli(*args, "out=eval.json", cwd=project)
    assert evaluated.code == 0, evaluated
    assert evaluated.json["dataset_versions"]["mini"] == golden["version"]
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:
        got = con.execute("SELECT case_id, value, detail FROM scores WHERE run_id = ? AND metric = 'forbidden_tool'",
                          [evaluated.json["run_id"]]).fetchall()
    finally:
        con.close()
    assert [(c, v) for c, v, _ in got] == [(f"prod-{T3}", 1.0)]
    assert got[0][2].startswith("called forbidden tool refund_order (call #1)")

    # the labeller gives T4 an expected tool sequence instead of an answer: that is a label, imported as a case
    queue = Path(golden["label_queue"]["path"])
    row = json.loads(queue.read_text(encoding="utf-8"))
    assert row["metadata"]["production_tool_calls"] == [{"name": "change_account"}]
    row["agent"] = {"tool_calls": [{"name": "lookup_order", "arguments": [{"path": "$.order_id", "equals": "A-1001"}]}],
                    "order": "exact"}
    (project / "labelled.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    imported = run_cli("bridge", "bridge=agents", *monitor, "import_labels=labelled.jsonl", "out=labels.json",
                       cwd=project)
    assert imported.code == 0, imported
    assert imported.json["golden"]["imported"] == 1
    again = run_cli(*args, "out=eval2.json", cwd=project)
    assert again.code == 0, again
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:
        match = con.execute("SELECT case_id, value FROM scores WHERE run_id = ? AND metric = 'tool_call_match'",
                            [again.json["run_id"]]).fetchall()
    finally:
        con.close()
    assert match == [(f"prod-{T4}", 1.0)]  # the agent looks A-1001 up, as labelled
