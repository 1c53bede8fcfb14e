"""Two weeks of production traffic for a project made by `flywheel init`, as a team would export it.

The deployed model is the skeleton's challenger (`my_model_v2`, the stub in my_model.py with its YAML params).
Users ask the golden questions in their own words, and also things the model was never given an answer for
(`payments`, `privacy`). In the second week the traffic shifts: longer messages, and many more of the questions
it cannot answer, so the monitor sees input-length drift and a prod-lab parity gap. Users thumb answers up
when they carry the golden answer and down otherwise; for some wrong answers an agent writes a correction (the
bridge turns those into golden cases).

Written as: `traces.jsonl` (most calls, Flywheel's trace records), `spans_otlp.jsonl` (a share of the calls as
OpenTelemetry GenAI spans in OTLP/JSON, the current `gen_ai.input.messages` / `gen_ai.output.messages` layout,
with the user's thumb as a `gen_ai.user.feedback` span event) and `feedback.jsonl` (feedback on the JSONL
traces, keyed by their trace id). Deterministic for a seed.
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


def _span(trace_hex: str, span_hex: str, call: dict, thumbs: str | None, at: datetime) -> dict:
    start = int(at.timestamp() * 1e9)
    end = start + int(call["latency_ms"] * 1e6)

    def s(key, value):
        return {"key": key, "value": {"stringValue": value}}

    def i(key, value):
        return {"key": key, "value": {"intValue": str(value)}}

    attributes = [
        s("gen_ai.operation.name", "chat"), s("gen_ai.provider.name", "acme"),
        s("gen_ai.request.model", call["model"]), s("gen_ai.response.model", call["model_version"]),
        s("gen_ai.conversation.id", call["session_id"]), s("user.id", call["user_id"]),
        s("gen_ai.input.messages", json.dumps([{"role": "user", "parts": [{"type": "text", "content": call["input"]}]}])),
        s("gen_ai.output.messages", json.dumps([{"role": "assistant", "parts": [{"type": "text",
                                                                                  "content": call["output"]}],
                                                 "finish_reason": "stop"}])),
        i("gen_ai.usage.input_tokens", call["prompt_tokens"]), i("gen_ai.usage.output_tokens", call["completion_tokens"]),
        s("app.topic", call["attributes"]["topic"]),
    ]
    events = []
    if thumbs:
        events.append({"timeUnixNano": str(end + 30_000_000_000), "name": "gen_ai.user.feedback",
                       "attributes": [s("feedback.kind", "thumbs"), s("feedback.thumbs", thumbs)]})
    span = {"traceId": trace_hex, "spanId": span_hex, "name": f"chat {call['model']}", "kind": 3,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(end), "attributes": attributes,
            "events": events, "status": {"code": 1}}
    return {"resourceSpans": [{"resource": {"attributes": [s("service.name", "helpdesk")]},
                               "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.genai"},
                                               "spans": [span]}]}]}


def write_production(project: Path, out_dir: Path | None = None, days: int = 14, per_day: int = 40,
                     otlp_share: float = 0.2, seed: int = 11) -> dict[str, object]:
    """Write the three files into `out_dir` (default PROJECT/data/production); returns paths and counts."""
    rng = random.Random(seed)
    out_dir = out_dir or project / "data" / "production"
    out_dir.mkdir(parents=True, exist_ok=True)
    model = _load_model(project, "my_model_v2")
    golden = _golden(project)
    traces, spans, feedback = [], [], []
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
            if rng.random() < otlp_share:
                spans.append(_span(f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(64):016x}", call, thumbs, at))
                continue
            traces.append(call)
            when = (at + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
            if thumbs:
                feedback.append({"feedback_id": f"fb-{call['trace_id']}", "trace_id": call["trace_id"],
                                 "timestamp": when, "kind": "thumbs", "thumbs": thumbs, "user_id": user})
            if not good and rng.random() < 0.5:
                feedback.append({"feedback_id": f"fix-{call['trace_id']}", "trace_id": call["trace_id"],
                                 "timestamp": when, "kind": "correction", "correction": right})
    paths = {"traces": out_dir / "traces.jsonl", "spans": out_dir / "spans_otlp.jsonl",
             "feedback": out_dir / "feedback.jsonl"}
    for key, rows in (("traces", traces), ("spans", spans), ("feedback", feedback)):
        paths[key].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {"paths": paths, "traces": len(traces), "spans": len(spans), "feedback": len(feedback),
            "span_feedback": sum(1 for s in spans if s["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["events"])}
