"""Two weeks of production traffic for a project made by `flywheel init`, as a team would export it.

The deployed model is the skeleton's challenger (`my_model_v2`, the stub in my_model.py with its YAML params).
Users ask the golden questions in their own words, and also things the model was never given an answer for
(`payments`, `privacy`). In the second week the traffic shifts: longer messages, and many more of the questions
it cannot answer, so the monitor sees input-length drift and a prod-lab parity gap. Users thumb answers up
when they carry the golden answer and down otherwise; for some wrong answers an agent writes a correction (the
bridge turns those into golden cases).

Written as: `traces.jsonl` (most calls, Flywheel's trace records); a share of the calls as OpenTelemetry spans in
OTLP/JSON, in the three layouts instrumentations write: `spans_otlp.jsonl` (the current GenAI conventions,
`gen_ai.input.messages` / `gen_ai.output.messages`, with the user's thumb as a `gen_ai.user.feedback` span
event), `spans_openllmetry.jsonl` (OpenLLMetry/Traceloop's indexed `gen_ai.prompt.N.*` /
`gen_ai.completion.N.*` attributes) and `spans_openinference.jsonl` (OpenInference's `llm.input_messages.N.*`,
`input.value`, `output.value`); and `feedback.jsonl`: feedback on the JSONL traces keyed by their trace id, and
on the OpenLLMetry and OpenInference spans keyed by the span's OTel trace id (32 hex digits), as a team that
records thumbs in its own database exports them. Deterministic for a seed.
"""
from __future__ import annotations

import importlib.util
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

START = datetime(2025, 3, 1, tzinfo=timezone.utc)
UNANSWERABLE = [("Can I pay by bank transfer?", "payments", "Yes, bank transfers are accepted for annual plans."),
                ("Do you store my card details?", "privacy", "Card details are stored by our payment provider."),
                ("Is there a student discount?", "payments", "Students get 20% off with a valid student email.")]
PREFIXES = ["", "Hi, ", "Quick question: ", "Hello! "]
LONG_PREFIX = ("I have been going back and forth with this for a while now and the help pages did not make it "
               "clear to me, so let me ask directly: ")


def _load_model(project: Path, name: str):
    """The project's own model, built from its YAML the way Flywheel builds it."""
    spec = importlib.util.spec_from_file_location(f"first_hour_model_{abs(hash(project))}", project / "my_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = yaml.safe_load((project / "conf" / "model" / f"{name}.yaml").read_text(encoding="utf-8"))
    return module.Model(**config["params"])


def _golden(project: Path) -> list[dict]:
    return [json.loads(line) for line in (project / "data" / "golden.jsonl").read_text(encoding="utf-8").splitlines()]


def _correct(answer: str, expected) -> bool:
    wanted = expected if isinstance(expected, list) else [expected]
    return any(w.lower() in answer.lower() for w in wanted)


def _s(key, value):
    return {"key": key, "value": {"stringValue": value}}


def _i(key, value):
    return {"key": key, "value": {"intValue": str(value)}}


def _current_attributes(call: dict) -> list[dict]:
    """The OTel GenAI semantic conventions as they are now."""
    return [
        _s("gen_ai.operation.name", "chat"), _s("gen_ai.provider.name", "acme"),
        _s("gen_ai.request.model", call["model"]), _s("gen_ai.response.model", call["model_version"]),
        _s("gen_ai.conversation.id", call["session_id"]), _s("user.id", call["user_id"]),
        _s("gen_ai.input.messages", json.dumps([{"role": "user", "parts": [{"type": "text", "content": call["input"]}]}])),
        _s("gen_ai.output.messages", json.dumps([{"role": "assistant", "parts": [{"type": "text",
                                                                                   "content": call["output"]}],
                                                  "finish_reason": "stop"}])),
        _i("gen_ai.usage.input_tokens", call["prompt_tokens"]), _i("gen_ai.usage.output_tokens", call["completion_tokens"]),
    ]


def _openllmetry_attributes(call: dict) -> list[dict]:
    """OpenLLMetry/Traceloop's indexed attributes (opentelemetry-instrumentation-openai 0.40)."""
    return [
        _s("llm.request.type", "chat"), _s("gen_ai.system", "acme"),
        _s("gen_ai.request.model", call["model"]), _s("gen_ai.response.model", call["model_version"]),
        _s("gen_ai.prompt.0.role", "system"), _s("gen_ai.prompt.0.content", "You are a helpdesk assistant."),
        _s("gen_ai.prompt.1.role", "user"), _s("gen_ai.prompt.1.content", call["input"]),
        _s("gen_ai.completion.0.finish_reason", "stop"), _s("gen_ai.completion.0.role", "assistant"),
        _s("gen_ai.completion.0.content", call["output"]),
        _i("gen_ai.usage.prompt_tokens", call["prompt_tokens"]),
        _i("gen_ai.usage.completion_tokens", call["completion_tokens"]),
        _s("traceloop.association.properties.session_id", call["session_id"]),
        _s("traceloop.association.properties.user_id", call["user_id"]),
    ]


def _openinference_attributes(call: dict) -> list[dict]:
    """OpenInference (Arize Phoenix) attributes (openinference-instrumentation-openai 0.1)."""
    request = {"model": call["model"], "messages": [{"role": "user", "content": call["input"]}]}
    return [
        _s("openinference.span.kind", "LLM"), _s("llm.system", "acme"),
        _s("llm.model_name", call["model"]), _s("llm.invocation_parameters", json.dumps({"model": call["model"]})),
        _s("input.value", json.dumps(request)), _s("input.mime_type", "application/json"),
        _s("output.value", call["output"]), _s("output.mime_type", "text/plain"),
        _s("llm.input_messages.0.message.role", "user"), _s("llm.input_messages.0.message.content", call["input"]),
        _s("llm.output_messages.0.message.role", "assistant"),
        _s("llm.output_messages.0.message.content", call["output"]),
        _i("llm.token_count.prompt", call["prompt_tokens"]), _i("llm.token_count.completion", call["completion_tokens"]),
        _s("session.id", call["session_id"]), _s("user.id", call["user_id"]),
    ]


# layout -> (file, attribute builder, instrumentation scope, span name)
LAYOUTS = {
    "otel_genai": ("spans_otlp.jsonl", _current_attributes, "opentelemetry.instrumentation.genai", "chat {model}"),
    "otel_genai_indexed": ("spans_openllmetry.jsonl", _openllmetry_attributes,
                           "opentelemetry.instrumentation.openai.v1", "openai.chat"),
    "openinference": ("spans_openinference.jsonl", _openinference_attributes,
                      "openinference.instrumentation.openai", "ChatCompletion"),
}


def _span(layout: str, trace_hex: str, span_hex: str, call: dict, thumbs: str | None, at: datetime) -> dict:
    """One model call as an OTLP/JSON export request in `layout`; the thumb as a span event in the current
    layout only (the other instrumentations have no feedback event: their feedback comes by trace id)."""
    start = int(at.timestamp() * 1e9)
    end = start + int(call["latency_ms"] * 1e6)
    _, attributes_of, scope, name = LAYOUTS[layout]
    attributes = attributes_of(call) + [_s("app.topic", call["attributes"]["topic"])]
    events = []
    if thumbs and layout == "otel_genai":
        events.append({"timeUnixNano": str(end + 30_000_000_000), "name": "gen_ai.user.feedback",
                       "attributes": [_s("feedback.kind", "thumbs"), _s("feedback.thumbs", thumbs)]})
    span = {"traceId": trace_hex, "spanId": span_hex, "name": name.format(model=call["model"]), "kind": 3,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(end), "attributes": attributes,
            "events": events, "status": {"code": 1}}
    return {"resourceSpans": [{"resource": {"attributes": [_s("service.name", "helpdesk")]},
                               "scopeSpans": [{"scope": {"name": scope}, "spans": [span]}]}]}


def write_production(project: Path, out_dir: Path | None = None, days: int = 14, per_day: int = 40,
                     otlp_share: float = 0.2, seed: int = 11) -> dict[str, object]:
    """Write the five files into `out_dir` (default PROJECT/data/production); returns paths and counts."""
    rng = random.Random(seed)
    out_dir = out_dir or project / "data" / "production"
    out_dir.mkdir(parents=True, exist_ok=True)
    model = _load_model(project, "my_model_v2")
    golden = _golden(project)
    traces, feedback = [], []
    spans: dict[str, list[dict]] = {layout: [] for layout in LAYOUTS}
    otel_feedback = 0
    for day in range(days):
        shifted = day >= days // 2
        for n in range(per_day):
            at = START + timedelta(days=day, minutes=rng.randrange(24 * 60))
            if rng.random() < (0.45 if shifted else 0.1):
                question, topic, right = rng.choice(UNANSWERABLE)
                expected = [right]
            else:
                case = rng.choice(golden)
                question, topic, expected = case["input"], case["tags"][0], case["expected"]
                right = expected if isinstance(expected, str) else expected[0]
            text = (LONG_PREFIX if shifted and rng.random() < 0.7 else rng.choice(PREFIXES)) + question
            output = model.answer(text)
            user = f"u{rng.randrange(60):03d}"
            call = {"trace_id": f"tr-{day:02d}-{n:03d}", "session_id": f"s-{day:02d}-{n // 2:03d}", "user_id": user,
                    "timestamp": at.isoformat().replace("+00:00", "Z"), "model": "my_model_v2",
                    "model_version": "1", "input": text, "output": output,
                    "latency_ms": round(rng.uniform(300, 900 if not shifted else 1400), 1),
                    "prompt_tokens": len(text.split()), "completion_tokens": len(output.split()),
                    "cost": round(len(text.split()) * 2e-6, 8), "attributes": {"topic": topic, "channel": "web"}}
            good = _correct(output, expected)
            thumbs = ("up" if good else "down") if rng.random() < 0.7 else None
            when = (at + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
            if rng.random() < otlp_share:
                layout = list(LAYOUTS)[sum(len(v) for v in spans.values()) % len(LAYOUTS)]
                trace_hex = f"{rng.getrandbits(128):032x}"
                spans[layout].append(_span(layout, trace_hex, f"{rng.getrandbits(64):016x}", call, thumbs, at))
                if thumbs and layout != "otel_genai":
                    otel_feedback += 1
                    feedback.append({"feedback_id": f"fb-{trace_hex}", "trace_id": trace_hex, "timestamp": when,
                                     "kind": "thumbs", "thumbs": thumbs, "user_id": user})
                continue
            traces.append(call)
            if thumbs:
                feedback.append({"feedback_id": f"fb-{call['trace_id']}", "trace_id": call["trace_id"],
                                 "timestamp": when, "kind": "thumbs", "thumbs": thumbs, "user_id": user})
            if not good and rng.random() < 0.5:
                feedback.append({"feedback_id": f"fix-{call['trace_id']}", "trace_id": call["trace_id"],
                                 "timestamp": when, "kind": "correction", "correction": right})
    paths = {"traces": out_dir / "traces.jsonl", "feedback": out_dir / "feedback.jsonl",
             **{layout: out_dir / LAYOUTS[layout][0] for layout in LAYOUTS}}
    for key, rows in (("traces", traces), ("feedback", feedback), *spans.items()):
        paths[key].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {"paths": paths, "traces": len(traces), "spans": sum(len(v) for v in spans.values()),
            "spans_by_layout": {layout: len(v) for layout, v in spans.items()}, "feedback": len(feedback),
            "feedback_by_otel_trace_id": otel_feedback,
            "span_feedback": sum(1 for s in spans["otel_genai"]
                                 if s["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["events"])}
