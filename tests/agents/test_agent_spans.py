"""OTel GenAI agent spans through the real `flywheel ingest`: the trace record comes from the invoke_agent span
(engine/ingest/otel.py) and each execute_tool span becomes a row of trace_tool_steps, parented to its trace."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb

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
        request(agent(T1, a1, "Refund order Ω-7", "Refunded $12.50."),
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
    finally:
        con.close()


def test_tool_mix_error_rate_and_step_counts_are_declared_monitor_features_and_kpis(project):
    from datetime import datetime, timezone

    from engine.monitor.kpis import aggregate_query
    from engine.monitor.sources import feature_relation
    from engine.sql import render

    a1 = "a1" * 8
    lines = [request(agent(T1, a1, "Refund order 7", "Refunded."),
                     tool(T1, "c1" * 8, 100, 130, "lookup_order", "call_1", parent=a1),
                     tool(T1, "c2" * 8, 300, 340, "refund_order", "call_2", parent=a1,
                          status={"code": 2, "message": "denied"})),
             request(agent(T2, "a2" * 8, "Hello", "Hi! How can I help?"))]  # an agent answer without tools
    (project / "spans.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    assert run_cli("ingest", "path=spans.jsonl", cwd=project).code == 0
    cfg = {"window": "day"}
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:
        def feature(expr):
            rel = feature_relation(cfg, {"expr": expr, "type": "numeric"}, {})
            return sorted(r[0] for r in con.execute(f"SELECT x FROM ({render(rel)})").fetchall())

        assert feature("tool_sequence") == ["", "lookup_order > refund_order"]  # tool mix, one category a trace
        assert feature("tool_calls") == [0, 2]  # step counts
        kpi = aggregate_query("tool_error_rate", {"from": "traces", "agg": "sum(tool_errors) / sum(tool_calls)"},
                              cfg, "overall")
        period = {"cur_start": datetime(2000, 1, 1, tzinfo=timezone.utc),
                  "cur_end": datetime(2100, 1, 1, tzinfo=timezone.utc)}
        assert con.execute(render(kpi), period).fetchall() == [(None, 0.5)]
    finally:
        con.close()


def test_a_failed_agent_session_becomes_a_golden_case_with_its_recorded_calls(project):
    a1 = "a1" * 8
    lines = [request(agent(T1, a1, "Refund order A-1031 please", "I have refunded $57.97."),
                     tool(T1, "c1" * 8, 100, 130, "refund_order", "call_1", json.dumps({"order_id": "A-1031"}),
                          parent=a1, status={"code": 2, "message": "payment gateway timeout"})),
             request(agent(T2, "a2" * 8, "Where is order A-1001?", "It is shipped."),
                     tool(T2, "d1" * 8, 50, 60, "lookup_order", "call_9", parent="a2" * 8))]
    (project / "spans.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    correction = {"feedback_id": "fb-1", "trace_id": T1, "timestamp": "2025-03-01T12:00:00Z", "kind": "correction",
                  "correction": "Order A-1031 is not eligible for a refund."}
    (project / "feedback.jsonl").write_text(json.dumps(correction) + "\n", encoding="utf-8")
    (project / "conf" / "bridge").mkdir(exist_ok=True)
    (project / "conf" / "bridge" / "agents.yaml").write_text(
        "out_dir: data/bridge\nsalt: bridge\npolicies:\n  agent_failures:\n    kind: failure_first\n"
        "    signals: [tool_error]\n    limit: 10\nexport:\n  format: jsonl\n  layout: chat\n"
        "golden:\n  dataset: mini\n  from_policies: [agent_failures]\n  label_queue: true\n")
    assert run_cli("ingest", "path=spans.jsonl", cwd=project).code == 0
    assert run_cli("ingest", "path=feedback.jsonl", "kind=feedback", cwd=project).code == 0
    # the fixture project has no live metrics for the bundled monitor config to reference
    bridged = run_cli("bridge", "bridge=agents", "monitor.online.metrics=[]", "~monitor.parity",
                      "~monitor.features.live_relevance", "~monitor.drift.live_relevance_drift", "out=bridge.json",
                      cwd=project)
    assert bridged.code == 0, bridged
    golden = bridged.json["golden"]
    assert (golden["candidates"], golden["added"]) == (1, 1)  # only the session whose tool call failed
    cases = [json.loads(line) for line in Path(golden["path"]).read_text(encoding="utf-8").splitlines()]
    case = next(c for c in cases if c["id"] == f"prod-{T1}")
    assert case["expected"] == "Order A-1031 is not eligible for a refund."
    assert case["metadata"]["production_tool_calls"] == [{"name": "refund_order", "error": "payment gateway timeout"}]
