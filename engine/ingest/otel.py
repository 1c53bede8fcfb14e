"""OpenTelemetry GenAI spans (OTLP/JSON) -> trace and feedback records.

Mapping (OTel GenAI semantic conventions):

    trace_id            "<traceId>-<spanId>"  (one record per model call; feedback joins on it)
    session_id          gen_ai.conversation.id (or session.id)
    user_id             user.id (or enduser.id)
    timestamp           startTimeUnixNano;  latency_ms = end - start
    model               gen_ai.request.model;  model_version = gen_ai.response.model
    input               text of the last user message in gen_ai.input.messages (legacy: gen_ai.prompt)
    output              text of gen_ai.output.messages (legacy: gen_ai.completion)
    prompt_tokens       gen_ai.usage.input_tokens;  completion_tokens = gen_ai.usage.output_tokens
    cost                gen_ai.usage.cost (not a semantic convention; emitted by the simulator and some proxies)
    error               status.message when status.code is ERROR (or error.type)
    attributes          app.* span attributes without the prefix (app.topic -> topic), provider, service

Span events become feedback records about the span:

    gen_ai.evaluation.result   kind=evaluation: gen_ai.evaluation.name -> metric, .score.value -> value,
                               .score.label -> label, .explanation -> comment
    gen_ai.user.feedback       kind=feedback.kind (rating|thumbs|ticket|behavior|correction) with
                               feedback.rating / .thumbs / .signal / .correction / .comment / .ticket_id

Spans that are not model calls (no gen_ai.request.model, or an operation such as execute_tool or embeddings)
are not records and are skipped. The converted records are validated by the same SQL as every other input.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterator

MODEL_CALL_OPERATIONS = {"chat", "text_completion", "generate_content", "invoke_agent"}


def any_value(value: dict | None) -> Any:
    """An OTLP AnyValue as a plain Python value."""
    if not isinstance(value, dict):
        return None
    for key in ("stringValue", "string_value"):
        if key in value:
            return value[key]
    for key in ("intValue", "int_value"):
        if key in value:
            try:
                return int(value[key])
            except (TypeError, ValueError):
                return value[key]
    for key in ("doubleValue", "double_value"):
        if key in value:
            return value[key]
    for key in ("boolValue", "bool_value"):
        if key in value:
            return value[key]
    for key in ("arrayValue", "array_value"):
        if key in value:
            return [any_value(v) for v in (value[key] or {}).get("values", [])]
    for key in ("kvlistValue", "kvlist_value"):
        if key in value:
            return attributes_dict((value[key] or {}).get("values", []))
    return None


def attributes_dict(attributes: list | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in attributes or []:
        if isinstance(kv, dict) and "key" in kv:
            out[kv["key"]] = any_value(kv.get("value"))
    return out


def _nanos_to_iso(nanos: Any) -> str | None:
    try:
        n = int(nanos)
    except (TypeError, ValueError):
        return None
    if n <= 0:
        return None
    dt = datetime.fromtimestamp(n // 1_000_000_000, tz=timezone.utc).replace(microsecond=(n % 1_000_000_000) // 1000)
    return dt.isoformat().replace("+00:00", "Z")


def _messages(value: Any) -> list:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [{"role": "user", "parts": [{"type": "text", "content": value}]}]
    return value if isinstance(value, list) else []


def _message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    parts = message.get("parts")
    if isinstance(parts, list):
        texts = [p.get("content") for p in parts if isinstance(p, dict) and p.get("type", "text") == "text"]
        return "\n".join(t for t in texts if isinstance(t, str))
    content = message.get("content")
    return content if isinstance(content, str) else ""


def _input_text(attrs: dict, events: list[dict]) -> str | None:
    messages = _messages(attrs.get("gen_ai.input.messages"))
    user = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if user:
        return _message_text(user[-1])
    if isinstance(attrs.get("gen_ai.prompt"), str):
        return attrs["gen_ai.prompt"]
    for event in reversed(events):
        if event.get("name") == "gen_ai.user.message":
            content = attributes_dict(event.get("attributes")).get("content")
            if isinstance(content, str):
                return content
    return None


def _output_text(attrs: dict, events: list[dict]) -> str | None:
    messages = _messages(attrs.get("gen_ai.output.messages"))
    if messages:
        return "\n".join(_message_text(m) for m in messages)
    if isinstance(attrs.get("gen_ai.completion"), str):
        return attrs["gen_ai.completion"]
    for event in events:
        if event.get("name") == "gen_ai.choice":
            message = attributes_dict(event.get("attributes")).get("message")
            if isinstance(message, dict):
                return _message_text(message)
    return None


def _is_error(status: Any) -> bool:
    code = status.get("code") if isinstance(status, dict) else None
    return code in (2, "2", "STATUS_CODE_ERROR", "ERROR")


def _put(record: dict, key: str, value: Any) -> None:
    if value is not None:
        record[key] = value


def convert_span(span: dict, resource: dict) -> Iterator[tuple[str, dict, str | None]]:
    """(kind, record, problem) for one span: its trace record, then one feedback record per feedback event."""
    attrs = attributes_dict(span.get("attributes"))
    operation = attrs.get("gen_ai.operation.name")
    if "gen_ai.request.model" not in attrs and operation not in MODEL_CALL_OPERATIONS:
        return
    if operation is not None and operation not in MODEL_CALL_OPERATIONS:
        return
    events = [e for e in span.get("events") or [] if isinstance(e, dict)]
    trace_id = f"{span.get('traceId', span.get('trace_id', ''))}-{span.get('spanId', span.get('span_id', ''))}"
    session_id = attrs.get("gen_ai.conversation.id", attrs.get("session.id"))
    user_id = attrs.get("user.id", attrs.get("enduser.id"))
    record: dict[str, Any] = {"trace_id": trace_id}
    _put(record, "session_id", session_id)
    _put(record, "user_id", user_id)
    _put(record, "timestamp", _nanos_to_iso(span.get("startTimeUnixNano", span.get("start_time_unix_nano"))))
    _put(record, "model", attrs.get("gen_ai.request.model", attrs.get("gen_ai.response.model")))
    _put(record, "model_version", attrs.get("gen_ai.response.model"))
    _put(record, "input", _input_text(attrs, events))
    _put(record, "output", _output_text(attrs, events))
    try:
        start = int(span.get("startTimeUnixNano", span.get("start_time_unix_nano")))
        end = int(span.get("endTimeUnixNano", span.get("end_time_unix_nano")))
        record["latency_ms"] = (end - start) / 1e6
    except (TypeError, ValueError):
        pass
    _put(record, "prompt_tokens", attrs.get("gen_ai.usage.input_tokens", attrs.get("gen_ai.usage.prompt_tokens")))
    _put(record, "completion_tokens",
         attrs.get("gen_ai.usage.output_tokens", attrs.get("gen_ai.usage.completion_tokens")))
    _put(record, "cost", attrs.get("gen_ai.usage.cost"))
    status = span.get("status") or {}
    if _is_error(status):
        record["error"] = status.get("message") or attrs.get("error.type") or "error"
    extra = {k[len("app."):]: v for k, v in attrs.items() if k.startswith("app.")}
    provider = attrs.get("gen_ai.provider.name", attrs.get("gen_ai.system"))
    if provider is not None:
        extra["provider"] = provider
    if resource.get("service.name") is not None:
        extra["service"] = resource["service.name"]
    if extra:
        record["attributes"] = extra
    yield "traces", record, None

    for index, event in enumerate(events, start=1):
        name = event.get("name")
        ev = attributes_dict(event.get("attributes"))
        fb: dict[str, Any] = {"feedback_id": ev.get("feedback.id", f"{trace_id}-e{index}"), "trace_id": trace_id}
        _put(fb, "session_id", session_id)
        _put(fb, "timestamp", _nanos_to_iso(event.get("timeUnixNano", event.get("time_unix_nano"))))
        if name == "gen_ai.evaluation.result":
            fb["kind"] = "evaluation"
            _put(fb, "metric", ev.get("gen_ai.evaluation.name"))
            _put(fb, "value", ev.get("gen_ai.evaluation.score.value"))
            _put(fb, "label", ev.get("gen_ai.evaluation.score.label"))
            _put(fb, "comment", ev.get("gen_ai.evaluation.explanation"))
        elif name == "gen_ai.user.feedback":
            _put(fb, "user_id", ev.get("user.id", user_id))
            _put(fb, "kind", ev.get("feedback.kind"))
            for field in ("rating", "thumbs", "signal", "correction", "comment", "ticket_id", "value"):
                _put(fb, field, ev.get(f"feedback.{field}"))
        else:
            continue
        yield "feedback", fb, None


def convert_request(request: Any) -> Iterator[tuple[str, dict, str | None]]:
    """Every record in one ExportTraceServiceRequest (a line of an OTLP/JSON file)."""
    if not isinstance(request, dict):
        yield "traces", {"value": request}, "not an OTLP request: expected a JSON object with resourceSpans"
        return
    resource_spans = request.get("resourceSpans", request.get("resource_spans"))
    if not isinstance(resource_spans, list):
        yield "traces", request, "not an OTLP request: no resourceSpans list"
        return
    for rs in resource_spans:
        if not isinstance(rs, dict):
            continue
        resource = attributes_dict((rs.get("resource") or {}).get("attributes"))
        scopes = rs.get("scopeSpans", rs.get("scope_spans", rs.get("instrumentationLibrarySpans"))) or []
        for scope in scopes:
            for span in (scope or {}).get("spans") or []:
                if isinstance(span, dict):
                    yield from convert_span(span, resource)
