"""Spans from the real `openai` client, traced by a real instrumentation against a local chat server.

    python tests/ingest/otel_capture.py LAYOUT OUT.jsonl [--ids base64]

LAYOUT: `current` (opentelemetry-instrumentation-openai-v2, the OTel GenAI conventions with messages as span
attributes), `indexed` (opentelemetry-instrumentation-openai from OpenLLMetry/Traceloop: gen_ai.prompt.N.*), or
`openinference` (openinference-instrumentation-openai, as Arize Phoenix reads it). The spans are encoded by the
OpenTelemetry SDK's own OTLP encoder; `OUT` gets one ExportTraceServiceRequest per line in OTLP/JSON (hex ids, as
the Collector's file exporter writes them) or, with `--ids base64`, protobuf's JSON mapping (bytes as base64).

Three traces, as an application makes them:
1. one chat call, nothing around it (the LLM span is the root);
2. an application span `answer_question` around two chat calls: a query rewrite, then the answer;
3. a chat call the server fails with HTTP 500 (no retries).

Run in its own process: an instrumentation patches the `openai` module for the whole process.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models"))

from chat_server import ChatServer, Reply  # noqa: E402

QUESTION = "How do I reset my password?"
REWRITE = "Rewrite as a search query: How do I export my data?"
ANSWER_2 = "Open Settings > Privacy > Export, then pick CSV."
FAILING = "Why was I charged twice?"
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"


def instrument(layout: str, provider) -> None:
    if layout == "current":
        os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
        os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
        OpenAIInstrumentor().instrument(tracer_provider=provider)
    elif layout == "indexed":
        os.environ.setdefault("TRACELOOP_TRACE_CONTENT", "true")
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
        OpenAIInstrumentor().instrument(tracer_provider=provider)
    elif layout == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor
        OpenAIInstrumentor().instrument(tracer_provider=provider)
    else:
        raise SystemExit(f"unknown layout {layout!r}")


def reply(content: str, prompt_tokens: int, completion_tokens: int) -> Reply:
    """A chat completion as OpenAI sends it, with the model that served it (gen_ai.response.model)."""
    return Reply.json({"id": "chatcmpl-test", "object": "chat.completion", "created": 1740823200,
                       "model": RESPONSE_MODEL,
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                 "total_tokens": prompt_tokens + completion_tokens}})


def session(layout: str):
    """The session and user of trace 2, the way the instrumentation lets an application set them."""
    if layout == "openinference":
        from openinference.instrumentation import using_attributes
        return using_attributes(session_id="conv-42", user_id="user-7")
    return contextlib.nullcontext()


def capture(layout: str) -> list:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "helpdesk"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument(layout, provider)
    import openai

    with ChatServer() as server:
        server.script(QUESTION, reply("Click 'Forgot password' on the sign-in page.", 21, 9))
        server.script(REWRITE, reply("export data", 17, 2))
        server.script("export data", reply(ANSWER_2, 30, 12))
        server.script(FAILING, Reply.error(500))
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        ask = lambda text: client.chat.completions.create(  # noqa: E731
            model="gpt-4o-mini", messages=[{"role": "system", "content": "You are a helpdesk assistant."},
                                           {"role": "user", "content": text}])
        ask(QUESTION)
        tracer = provider.get_tracer("helpdesk.app")
        with session(layout), tracer.start_as_current_span("answer_question"):
            query = ask(REWRITE).choices[0].message.content
            ask(query)
        try:
            ask(FAILING)
        except openai.APIStatusError:
            pass
    provider.force_flush()
    return list(exporter.get_finished_spans())


def to_otlp_json(spans: list, ids: str = "hex") -> dict:
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    request = MessageToDict(encode_spans(spans))  # protobuf's JSON mapping: bytes as base64
    if ids == "hex":  # OTLP/JSON (the spec, the Collector's file exporter): trace and span ids as hex
        import base64

        for rs in request.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if span.get(key):
                            span[key] = base64.b64decode(span[key]).hex()
    return request


def main() -> None:
    layout, out = sys.argv[1], Path(sys.argv[2])
    ids = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--ids" else "hex"
    spans = capture(layout)
    # one export request per trace, in the order the traces ended (a batch span processor's lines)
    by_trace: dict[int, list] = {}
    for span in spans:
        by_trace.setdefault(span.context.trace_id, []).append(span)
    with open(out, "w", encoding="utf-8") as f:
        for trace_spans in by_trace.values():
            f.write(json.dumps(to_otlp_json(trace_spans, ids), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
