"""Atomicity (a killed ingest leaves nothing), the quarantine round trip, OTLP/JSON GenAI spans."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from ingest_helpers import flywheel, query, trace, write_jsonl

from engine.ingest.otel import convert_request


def test_a_killed_ingest_leaves_the_store_as_it_was_and_a_reingest_works(project, cli):
    write_jsonl(project / "small.jsonl", [trace(f"s{i}") for i in range(5)])
    assert cli("ingest", "path=small.jsonl", cwd=project).code == 0
    before = query(project, "SELECT (SELECT count(*) FROM traces), (SELECT count(*) FROM quarantine), "
                            "(SELECT count(*) FROM ingest_batches)")
    line = json.dumps(trace("x", input="a question long enough to make the file big " * 6)).replace('"x"', '"%s"')
    with open(project / "big.jsonl", "w", encoding="utf-8") as f:
        for i in range(120_000):
            f.write((line % f"big-{i}") + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "engine", "ingest", "path=big.jsonl", "ingest.chunk_bytes=1000000"],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen = 0
    for out in proc.stdout:  # a line per chunk: kill it in the middle of the file
        if "records read" in out:
            seen += 1
            if seen == 5:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the ingest finished before it could be killed"
    after = query(project, "SELECT (SELECT count(*) FROM traces), (SELECT count(*) FROM quarantine), "
                           "(SELECT count(*) FROM ingest_batches)")
    assert after == before
    again = cli("ingest", "path=big.jsonl", "out=r.json", cwd=project)
    assert again.code == 0, again
    assert again.json["totals"]["inserted"] == 120_000
    assert query(project, "SELECT count(*) FROM traces")[0][0] == 120_005


def test_quarantine_export_fix_and_reingest(project, cli):
    write_jsonl(project / "t.jsonl", [trace("t1"), trace("t2", latency_ms=-1), trace("t3", input=7), "{oops"])
    export = cli("ingest", "path=t.jsonl", "export_quarantine=bad.jsonl", "out=e.json", cwd=project)  # both at once
    assert export.code == 1, export  # 3 of 4 quarantined: above ingest.max_quarantine_share
    assert export.json["export"]["records"] == 3
    lines = (project / "bad.jsonl").read_text(encoding="utf-8").splitlines()
    reasons = [json.loads(x) for x in (project / "bad.reasons.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["source_line"] for r in reasons] == [2, 3, 4]
    assert reasons[0]["reasons"] == ["latency_ms: -1 is below the minimum 0"]
    fixed = [json.dumps({**json.loads(lines[0]), "latency_ms": 1}), json.dumps({**json.loads(lines[1]), "input": "7"}),
             lines[2], json.dumps(trace("t4"))]  # fixed in place; the unfixable line left as it is
    (project / "bad.jsonl").write_text("\n".join(fixed) + "\n", encoding="utf-8")
    again = cli("ingest", "path=bad.jsonl", "ingest.max_quarantine_share=0.5", "out=r.json", cwd=project)
    assert again.code == 0, again
    assert again.json["totals"] == {"read": 4, "accepted": 3, "inserted": 3, "duplicates": 0, "quarantined": 1}
    assert again.json["resolved"] == {"accepted": 2, "read again": 1}
    assert sorted(r[0] for r in query(project, "SELECT trace_id FROM traces")) == ["t1", "t2", "t3", "t4"]
    # resolved records are not exported again; the unparseable one (no key) still is, once
    left = cli("ingest", "export_quarantine=left.jsonl", "out=e2.json", cwd=project)
    assert left.json["export"]["records"] == 1
    assert (project / "left.jsonl").read_text(encoding="utf-8") == "{oops\n"


def _attr(key, value):
    kind = {str: "stringValue", int: "intValue", float: "doubleValue"}[type(value)]
    return {"key": key, "value": {kind: str(value) if kind == "intValue" else value}}


def otlp_request() -> dict:
    chat = {"traceId": "aa" * 16, "spanId": "bb" * 8, "name": "chat gpt", "startTimeUnixNano": "1740823200000000000",
            "endTimeUnixNano": "1740823200250000000",
            "attributes": [_attr("gen_ai.operation.name", "chat"), _attr("gen_ai.request.model", "gpt-x"),
                           _attr("gen_ai.response.model", "gpt-x-2025"), _attr("gen_ai.conversation.id", "conv-1"),
                           _attr("user.id", "u9"), _attr("gen_ai.usage.input_tokens", 12),
                           _attr("gen_ai.usage.output_tokens", 5), _attr("app.topic", "billing"),
                           _attr("gen_ai.input.messages", json.dumps([
                               {"role": "system", "parts": [{"type": "text", "content": "be nice"}]},
                               {"role": "user", "parts": [{"type": "text", "content": "How much is Pro?"}]}])),
                           _attr("gen_ai.output.messages", json.dumps([
                               {"role": "assistant", "parts": [{"type": "text", "content": "$8"}]}]))],
            "events": [{"timeUnixNano": "1740823260000000000", "name": "gen_ai.evaluation.result",
                        "attributes": [_attr("gen_ai.evaluation.name", "relevance"),
                                       _attr("gen_ai.evaluation.score.value", 0.9),
                                       _attr("gen_ai.evaluation.score.label", "relevant")]},
                       {"timeUnixNano": "1740823270000000000", "name": "gen_ai.user.feedback",
                        "attributes": [_attr("feedback.kind", "thumbs"), _attr("feedback.thumbs", "down")]}],
            "status": {"code": 0}}
    tool = {"traceId": "aa" * 16, "spanId": "cc" * 8, "name": "execute_tool lookup",
            "attributes": [_attr("gen_ai.operation.name", "execute_tool")]}
    failed = {"traceId": "dd" * 16, "spanId": "ee" * 8, "startTimeUnixNano": "1740823300000000000",
              "endTimeUnixNano": "1740823301000000000",
              "attributes": [_attr("gen_ai.request.model", "gpt-x"), _attr("gen_ai.prompt", "hi")],
              "status": {"code": 2, "message": "rate limited"}}
    return {"resourceSpans": [{"resource": {"attributes": [_attr("service.name", "support")]},
                               "scopeSpans": [{"scope": {"name": "x"}, "spans": [chat, tool, failed]}]}]}


def test_otlp_genai_spans_map_to_traces_and_feedback():
    records = list(convert_request(otlp_request()))
    assert [k for k, _, _ in records] == ["feedback", "feedback", "traces", "traces"]
    t = records[2][1]
    assert t == {"trace_id": "aa" * 16, "span_id": "bb" * 8, "session_id": "conv-1", "user_id": "u9",
                 "timestamp": "2025-03-01T10:00:00Z", "model": "gpt-x", "model_version": "gpt-x-2025",
                 "input": "How much is Pro?", "output": "$8", "latency_ms": 250.0, "prompt_tokens": 12,
                 "completion_tokens": 5, "attributes": {"topic": "billing", "service": "support"}}
    assert records[0][1]["kind"] == "evaluation" and records[0][1]["value"] == 0.9
    assert records[1][1]["thumbs"] == "down" and records[1][1]["trace_id"] == t["trace_id"]
    assert records[1][1]["span_id"] == "bb" * 8
    assert records[3][1]["error"] == "rate limited" and records[3][1]["input"] == "hi"


def test_otlp_file_ingests_spans_and_events(project):
    (project / "spans.json").write_text(json.dumps(otlp_request(), indent=2), encoding="utf-8")  # pretty-printed
    write_jsonl(project / "spans.jsonl", [otlp_request(), "{not json"])  # the OTel file exporter: one per line
    r = flywheel("ingest", "path=spans.json", "out=r.json", project=project)
    assert r.code == 0
    assert r.json["files"][0]["format"] == "otlp"
    assert r.json["by_kind"]["traces"]["inserted"] == 2 and r.json["by_kind"]["feedback"]["inserted"] == 2
    r2 = flywheel("ingest", "path=spans.jsonl", "out=r2.json", project=project)
    assert r2.json["totals"] == {"read": 5, "accepted": 4, "inserted": 0, "duplicates": 4, "quarantined": 1}
    assert query(project, "SELECT kind, value, label FROM feedback ORDER BY kind") == \
        [("evaluation", 0.9, "relevant"), ("thumbs", None, None)]
    assert query(project, "SELECT model, input, latency_ms, error FROM traces ORDER BY trace_id") == \
        [("gpt-x", "How much is Pro?", 250.0, None), ("gpt-x", "hi", 1000.0, "rate limited")]
