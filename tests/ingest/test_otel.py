"""OpenTelemetry spans -> trace records: OTel ids, the answer span of a multi-span trace, the three GenAI attribute
layouts (on spans the real instrumentations wrote, tests/fixtures/otel), and spans that are counted, not dropped."""
from __future__ import annotations

import base64
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ingest_helpers import flywheel, query, run_cli, write_jsonl

from engine.ingest.otel import OtlpFile, otel_id
from engine.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "otel"
CAPTURE = Path(__file__).resolve().parent / "otel_capture.py"
LAYOUTS = {"current_layout.jsonl": "otel_genai", "current_layout_protobuf_json.jsonl": "otel_genai",
           "indexed_layout.jsonl": "otel_genai_indexed", "openinference_layout.jsonl": "openinference"}
ANSWER_2 = "Open Settings > Privacy > Export, then pick CSV."


def _attr(key, value):
    kind = {str: "stringValue", int: "intValue", float: "doubleValue"}[type(value)]
    return {"key": key, "value": {kind: str(value) if kind == "intValue" else value}}


def _span(trace, span, start_ms, end_ms, attrs, parent=None, name="span", status=None, events=None):
    out = {"traceId": trace, "spanId": span, "name": name, "startTimeUnixNano": str(1740823200000 + start_ms) + "000000",
           "endTimeUnixNano": str(1740823200000 + end_ms) + "000000", "attributes": [_attr(k, v) for k, v in attrs.items()]}
    if parent:
        out["parentSpanId"] = parent
    if status:
        out["status"] = status
    if events:
        out["events"] = events
    return out


def _request(*spans):
    return {"resourceSpans": [{"resource": {"attributes": [_attr("service.name", "helpdesk")]},
                               "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}]}]}


def _chat(trace, span, start, end, question, answer=None, parent=None, tokens=(10, 5), **kw):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-x", "gen_ai.usage.input_tokens": tokens[0],
             "gen_ai.usage.output_tokens": tokens[1],
             "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": question}]}])}
    if answer is not None:
        attrs["gen_ai.output.messages"] = json.dumps([{"role": "assistant", "parts": [{"type": "text",
                                                                                         "content": answer}]}])
    return _span(trace, span, start, end, attrs, parent, "chat gpt-x", **kw)


def convert(*lines) -> tuple[list, dict]:
    otlp = OtlpFile()
    out = []
    for i, request in enumerate(lines, start=1):
        out += list(otlp.add(request, i))
    out += list(otlp.finish())
    return out, otlp.summary()


# -- ids ------------------------------------------------------------------------------------------------------

def test_otel_ids_read_as_hex_from_otlp_json_and_from_protobuf_base64():
    trace, span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"  # the W3C trace-context example ids
    assert otel_id(trace, 16) == trace and otel_id(trace.upper(), 16) == trace
    assert otel_id(base64.b64encode(bytes.fromhex(trace)).decode(), 16) == trace
    assert otel_id(base64.b64encode(bytes.fromhex(span)).decode(), 8) == span
    assert otel_id("tr-0001", 16) == "tr-0001"  # not an OTel id: kept as written, it still joins
    records, _ = convert(_request(_chat(base64.b64encode(bytes.fromhex(trace)).decode(),
                                        base64.b64encode(bytes.fromhex(span)).decode(), 0, 250, "hi", "hello")))
    assert records[0][3]["trace_id"] == trace and records[0][3]["span_id"] == span


# -- which span is the answer ---------------------------------------------------------------------------------

def test_the_last_model_call_to_end_is_the_answer_and_usage_is_summed_over_the_trace():
    t = "ab" * 16
    rewrite = _chat(t, "01" * 8, 10, 200, "How do I export?", "export data", parent="aa" * 8, tokens=(17, 2))
    answer = _chat(t, "02" * 8, 210, 600, "export data", ANSWER_2, parent="aa" * 8, tokens=(30, 12))
    tool = _span(t, "03" * 8, 205, 209, {"gen_ai.operation.name": "execute_tool"}, "aa" * 8, "execute_tool search")
    root = _span(t, "aa" * 8, 0, 650, {"http.route": "/ask"}, name="POST /ask")
    # the exporter wrote the answer call before the rewrite, on another line: the choice does not depend on order
    records, summary = convert(_request(answer), _request(rewrite, tool, root))
    assert len(records) == 1
    line, _, kind, r, problem = records[0]
    assert (kind, problem, line) == ("traces", None, 1)
    assert r["trace_id"] == t and r["span_id"] == "02" * 8
    assert (r["input"], r["output"]) == ("export data", ANSWER_2)
    assert (r["prompt_tokens"], r["completion_tokens"]) == (47, 14)
    assert r["timestamp"] == "2025-03-01T10:00:00.010000Z" and r["latency_ms"] == 590.0  # first start -> answer end
    assert r["attributes"]["model_calls"] == 2
    assert summary["answers"] == {"last model call": 1} and summary["model_calls_folded"] == 1
    assert summary["skipped_by_reason"] == {"not a model call (execute_tool)": 1, "no GenAI attributes": 1}


def test_an_agent_span_with_an_output_is_the_answer_and_a_failed_last_call_is_the_users_error():
    t = "cd" * 16
    agent = _span(t, "a0" * 8, 0, 900, {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "helpdesk",
                                        "gen_ai.input.messages": json.dumps([{"role": "user", "content": "Refund?"}]),
                                        "gen_ai.output.messages": json.dumps([{"role": "assistant",
                                                                              "content": "Refunded."}])})
    calls = [_chat(t, "b1" * 8, 10, 300, "Refund?", "call refund tool", parent="a0" * 8),
             _chat(t, "b2" * 8, 400, 850, "Refund?", "Refunded.", parent="a0" * 8)]
    records, summary = convert(_request(*calls, agent))
    r = records[0][3]
    assert r["span_id"] == "a0" * 8 and r["output"] == "Refunded." and r["model"] == "gpt-x"
    assert (r["prompt_tokens"], r["completion_tokens"]) == (20, 10) and r["latency_ms"] == 900.0
    assert summary["answers"] == {"agent span": 1}

    t2 = "ef" * 16
    ok = _chat(t2, "c1" * 8, 0, 100, "Why charged twice?", "Let me check.")
    failed = _chat(t2, "c2" * 8, 200, 300, "Why charged twice?", status={"code": 2, "message": "rate limited"})
    r2 = convert(_request(ok, failed))[0][0][3]
    assert r2["span_id"] == "c2" * 8 and r2["error"] == "rate limited" and "output" not in r2


def test_feedback_events_on_any_span_reference_the_otel_trace_and_their_span():
    t = "12" * 16
    event = {"timeUnixNano": "1740823260000000000", "name": "gen_ai.user.feedback",
             "attributes": [_attr("feedback.kind", "thumbs"), _attr("feedback.thumbs", "down")]}
    root = _span(t, "aa" * 8, 0, 700, {}, name="POST /ask", events=[event])
    records, summary = convert(_request(_chat(t, "bb" * 8, 10, 600, "q", "a", parent="aa" * 8), root))
    feedback = [r for _, _, kind, r, _ in records if kind == "feedback"]
    assert feedback == [{"feedback_id": f"{t}-{'aa' * 8}-e1", "trace_id": t, "span_id": "aa" * 8,
                         "timestamp": "2025-03-01T10:01:00Z", "kind": "thumbs", "thumbs": "down"}]
    assert summary["feedback_events"] == 1


# -- the three layouts, as the instrumentations wrote them ---------------------------------------------------

@pytest.fixture(scope="module")
def fixtures_ingested(tmp_path_factory):
    from tests.conftest import FIXTURE_PROJECT

    project = tmp_path_factory.mktemp("otel") / "project"
    shutil.copytree(FIXTURE_PROJECT, project)
    shutil.copytree(FIXTURES, project / "spans", ignore=shutil.ignore_patterns("*.md"))
    r = flywheel("ingest", "path=spans", "out=r.json", project=project)
    assert r.code == 0
    return project, {Path(f["path"]).name: f for f in r.json["files"]}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_each_layout_gives_one_record_per_trace_with_the_same_fields(fixtures_ingested, name):
    project, files = fixtures_ingested
    f = files[name]
    assert (f["read"], f["inserted"], f["quarantined"]) == (3, 3, 0)
    otlp = f["otlp"]
    assert otlp["layout"] == LAYOUTS[name] and otlp["layouts"] == {LAYOUTS[name]: 4, "none": 1}
    assert (otlp["spans"], otlp["traces"], otlp["model_calls_folded"]) == (5, 3, 1)
    assert otlp["skipped_by_reason"] == {"no GenAI attributes": 1}  # the application's answer_question span
    rows = query(project, "SELECT trace_id, span_id, model, model_version, input, output, prompt_tokens, "
                          "completion_tokens, error IS NOT NULL FROM traces WHERE source_file = ? "
                          "ORDER BY \"timestamp\"", [f"spans/{name}"])
    assert all(len(r[0]) == 32 and int(r[0], 16) >= 0 and len(r[1]) == 16 and int(r[1], 16) >= 0 for r in rows)
    assert [r[2:] for r in rows] == [
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "How do I reset my password?",
         "Click 'Forgot password' on the sign-in page.", 21, 9, False),
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "export data", ANSWER_2, 47, 14, False),  # the answer call
        ("gpt-4o-mini", None, "Why was I charged twice?", None, None, None, True)]


def test_ids_are_the_ones_in_the_file_decoded_from_base64_where_protobuf_json_wrote_them(fixtures_ingested):
    project, _ = fixtures_ingested
    name = "current_layout_protobuf_json.jsonl"
    spans = [s for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines()
             for rs in json.loads(line)["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    in_file = {base64.b64decode(s["traceId"]).hex() for s in spans}
    stored = {r[0] for r in query(project, "SELECT trace_id FROM traces WHERE source_file = ?", [f"spans/{name}"])}
    assert stored == in_file and len(stored) == 3


# -- spans that cannot be read are counted and said, never silently dropped ------------------------------------

def test_spans_in_an_unknown_genai_layout_are_quarantined_and_warned_about(project):
    # e.g. the Vercel AI SDK's ai.* attributes: written by a GenAI library, in no layout Flywheel reads
    unknown = [_span(f"{i:032x}", f"{i:016x}", 0, 100, {"ai.model.id": "gpt-x", "ai.prompt": "hello"},
                     name="ai.generateText") for i in range(1, 4)]
    plain = _span("9" * 32, "9" * 16, 0, 5, {"http.route": "/health"}, name="GET /health")
    write_jsonl(project / "spans.jsonl", [_request(*unknown, plain)])
    r = run_cli("ingest", "path=spans.jsonl", "out=r.json", cwd=project)
    assert r.code == 1, r  # every record quarantined: above ingest.max_quarantine_share, an alert
    assert "quarantine share 100.0% is above ingest.max_quarantine_share" in r.stdout
    f = r.json["files"][0]
    assert (f["read"], f["accepted"], f["quarantined"]) == (3, 0, 3)  # one quarantined record per trace
    assert f["otlp"]["skipped_model_calls"] == 3 and f["otlp"]["traces"] == 0
    assert "3 span(s) written by a GenAI library are in an attribute layout Flywheel does not read" in r.stdout
    assert "no trace record: none of the 4 span(s) is a model call Flywheel can read" in r.stdout
    reasons = [r[0] for r in query(project, "SELECT reasons[1] FROM quarantine ORDER BY source_item")]
    assert reasons == [f"1 GenAI span(s) of trace {i:032x} are in an attribute layout Flywheel does not read "
                       f"(it reads: otel_genai, otel_genai_indexed, openinference)" for i in range(1, 4)]


def test_a_file_of_spans_without_model_calls_says_so(project):
    write_jsonl(project / "spans.jsonl", [_request(_span("7" * 32, "7" * 16, 0, 5, {"http.route": "/"}, name="GET /"))])
    r = run_cli("ingest", "path=spans.jsonl", "out=r.json", cwd=project)
    assert r.code == 0 and r.json["totals"]["read"] == 0
    assert r.json["files"][0]["otlp"]["skipped"] == 1
    assert "no trace record: none of the 1 span(s) is a model call Flywheel can read (1 no GenAI attributes)" \
        in r.stdout


def test_a_model_call_without_captured_content_is_quarantined_with_the_fix():
    records, _ = convert(_request(_span("5" * 32, "5" * 16, 0, 100, {"gen_ai.operation.name": "chat",
                                                                     "gen_ai.request.model": "gpt-x"})))
    assert records[0][2] == "traces" and "carries no prompt text: enable message content capture" in records[0][4]


# -- old stores --------------------------------------------------------------------------------------------------

def test_migration_splits_old_otlp_ids_and_moves_what_referenced_them(tmp_path):
    """A store written before span_id: OTLP traces as '<traceId>-<spanId>', feedback and live scores keyed so."""
    path = tmp_path / "old.duckdb"
    with Store.open(path) as store:  # the current schema, then taken back to before migration 30
        con = store.con
        for table in ("traces", "feedback", "events"):
            con.execute(f"ALTER TABLE {table} DROP COLUMN span_id")
        con.execute("ALTER TABLE feedback ALTER COLUMN trace_id SET NOT NULL")
        con.execute("DELETE FROM schema_migrations WHERE version = 30")
        one, (two_a, two_b) = f"{'a' * 32}-{'b' * 16}", (f"{'c' * 32}-{'d' * 16}", f"{'c' * 32}-{'e' * 16}")
        for i, tid in enumerate([one, two_a, two_b, "tr-1"]):
            con.execute("INSERT INTO traces (trace_id, \"timestamp\", model, input, record_hash, batch_id, "
                        "source_file, source_line) VALUES (?, now(), 'm', 'q', 1, 'b1', ?, ?)",
                        [tid, "t.jsonl" if tid == "tr-1" else "spans.jsonl", i])
        con.execute("INSERT INTO ingest_batches (batch_id, source_file, format, started_at, finished_at, n_read, "
                    "n_accepted, n_inserted, n_duplicates, n_quarantined, config) VALUES "
                    "('b1', 'spans.jsonl', 'otlp', now(), now(), 0, 0, 0, 0, 0, '{}'), "
                    "('b1', 't.jsonl', 'jsonl', now(), now(), 0, 0, 0, 0, 0, '{}')")
        con.execute("INSERT INTO feedback (feedback_id, trace_id, \"timestamp\", kind, record_hash, batch_id, "
                    "source_file) VALUES ('f1', ?, now(), 'thumbs', 1, 'b2', 'f.jsonl'), "
                    "('f2', ?, now(), 'thumbs', 1, 'b2', 'f.jsonl')", [one, two_a])
        con.execute("INSERT INTO live_scores VALUES (?, 'relevance', 'h', 1.0, true, NULL, now())", [one])
    with Store.open(path) as store:
        con = store.con
        assert sorted(con.execute("SELECT trace_id, span_id FROM traces").fetchall(), key=str) == sorted(
            [("a" * 32, "b" * 16), (two_a, None), (two_b, None), ("tr-1", None)], key=str)
        assert con.execute("SELECT feedback_id, trace_id, span_id FROM feedback ORDER BY 1").fetchall() == \
            [("f1", "a" * 32, "b" * 16), ("f2", two_a, None)]  # a trace stored as two spans keeps its old ids
        assert con.execute("SELECT trace_id FROM live_scores").fetchall() == [("a" * 32,)]


# -- the real instrumentations, when the test extra installed them ---------------------------------------------

def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


@pytest.mark.parametrize("layout,modules", [
    ("indexed", ("openai", "opentelemetry.sdk", "opentelemetry.instrumentation.openai")),  # OpenLLMetry
    ("openinference", ("openai", "opentelemetry.sdk", "openinference.instrumentation.openai")),
])
def test_live_instrumentations_traced_against_a_local_server_ingest_into_the_same_records(project, layout, modules):
    if not _installed(*modules, "opentelemetry.exporter.otlp.proto.common"):
        pytest.skip(f"{', '.join(modules)} not installed (pip install -e '.[test]')")
    out = project / f"{layout}.jsonl"
    done = subprocess.run([sys.executable, str(CAPTURE), layout, str(out)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    r = flywheel("ingest", f"path={out.name}", "out=r.json", project=project)
    assert r.code == 0
    f = r.json["files"][0]
    assert (f["read"], f["inserted"], f["otlp"]["traces"]) == (3, 3, 3)
    assert f["otlp"]["layout"] in ("otel_genai", "otel_genai_indexed", "openinference")
    rows = query(project, "SELECT input, output, prompt_tokens, completion_tokens FROM traces ORDER BY \"timestamp\"")
    assert rows == [("How do I reset my password?", "Click 'Forgot password' on the sign-in page.", 21, 9),
                    ("export data", ANSWER_2, 47, 14), ("Why was I charged twice?", None, None, None)]
