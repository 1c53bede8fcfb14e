"""OpenTelemetry GenAI agent spans -> tool steps of production traces (`trace_tool_steps`).

`flywheel ingest` turns each OTel trace into one trace record (engine/ingest/otel.py: the `invoke_agent` span's
request and final answer, or the last model call's). The tool calls an agent made on the way are its
`execute_tool` spans; this module reads them from the same OTLP files, inside the ingest's transaction, into one
row per call, parented to its trace (`trace_id` joins `traces.trace_id`) and to its parent span:

    trace_id, span_id, parent_span_id   the span's ids (hex); parent: usually the invoke_agent or chat span
    step                                0-based order of the trace's tool calls by start time (then span id)
    tool_name                           gen_ai.tool.name
    tool_call_id                        gen_ai.tool.call.id (the id the model gave the call)
    arguments, result                   gen_ai.tool.call.arguments / .result when captured (JSON text is parsed;
                                        other text is kept as a JSON string); NULL when not captured
    error                               status.message (or error.type) when the span's status is ERROR
    started_at, latency_ms              span start and duration
    batch_id, source_file, source_line  provenance, as on every ingested row

A span re-ingested (the same trace and span id) replaces its row, so ingesting a file twice keeps one row per
call.

A multi-turn conversation: the trace's `invoke_agent` span (the earliest, when several) with
`gen_ai.input.messages` gives the turns before the trace's input (its last user message) to
`trace_conversations` (one row per trace: its text messages of role system, user or assistant, oldest first;
tool-call parts are left out). The bridge makes them a golden case's `messages` (engine/agents/bridge_cases.py). Files are read a second time for this (the trace records' reader is another module's); spans of other
operations are ignored here.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterator

import pyarrow as pa

from engine.ingest.genai_layouts import _message_text, _messages
from engine.ingest.otel import attributes_dict, otel_id, unix_nanos
from engine.backend import run_on
from engine.executor import execute
from engine.provenance import canonical_json
from engine.sql import statement

TOOL_OPERATION = "execute_tool"
_COLUMNS = pa.schema([
    ("trace_id", pa.string()), ("span_id", pa.string()), ("parent_span_id", pa.string()),
    ("tool_name", pa.string()), ("tool_call_id", pa.string()), ("arguments", pa.string()),
    ("result", pa.string()), ("error", pa.string()), ("started_at", pa.timestamp("us", tz="UTC")),
    ("latency_ms", pa.float64()), ("source_file", pa.string()), ("source_line", pa.int64()),
])


# the last record of a span wins (a span written twice); a stored one is replaced
_DROP_STEPS = statement("agent:drop_replaced_steps", """
    DELETE FROM trace_tool_steps AS t WHERE EXISTS (SELECT 1 FROM flywheel_tool_spans AS s
      WHERE s.trace_id = t.trace_id AND s.span_id = t.span_id)""", "stored tool spans this batch writes again")
_INSERT_STEPS = statement("agent:insert_steps", """
    INSERT INTO trace_tool_steps
    SELECT trace_id, span_id, parent_span_id, 0, tool_name, tool_call_id, arguments::JSON, result::JSON,
           error, started_at, latency_ms, $batch_id, source_file, source_line
    FROM flywheel_tool_spans
    QUALIFY row_number() OVER (PARTITION BY trace_id, span_id ORDER BY source_file DESC,
                               source_line DESC) = 1""", "the batch's tool spans, the last record of each")
_NUMBER_STEPS = statement("agent:number_steps", """
    UPDATE trace_tool_steps AS t SET step = n.step FROM (
      SELECT trace_id, span_id, (row_number() OVER (PARTITION BY trace_id
             ORDER BY started_at NULLS LAST, span_id) - 1)::INTEGER AS step
      FROM trace_tool_steps WHERE trace_id IN (SELECT trace_id FROM flywheel_tool_spans)) AS n
    WHERE t.trace_id = n.trace_id AND t.span_id = n.span_id""", "each touched trace's steps numbered in time order")
_DROP_CONVERSATIONS = statement("agent:drop_replaced_conversations", "DELETE FROM trace_conversations WHERE "
                                "trace_id IN (SELECT trace_id FROM flywheel_conversations)",
                                "stored conversations of re-ingested traces")
_INSERT_CONVERSATIONS = statement("agent:insert_conversations", """
    INSERT INTO trace_conversations
    SELECT trace_id, span_id, messages::JSON, $batch_id, source_file, source_line FROM flywheel_conversations
    QUALIFY row_number() OVER (PARTITION BY trace_id ORDER BY start NULLS LAST, span_id,
                               source_file DESC, source_line DESC) = 1""",
    "one row per trace: its earliest agent span's turns")
_TOOL_CALLS = statement("agent:production_tool_calls", "SELECT trace_id, tool_name, error FROM trace_tool_steps "
                        "WHERE list_contains($ids, trace_id) ORDER BY trace_id, step",
                        "the traces' recorded tool calls")


def _json_text(value: Any) -> str | None:
    """A captured argument or result as JSON text: parsed when it is JSON text, else kept as a JSON value."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return canonical_json(value)  # text that is not JSON: kept as a JSON string
    try:
        return canonical_json(value)  # the same form as a lab trajectory's arguments
    except ValueError:  # NaN or Infinity
        return None


def _spans(request: Any) -> Iterator[dict]:
    if not isinstance(request, dict):
        return
    for rs in request.get("resourceSpans", request.get("resource_spans")) or []:
        for scope in (rs or {}).get("scopeSpans", (rs or {}).get("scope_spans")) or [] if isinstance(rs, dict) else []:
            for span in (scope or {}).get("spans") or [] if isinstance(scope, dict) else []:
                if isinstance(span, dict):
                    yield span


def _operation_span(span: dict, operation: str) -> tuple[dict, str, str] | None:
    """(attributes, trace id, span id) of a GenAI span of this operation with both ids, else None."""
    attrs = attributes_dict(span.get("attributes"))
    if attrs.get("gen_ai.operation.name") != operation:
        return None
    trace_id = otel_id(span.get("traceId", span.get("trace_id")), 16)
    span_id = otel_id(span.get("spanId", span.get("span_id")), 8)
    return (attrs, trace_id, span_id) if trace_id and span_id else None


def tool_step(span: dict) -> dict | None:
    """The row of one `execute_tool` span, or None for any other span (or one without ids)."""
    found = _operation_span(span, TOOL_OPERATION)
    if found is None:
        return None
    attrs, trace_id, span_id = found
    status = span.get("status") or {}
    failed = isinstance(status, dict) and status.get("code") in (2, "2", "STATUS_CODE_ERROR", "ERROR")
    start = unix_nanos(span.get("startTimeUnixNano", span.get("start_time_unix_nano")))
    end = unix_nanos(span.get("endTimeUnixNano", span.get("end_time_unix_nano")))
    name = attrs.get("gen_ai.tool.name")
    return {
        "trace_id": trace_id, "span_id": span_id,
        "parent_span_id": otel_id(span.get("parentSpanId", span.get("parent_span_id")), 8) or None,
        "tool_name": str(name) if name is not None else None,
        "tool_call_id": str(attrs["gen_ai.tool.call.id"]) if attrs.get("gen_ai.tool.call.id") is not None else None,
        "arguments": _json_text(attrs.get("gen_ai.tool.call.arguments")),
        "result": _json_text(attrs.get("gen_ai.tool.call.result")),
        "error": (status.get("message") or attrs.get("error.type") or "error") if failed else None,
        "started_at": datetime.fromtimestamp(start / 1e9, tz=timezone.utc) if start else None,
        "latency_ms": (end - start) / 1e6 if start and end and end >= start else None,
    }


AGENT_OPERATION = "invoke_agent"
CONVERSATION_ROLES = ("system", "user", "assistant")
_CONVERSATIONS = pa.schema([("trace_id", pa.string()), ("span_id", pa.string()), ("start", pa.int64()),
                            ("messages", pa.string()), ("source_file", pa.string()), ("source_line", pa.int64())])


def earlier_turns(input_messages) -> list[dict]:
    """The text turns before the last user message of an agent's `gen_ai.input.messages`."""
    messages = [m for m in _messages(input_messages) if isinstance(m, dict)]
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    if last_user is None:
        return []
    turns = [{"role": m["role"], "content": _message_text(m)} for m in messages[:last_user]
             if m.get("role") in CONVERSATION_ROLES]
    return [t for t in turns if t["content"]]


def conversation(span: dict) -> dict | None:
    """The conversation row of an `invoke_agent` span with earlier turns, else None."""
    found = _operation_span(span, AGENT_OPERATION)
    if found is None:
        return None
    attrs, trace_id, span_id = found
    turns = earlier_turns(attrs.get("gen_ai.input.messages"))
    if not turns:
        return None
    return {"trace_id": trace_id, "span_id": span_id,
            "start": unix_nanos(span.get("startTimeUnixNano", span.get("start_time_unix_nano"))),
            "messages": canonical_json(turns)}


def _documents(path) -> list[tuple[int, Any]]:
    text = path.read_text(encoding="utf-8", errors="replace").lstrip("\ufeff")
    try:
        return [(1, json.loads(text))]  # a pretty-printed document (or a single line)
    except ValueError:
        documents = []
        for number, line in enumerate(text.split("\n"), start=1):
            try:
                documents.append((number, json.loads(line)))
            except ValueError:
                continue  # blank, or bad: the trace reader quarantines it
        return documents


def read_agent_rows(path, shown: str) -> tuple[pa.Table, pa.Table]:
    """(tool-call rows, conversation rows) of one OTLP/JSON file (one export request per line, or one document)."""
    rows, talks = [], []
    for number, document in _documents(path):
        for span in _spans(document):
            row = tool_step(span)
            if row is not None:
                rows.append({**row, "source_file": shown, "source_line": number})
            talk = conversation(span)
            if talk is not None:
                talks.append({**talk, "source_file": shown, "source_line": number})
    return pa.Table.from_pylist(rows, schema=_COLUMNS), pa.Table.from_pylist(talks, schema=_CONVERSATIONS)


def store_tool_steps(con, sources, batch_id: str) -> int:
    """Read the `execute_tool` spans of the OTLP sources into `trace_tool_steps` (inside the ingest's
    transaction), renumbering the steps of the traces they belong to. Returns the rows written."""
    read = [read_agent_rows(s.path, s.shown) for s in sources if s.format == "otlp"]
    rows = pa.concat_tables([r[0] for r in read]) if read else _COLUMNS.empty_table()
    talks = pa.concat_tables([r[1] for r in read]) if read else _CONVERSATIONS.empty_table()
    if len(talks):
        _store_conversations(con, talks, batch_id)
    if not len(rows):
        return 0
    con.register("flywheel_tool_spans", rows)
    try:
        # the last record of a span wins (a span written twice); a stored one is replaced
        execute(con, _DROP_STEPS, {})
        execute(con, _INSERT_STEPS, {"batch_id": batch_id})
        execute(con, _NUMBER_STEPS, {})
    finally:
        con.unregister("flywheel_tool_spans")
    return len(rows)


def _store_conversations(con, talks: pa.Table, batch_id: str) -> None:
    """One row per trace (its earliest agent span's turns); a re-ingested trace's row is replaced."""
    con.register("flywheel_conversations", talks)
    try:
        execute(con, _DROP_CONVERSATIONS, {})
        execute(con, _INSERT_CONVERSATIONS, {"batch_id": batch_id})
    finally:
        con.unregister("flywheel_conversations")


def production_tool_calls(con, trace_ids: list[str]) -> dict[str, list[dict]]:
    """The recorded tool calls of production traces (names and errors, in order), for the bridge's golden cases.
    Arguments and results are left out: they may hold personal data the bridge's redaction does not cover."""
    if not trace_ids:
        return {}
    rows = [tuple(r.values()) for r in run_on(con, _TOOL_CALLS, {"ids": list(trace_ids)})]
    out: dict[str, list[dict]] = {}
    for trace_id, name, error in rows:
        out.setdefault(trace_id, []).append({"name": name, **({"error": error} if error else {})})
    return out
