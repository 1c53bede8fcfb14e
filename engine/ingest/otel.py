"""OpenTelemetry GenAI spans (OTLP/JSON) -> trace and feedback records: one trace record per OTel trace.

Ids. `trace_id` is the OTel trace id and `span_id` the id of the trace's answer span, both as lowercase hex
(32 and 16 digits). OTLP/JSON writes them as hex; protobuf's JSON mapping (MessageToJson on an export request)
writes the raw bytes as base64: both are read. Feedback and events may reference a trace by either id.

The answer. A trace may hold several GenAI spans (a query rewrite then the answer, an agent calling a model in a
loop, a tool call). The record is the trace as the user saw it, read from its *answer span*:
1. the outermost agent span (`invoke_agent`, OpenInference `AGENT`; the earliest to start) when it carries an
   output or an error: its input is the user's request and its output the agent's final answer;
2. otherwise the last model call to end (chat, text completion; OpenInference `LLM`): in a chain or an agent
   loop the earlier calls plan, rewrite or call tools, and the last one writes what the user reads (if it
   failed, the user got the error, so a failed last call is still the answer);
3. otherwise the outermost agent span (without output: its record is quarantined, saying why).
Spans that are neither (tools, retrievers, embeddings, chains, HTTP) are counted and skipped.

    trace_id            traceId (hex)                      span_id        the answer span's spanId (hex)
    timestamp           start of the trace's first GenAI span;  latency_ms = answer end - that start
    model               the answer's requested model (else the last model call's);  model_version: response model
    input / output      the answer's last user message / its output text (layouts: engine/ingest/genai_layouts.py)
    prompt_tokens, completion_tokens, cost   summed over the trace's model calls (agent spans' own totals
                        are used only when the trace has no model-call span, so nothing is counted twice)
    session_id/user_id  the answer's, else the first GenAI span of the trace that has one
    error               status.message when the answer's status is ERROR (or error.type)
    attributes          the answer's app.* attributes without the prefix (app.topic -> topic), provider,
                        service (resource service.name), model_calls when the trace made more than one

Span events become feedback records about the trace, on whichever span they are (span_id = that span):

    gen_ai.evaluation.result   kind=evaluation: gen_ai.evaluation.name -> metric, .score.value -> value,
                               .score.label -> label, .explanation -> comment
    gen_ai.user.feedback       kind=feedback.kind (rating|thumbs|ticket|behavior|correction) with
                               feedback.rating / .thumbs / .signal / .correction / .comment / .ticket_id

The spans of a trace are gathered over the whole file (an exporter may write them on several lines). A trace
whose spans are split over several files or ingest batches gets a record from each: the second one is a
conflicting duplicate and is quarantined, so it is seen, not double counted. The converted records are
validated by the same SQL as every other input.
"""
from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

from engine.ingest.genai_layouts import AGENT, LLM, SpanFacts, genai_hint, read_span

NO_CONTENT_HINT = ("enable message content capture in the instrumentation (OpenTelemetry: "
                   "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT; OpenLLMetry: TRACELOOP_TRACE_CONTENT=true; "
                   "OpenInference: OPENINFERENCE_HIDE_INPUTS unset)")


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


def otel_id(value: Any, n_bytes: int) -> str | None:
    """A trace (16 bytes) or span (8 bytes) id as lowercase hex, from OTLP/JSON hex or protobuf-JSON base64.
    Anything else is kept as written (an id is an id), so that it still joins with what references it."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) == 2 * n_bytes:
        try:
            bytes.fromhex(value)
            return value.lower()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
        if len(raw) == n_bytes:
            return raw.hex()
    except (binascii.Error, ValueError):
        pass
    return value


def unix_nanos(value: Any) -> int | None:
    """An OTLP `*UnixNano` value (a string or an int) as an int; None when absent, malformed or zero."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None


def _nanos_to_iso(nanos: int | None) -> str | None:
    if nanos is None:
        return None
    dt = datetime.fromtimestamp(nanos // 1_000_000_000, tz=timezone.utc).replace(
        microsecond=(nanos % 1_000_000_000) // 1000)
    return dt.isoformat().replace("+00:00", "Z")


def _is_error(status: Any) -> bool:
    code = status.get("code") if isinstance(status, dict) else None
    return code in (2, "2", "STATUS_CODE_ERROR", "ERROR")


def _get(d: dict, camel: str, snake: str) -> Any:
    return d.get(camel, d.get(snake))


def _put(record: dict, key: str, value: Any) -> None:
    if value is not None:
        record[key] = value


@dataclass
class _Span:
    """A GenAI span of a trace, kept while the file is read (the answer is chosen at the end)."""
    span_id: str | None
    start: int | None
    end: int | None
    facts: SpanFacts
    error: str | None
    app: dict
    service: Any
    line: int


@dataclass
class _Trace:
    trace_id: str
    agent: _Span | None = None  # the outermost agent span so far
    last_call: _Span | None = None  # the last model call to end so far
    model_calls: int = 0
    agents: int = 0
    tokens: list = field(default_factory=lambda: [None, None, None])  # prompt, completion, cost over model calls
    first_start: int | None = None
    session_id: str | None = None
    user_id: str | None = None
    unreadable: list = field(default_factory=list)  # (line, span JSON) of GenAI-looking spans in no known layout


def _add(total: Any, value: Any) -> Any:
    return value if total is None else total if value is None else total + value


class OtlpFile:
    """The records of one OTLP file: feed it each export request (`add`), then take the trace records (`finish`).

    Yields (line, item, kind, record, problem); `item` numbers the records of a line. `summary()` says what was
    seen: spans per attribute layout, traces, answers, spans skipped and why."""

    def __init__(self) -> None:
        self.traces: dict[str, _Trace] = {}
        self.items: Counter = Counter()  # line -> records given so far
        self.spans = 0
        self.layouts: Counter = Counter()
        self.skipped: Counter = Counter()  # why -> spans
        self.feedback = 0
        self.answers: Counter = Counter()
        self.folded = 0
        self.skipped_model_calls = 0

    def _item(self, line: int) -> int:
        self.items[line] += 1
        return self.items[line]

    def add(self, request: Any, line: int) -> Iterator[tuple[int, int, str, Any, str | None]]:
        if not isinstance(request, dict):
            yield line, self._item(line), "traces", {"value": request}, \
                "not an OTLP request: expected a JSON object with resourceSpans"
            return
        resource_spans = _get(request, "resourceSpans", "resource_spans")
        if not isinstance(resource_spans, list):
            yield line, self._item(line), "traces", request, "not an OTLP request: no resourceSpans list"
            return
        for rs in resource_spans:
            if not isinstance(rs, dict):
                continue
            resource = attributes_dict((rs.get("resource") or {}).get("attributes"))
            scopes = rs.get("scopeSpans", rs.get("scope_spans", rs.get("instrumentationLibrarySpans"))) or []
            for scope in scopes:
                for span in (scope or {}).get("spans") or [] if isinstance(scope, dict) else []:
                    if isinstance(span, dict):
                        yield from self._span(span, resource, line)

    def _span(self, span: dict, resource: dict, line: int) -> Iterator[tuple[int, int, str, Any, str | None]]:
        self.spans += 1
        attrs = attributes_dict(span.get("attributes"))
        events = [e for e in span.get("events") or [] if isinstance(e, dict)]
        trace_id = otel_id(_get(span, "traceId", "trace_id"), 16)
        span_id = otel_id(_get(span, "spanId", "span_id"), 8)
        facts = read_span(attrs, events, lambda e: attributes_dict(e.get("attributes")))
        self.layouts[facts.layout or "none"] += 1
        if facts.looks_like_model_call and trace_id:
            trace = self.traces.get(trace_id) or self.traces.setdefault(trace_id, _Trace(trace_id))
            self._gather(trace, span, span_id, facts, attrs, resource, line)
        elif facts.role is None and genai_hint(attrs, str(span.get("name") or "")):
            # written by a GenAI library, but in no layout we read: counted against the file, kept for quarantine
            self.skipped_model_calls += 1
            self.skipped["GenAI span in an unknown attribute layout"] += 1
            if trace_id:
                trace = self.traces.get(trace_id) or self.traces.setdefault(trace_id, _Trace(trace_id))
                trace.unreadable.append((line, span))
            else:
                yield line, self._item(line), "traces", span, "GenAI span without a traceId"
        elif not trace_id and facts.looks_like_model_call:
            yield line, self._item(line), "traces", span, "GenAI span without a traceId"
        else:
            self.skipped[f"not a model call ({facts.what})" if facts.role else "no GenAI attributes"] += 1
        for index, event in enumerate(events, start=1):
            record = _feedback(event, index, trace_id, span_id, facts)
            if record is not None:
                self.feedback += 1
                yield line, self._item(line), "feedback", record, None

    def _gather(self, trace: _Trace, span: dict, span_id: str | None, facts: SpanFacts, attrs: dict,
                resource: dict, line: int) -> None:
        status = span.get("status") or {}
        error = (status.get("message") or attrs.get("error.type") or "error") if _is_error(status) else None
        seen = _Span(span_id, unix_nanos(_get(span, "startTimeUnixNano", "start_time_unix_nano")),
                     unix_nanos(_get(span, "endTimeUnixNano", "end_time_unix_nano")), facts, error,
                     {k[len("app."):]: v for k, v in attrs.items() if k.startswith("app.")},
                     resource.get("service.name"), line)
        if seen.start is not None:
            trace.first_start = seen.start if trace.first_start is None else min(trace.first_start, seen.start)
        trace.session_id = trace.session_id or facts.session_id
        trace.user_id = trace.user_id or facts.user_id
        if facts.role == AGENT:
            trace.agents += 1
            if trace.agent is None or _outer(seen, trace.agent):
                trace.agent = seen
        else:
            trace.model_calls += 1
            trace.tokens = [_add(t, v) for t, v in zip(trace.tokens, (facts.prompt_tokens, facts.completion_tokens,
                                                                     facts.cost))]
            if trace.last_call is None or _later(seen, trace.last_call):
                trace.last_call = seen

    def finish(self) -> Iterator[tuple[int, int, str, Any, str | None]]:
        """The trace records, one per OTel trace with a GenAI span, after the whole file was read."""
        for trace in self.traces.values():
            answer, why = _answer(trace)
            if answer is None:
                if trace.unreadable:
                    line, span = trace.unreadable[-1]
                    yield line, self._item(line), "traces", span, (
                        f"{len(trace.unreadable)} GenAI span(s) of trace {trace.trace_id} are in an attribute layout "
                        f"Flywheel does not read (it reads: otel_genai, otel_genai_indexed, openinference)")
                continue
            self.answers[why] += 1
            self.folded += trace.model_calls + trace.agents - 1
            record, problem = _record(trace, answer)
            yield answer.line, self._item(answer.line), "traces", record, problem

    def summary(self) -> dict:
        seen = [name for name, _ in self.layouts.most_common() if name != "none"]
        return {"spans": self.spans, "layouts": dict(self.layouts), "layout": seen[0] if seen else None,
                "traces": sum(self.answers.values()), "answers": dict(self.answers),
                "model_calls_folded": self.folded, "feedback_events": self.feedback,
                "skipped": sum(self.skipped.values()), "skipped_by_reason": dict(self.skipped),
                "skipped_model_calls": self.skipped_model_calls}


def _outer(a: _Span, b: _Span) -> bool:
    """a encloses b better: it starts earlier, or at the same time and lasts longer."""
    return (a.start or 0, -(a.end or 0)) < (b.start or 0, -(b.end or 0))


def _later(a: _Span, b: _Span) -> bool:
    """a ended after b (ties: the later start, then the span id, so that the choice does not depend on order)."""
    return (a.end or 0, a.start or 0, a.span_id or "") > (b.end or 0, b.start or 0, b.span_id or "")


def _answer(trace: _Trace) -> tuple[_Span | None, str]:
    agent = trace.agent
    if agent is not None and (agent.facts.output is not None or agent.error is not None):
        return agent, "agent span"
    if trace.last_call is not None:
        return trace.last_call, "last model call"
    if agent is not None:
        return agent, "agent span"
    return None, ""


def _record(trace: _Trace, answer: _Span) -> tuple[dict, str | None]:
    facts = answer.facts
    fallback = trace.last_call.facts if trace.last_call is not None else facts
    record: dict[str, Any] = {"trace_id": trace.trace_id}
    _put(record, "span_id", answer.span_id)
    _put(record, "session_id", facts.session_id or trace.session_id)
    _put(record, "user_id", facts.user_id or trace.user_id)
    start = trace.first_start if trace.first_start is not None else answer.start
    _put(record, "timestamp", _nanos_to_iso(start))
    _put(record, "model", facts.model or fallback.model)
    _put(record, "model_version", facts.model_version or fallback.model_version)
    _put(record, "input", facts.input)
    _put(record, "output", facts.output)
    if start is not None and answer.end is not None and answer.end >= start:
        record["latency_ms"] = (answer.end - start) / 1e6
    prompt, completion, cost = trace.tokens if trace.model_calls else (facts.prompt_tokens, facts.completion_tokens,
                                                                       facts.cost)
    _put(record, "prompt_tokens", prompt)
    _put(record, "completion_tokens", completion)
    _put(record, "cost", cost)
    _put(record, "error", answer.error)
    extra = dict(answer.app)
    provider = facts.provider or fallback.provider
    if provider is not None:
        extra["provider"] = provider
    if answer.service is not None:
        extra["service"] = answer.service
    if trace.model_calls > 1:
        extra["model_calls"] = trace.model_calls
    if extra:
        record["attributes"] = extra
    problem = None
    if facts.input is None:
        problem = (f"the answer span {answer.span_id} ({facts.layout}, {facts.what}) of trace {trace.trace_id} "
                   f"carries no prompt text: {NO_CONTENT_HINT}")
    return record, problem


def _feedback(event: dict, index: int, trace_id: str | None, span_id: str | None, facts: SpanFacts) -> dict | None:
    name = event.get("name")
    if name not in ("gen_ai.evaluation.result", "gen_ai.user.feedback"):
        return None
    ev = attributes_dict(event.get("attributes"))
    fb: dict[str, Any] = {"feedback_id": ev.get("feedback.id", f"{trace_id}-{span_id}-e{index}")}
    _put(fb, "trace_id", trace_id)
    _put(fb, "span_id", span_id)
    _put(fb, "session_id", facts.session_id)
    _put(fb, "timestamp", _nanos_to_iso(unix_nanos(_get(event, "timeUnixNano", "time_unix_nano"))))
    if name == "gen_ai.evaluation.result":
        fb["kind"] = "evaluation"
        _put(fb, "metric", ev.get("gen_ai.evaluation.name"))
        _put(fb, "value", ev.get("gen_ai.evaluation.score.value"))
        _put(fb, "label", ev.get("gen_ai.evaluation.score.label"))
        _put(fb, "comment", ev.get("gen_ai.evaluation.explanation"))
    else:
        _put(fb, "user_id", ev.get("user.id", facts.user_id))
        _put(fb, "kind", ev.get("feedback.kind"))
        for name_ in ("rating", "thumbs", "signal", "correction", "comment", "ticket_id", "value"):
            _put(fb, name_, ev.get(f"feedback.{name_}"))
    return fb


def convert_request(request: Any) -> list[tuple[str, Any, str | None]]:
    """(kind, record, problem) of one ExportTraceServiceRequest read on its own: its feedback events, then one
    trace record per trace in it."""
    otlp = OtlpFile()
    out = [(kind, record, problem) for _, _, kind, record, problem in otlp.add(request, 1)]
    return out + [(kind, record, problem) for _, _, kind, record, problem in otlp.finish()]


def dumps(record: Any) -> str:
    return json.dumps(record, ensure_ascii=False)


def otlp_warnings(summary: dict) -> list[str]:
    """What a user must hear about an OTLP file: spans that look like model calls but were not read, a file that
    gave no trace at all."""
    out = []
    if summary["skipped_model_calls"]:
        out.append(f"{summary['skipped_model_calls']:,} span(s) written by a GenAI library are in an attribute layout "
                   f"Flywheel does not read (it reads otel_genai, otel_genai_indexed, openinference); a trace made "
                   f"only of them is quarantined")
    if summary["spans"] and not summary["traces"]:
        reasons = ", ".join(f"{n:,} {why}" for why, n in summary["skipped_by_reason"].items())
        out.append(f"no trace record: none of the {summary['spans']:,} span(s) is a model call Flywheel can read"
                   + (f" ({reasons})" if reasons else ""))
    return out


def print_otlp_summary(path: str, summary: dict) -> None:
    from engine.console import console

    layouts = ", ".join(f"{name} {n:,}" for name, n in summary["layouts"].items() if name != "none") or "none"
    answers = ", ".join(f"{n:,} by {why}" for why, n in summary["answers"].items())
    console.print(f"{path}: {summary['spans']:,} OTel span(s) (GenAI layouts: {layouts}) -> {summary['traces']:,} "
                  f"trace(s)" + (f" ({answers})" if answers else "")
                  + (f", {summary['model_calls_folded']:,} other GenAI span(s) folded into their trace"
                     if summary["model_calls_folded"] else "")
                  + (f", {summary['skipped']:,} skipped (" + ", ".join(
                      f"{n:,} {why}" for why, n in summary["skipped_by_reason"].items()) + ")"
                     if summary["skipped"] else ""), highlight=False)
    for warning in otlp_warnings(summary):
        console.print(f"[bold yellow]warning[/] {path}: {warning}", highlight=False)
