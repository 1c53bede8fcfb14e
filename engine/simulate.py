"""Realistic production traffic for the bundled Tidepool support domain, deterministic for a seed.

Users open sessions over N days and ask questions: paraphrases of the golden QA questions
(datasets/support/golden_qa.jsonl) and questions on topics the golden set does not cover. The deployed model
(any model config, through `engine.models.build_adapter`) answers; it is called once per distinct question
(a cache), never per trace, so 10 million traces cost a few thousand model calls. Latency, tokens and cost,
feedback (ratings, thumbs, tickets, behavioural signals, corrections carrying the golden answer) and business
events (signup, conversion, revenue, cancellation, churn) follow from whether the answer was right.

Declared scenario knobs (conf/simulate/default.yaml): a drift from `drift.start_day` (topic mix shift, longer
inputs, a new product-feature topic) and a failure mode from `failure.start_day` (the model's answers on one
topic are replaced by a wrong one: the feedback on those turns negative and carries corrections).

Output: the formats `flywheel ingest` reads: traces.jsonl, feedback.jsonl, events.jsonl and, for a fraction of
the traces, traces_otlp.jsonl (OTel GenAI spans as OTLP/JSON with their feedback as span events). Generation is
streamed day by day: memory does not grow with the number of traces. Same seed, same bytes.
"""
from __future__ import annotations

import json
import re
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, TextIO

import numpy as np

from engine.models import ModelRequest, build_adapter, fingerprint
from engine.outputs import open_atomic
from engine.paths import bundled_datasets_dir
from engine.schemas import load_schema
from engine.specs import with_defaults

AREAS = ("billing", "account", "policy", "integrations", "troubleshooting", "scheduling")
CHANNELS = (("web", 0.55), ("mobile", 0.3), ("email", 0.1), ("api", 0.05))
LOCALES = (("en-US", 0.6), ("en-GB", 0.15), ("de-DE", 0.1), ("fr-FR", 0.1), ("es-ES", 0.05))

# Questions the golden set does not cover: the model has no article for them.
NEW_TOPICS: dict[str, tuple[str, list[str]]] = {
    "offline_mode": ("troubleshooting", ["Does the mobile app work offline?", "Can I clock in without internet?",
                                         "what happens to my shifts when my phone is offline"]),
    "gift_cards": ("billing", ["Can I pay for Tidepool with a gift card?", "do you sell gift cards",
                               "Is there a referral credit if I invite another company?"]),
    "dark_mode": ("account", ["How do I turn on dark mode?", "Is there a dark theme on the web app?"]),
    "tip_pooling": ("policy", ["Does Tidepool handle tip pooling?", "How are tips split between servers?"]),
    "shift_bidding": ("scheduling", ["Can employees bid on shifts by seniority?",
                                     "Is there shift bidding for nurses?"]),
}
# The product feature launched at drift.start_day.
FEATURE_QUESTIONS = [
    "How do I turn on the new AI shift assistant?", "Why did the AI assistant move my shift?",
    "Can I stop the AI assistant from auto-filling open shifts?", "Is the AI shift assistant included in Pro?",
    "The AI assistant suggested a schedule that breaks our rest rules, why?",
    "who can see the AI assistant's suggestions",
]
_PREFIXES = ["", "Hi, ", "Hello! ", "Quick question: ", "hey - "]
_SUFFIXES = ["", " Thanks!", " thx", " Please help.", ""]
_CONTEXT = [  # longer inputs after the drift: users paste their situation first
    "I manage a 40-person restaurant team across two locations and we just moved from spreadsheets. ",
    "Our HR lead is on leave and I am covering the admin work this month, so bear with me. ",
    "We are a small clinic with rotating night shifts and a lot of part-time staff. ",
    "I already read the help center article twice and I am still confused. ",
]
CORRECTNESS_NORMALIZE = re.compile(r"[^a-z0-9$%>]+")


@dataclass(frozen=True)
class Question:
    text: str
    topic: str  # the area: billing, account, ... (attributes.topic)
    intent: str  # the fine-grained subject (golden metadata.topic or the new topic name)
    expected: str | None  # the golden answer, when the question paraphrases a golden case
    case_id: str | None
    feature: str | None = None
    new: bool = False


@dataclass
class Answer:
    output: str | None
    correct: bool
    prompt_tokens: int
    completion_tokens: int
    cost: float
    error: str | None = None


@dataclass
class Counts:
    sessions: int = 0
    traces: int = 0
    otlp_spans: int = 0
    feedback: int = 0
    events: int = 0
    users: int = 0
    by_day: list[dict] = field(default_factory=list)


def _norm(text: str) -> str:
    return CORRECTNESS_NORMALIZE.sub(" ", text.lower()).strip()


def is_correct(output: str | None, expected: str | None) -> bool:
    """The answer contains the golden answer (normalised); questions without one count as wrong."""
    if not output or not expected:
        return False
    return _norm(expected) in _norm(output)


def paraphrases(text: str, n: int) -> list[str]:
    """Deterministic surface variants of a question (what users type differs; the ask does not)."""
    base = text.strip()
    variants = [base]
    lowered = base[0].lower() + base[1:]
    for prefix, suffix in zip(_PREFIXES[1:], _SUFFIXES[1:]):
        variants.append(f"{prefix}{lowered if prefix else base}{suffix}")
    variants.append(base.rstrip("?").lower())
    variants.append(base.replace("How do I", "How can I").replace("Can I", "Is it possible to"))
    out: list[str] = []
    for v in variants:
        if v not in out:
            out.append(v)
    return out[:n]


def load_questions(paraphrases_per_case: int) -> tuple[list[Question], list[Question], list[Question]]:
    """(known: golden paraphrases, new: uncovered topics, feature: the product feature from the drift)."""
    known = []
    with open(bundled_datasets_dir() / "support" / "golden_qa.jsonl", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            case = json.loads(line)
            if not isinstance(case.get("input"), str) or not isinstance(case.get("expected"), str):
                continue
            area = (case.get("tags") or ["other"])[0]
            intent = (case.get("metadata") or {}).get("topic", area)
            for text in paraphrases(case["input"], paraphrases_per_case):
                known.append(Question(text, area, intent, case["expected"], case["id"]))
    new = [Question(text, area, name, None, None, new=True)
           for name, (area, texts) in NEW_TOPICS.items() for base in texts for text in paraphrases(base, 3)]
    feature = [Question(text, "product", "ai_assistant", None, None, feature="ai_assistant", new=True)
               for base in FEATURE_QUESTIONS for text in paraphrases(base, 3)]
    return known, new, feature


class Simulator:
    """Streams one scenario into files. `spec` is the simulate config block; `model_spec` a model config."""

    def __init__(self, spec: dict, model_spec: dict, project_dir: Path,
                 on_day: Callable[[int, Counts], None] | None = None):
        self.spec = with_defaults(load_schema("simulate"), spec)  # defaults: schemas/simulate.schema.json
        self.model_spec = model_spec
        self.project_dir = project_dir
        self.on_day = on_day or (lambda day, counts: None)
        self.rng = np.random.Generator(np.random.PCG64(int(spec["seed"])))
        self.known, self.new, self.feature = load_questions(int(self.spec["paraphrases"]))
        self.adapter = build_adapter(model_spec, project_dir)
        self.model_fingerprint = fingerprint(self.adapter)
        self.cache: dict[str, Answer] = {}
        self.model_calls = 0
        self.counts = Counts()
        self.user_state: dict[int, dict] = {}
        start = spec.get("start_date") or "2025-03-01"
        self.start = date.fromisoformat(str(start))

    # ---------------------------------------------------------------------------- the model, cached
    def answers(self, questions: list[Question]) -> list[Answer]:
        todo = list(dict.fromkeys(q.text for q in questions if q.text not in self.cache))
        batch = int(self.spec["model_batch_size"])
        for i in range(0, len(todo), batch):
            texts = todo[i:i + batch]
            requests = [ModelRequest(case_id=f"sim-{len(self.cache) + j}", input=t, input_text=t)
                        for j, t in enumerate(texts)]
            responses = self.adapter.predict_batch(requests)
            self.model_calls += len(requests)
            for text, r in zip(texts, responses):
                self.cache[text] = Answer(r.output_text, False, int(r.prompt_tokens or len(text.split())),
                                          int(r.completion_tokens or len((r.output_text or "").split())),
                                          float(r.cost or 0.0), r.error)
        by_text = {q.text: q for q in questions}
        for text, q in by_text.items():
            a = self.cache[text]
            a.correct = is_correct(a.output, q.expected)
        return [self.cache[q.text] for q in questions]

    # ---------------------------------------------------------------------------- the scenario
    def _mix(self, day: int) -> tuple[list[Question], np.ndarray]:
        """Every question that can be asked on `day`, with its probability."""
        drift = self.spec.get("drift") or {}
        drifted = drift.get("start_day") is not None and day >= int(drift["start_day"])
        shift = {k: float(v) for k, v in (drift.get("topic_shift") or {}).items()} if drifted else {}
        pool = self.known + self.new
        weights = np.array([shift.get(q.topic, 1.0) for q in self.known] +
                           [shift.get(q.topic, 1.0) for q in self.new], dtype=float)
        new_share = float(self.spec["new_topic_share"])
        n_known = len(self.known)
        weights[:n_known] *= (1 - new_share) / weights[:n_known].sum()
        weights[n_known:] *= new_share / weights[n_known:].sum()
        if drifted and drift.get("new_feature_topic"):
            share = float(drift["new_feature_share"])
            weights *= 1 - share
            pool = pool + self.feature
            weights = np.concatenate([weights, np.full(len(self.feature), share / len(self.feature))])
        return pool, weights / weights.sum()

    def _failing(self, day: int, q: Question) -> bool:
        failure = self.spec.get("failure") or {}
        return (failure.get("start_day") is not None and day >= int(failure["start_day"])
                and q.topic == failure.get("topic"))

    def run(self, out_dir: Path) -> dict:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {name: out_dir / f"{name}.jsonl" for name in ("traces", "traces_otlp", "feedback", "events")}
        with ExitStack() as stack:  # each file is published (renamed into place) only if the run completes
            files = {name: stack.enter_context(open_atomic(p, newline="\n")) for name, p in paths.items()}
            for day in range(int(self.spec["days"])):
                self._day(day, files)
                self.on_day(day, self.counts)
                limit = self.spec.get("max_traces")
                if limit and self.counts.traces >= int(limit):
                    break
        return {name: str(p) for name, p in paths.items()}

    def _day(self, day: int, files: dict[str, TextIO]) -> None:
        rng = self.rng
        spec = self.spec
        pool, probs = self._mix(day)
        n_sessions = int(rng.poisson(float(spec["sessions_per_day"])))
        turns_lo, turns_hi = (spec.get("turns_per_session") or [1, 4])
        turns = rng.integers(int(turns_lo), int(turns_hi) + 1, size=n_sessions)
        n = int(turns.sum())
        picks = rng.choice(len(pool), size=n, p=probs)
        drift = spec.get("drift") or {}
        long_inputs = bool(drift.get("longer_inputs")) and drift.get("start_day") is not None \
            and day >= int(drift["start_day"])
        context_pick = rng.integers(0, len(_CONTEXT), size=n)
        questions = [pool[i] for i in picks]
        if long_inputs:  # users paste their situation first: a longer, different input for the model
            questions = [Question(_CONTEXT[int(c)] + q.text, q.topic, q.intent, q.expected, q.case_id, q.feature, q.new)
                         for q, c in zip(questions, context_pick)]
        answers = self.answers(questions)
        day_start = datetime.combine(self.start + timedelta(days=day), datetime.min.time(), tzinfo=timezone.utc)
        session_starts = np.sort(rng.integers(0, 86_400 - 1_800, size=n_sessions))
        users = rng.integers(0, int(spec["users"]), size=n_sessions)
        channels = rng.choice(len(CHANNELS), size=n_sessions, p=[w for _, w in CHANNELS])
        locales = rng.choice(len(LOCALES), size=n_sessions, p=[w for _, w in LOCALES])
        otlp = rng.random(size=n) < float(spec["otlp_fraction"])
        noise = rng.lognormal(mean=0.0, sigma=0.35, size=n)
        gaps = rng.integers(5, 240, size=n)
        fb_roll = rng.random(size=(n, 6))
        error_roll = rng.random(size=n)
        failure = spec.get("failure") or {}
        wrong = str(failure["wrong_answer"])
        model_name = self.model_spec["name"]
        spans: list[dict] = []
        day_counts = {"day": day, "date": (self.start + timedelta(days=day)).isoformat(), "traces": 0,
                      "by_topic": {}}
        k = 0
        for s in range(n_sessions):
            self.counts.sessions += 1
            user = int(users[s])
            state = self.user_state.get(user)
            session_id = f"se-{self.counts.sessions:09d}"
            user_id = f"user-{user:06d}"
            t = day_start + timedelta(seconds=int(session_starts[s]))
            if state is None:
                state = {"plan": "trial", "good": 0, "bad": 0, "seats": int(rng.integers(3, 60))}
                self.user_state[user] = state
                self.counts.users += 1
                self._event(files, "signup", user_id, session_id, None, t, None, {"plan": "trial"})
            if state["plan"] == "churned":
                continue
            for _ in range(int(turns[s])):
                q, a = questions[k], answers[k]
                self.counts.traces += 1
                idx = self.counts.traces
                text = q.text
                output, correct, error = a.output, a.correct, a.error
                if self._failing(day, q):
                    output, correct = wrong, False
                if error_roll[k] < float(spec["error_rate"]):
                    output, correct, error = None, False, "upstream timeout after 30000 ms"
                latency = round(float(180 + 9 * a.completion_tokens + 0.4 * a.prompt_tokens) * float(noise[k]), 1)
                attrs = {"topic": q.topic, "intent": q.intent, "channel": CHANNELS[int(channels[s])][0],
                         "locale": LOCALES[int(locales[s])][0]}
                if q.feature:
                    attrs["feature"] = q.feature
                day_counts["traces"] += 1
                day_counts["by_topic"][q.topic] = day_counts["by_topic"].get(q.topic, 0) + 1
                if otlp[k]:
                    trace_hex, span_hex = f"{idx:032x}", f"{idx:016x}"
                    trace_id = trace_hex  # ingest stores an OTel trace under its trace id (engine/ingest/otel.py)
                else:
                    trace_id = f"tr-{idx:010d}"
                record = {"trace_id": trace_id, "session_id": session_id, "user_id": user_id,
                          "timestamp": _iso(t), "model": model_name, "model_version": self.model_fingerprint,
                          "input": text, "output": output, "latency_ms": latency,
                          "prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens,
                          "cost": round(a.cost, 8), "attributes": attrs}
                if error:
                    record["error"] = error
                feedback = self._feedback(q, correct, error, fb_roll[k], trace_id, session_id, user_id,
                                          t + timedelta(seconds=int(gaps[k]) // 2), idx)
                state["good" if correct else "bad"] += 1
                if otlp[k]:
                    spans.append(_span(record, trace_hex, span_hex, feedback))
                    self.counts.otlp_spans += 1
                    if len(spans) >= 500:  # one OTLP export request per line, of bounded size
                        _write_spans(files["traces_otlp"], spans)
                        spans = []
                else:
                    files["traces"].write(json.dumps(record, ensure_ascii=False) + "\n")
                    for fb in feedback:
                        files["feedback"].write(json.dumps(fb, ensure_ascii=False) + "\n")
                self.counts.feedback += len(feedback)
                t += timedelta(seconds=int(gaps[k]))
                k += 1
            self._business(files, state, user_id, session_id, t)
        if spans:
            _write_spans(files["traces_otlp"], spans)
        self.counts.by_day.append(day_counts)

    def _feedback(self, q: Question, correct: bool, error: str | None, roll: np.ndarray, trace_id: str,
                  session_id: str, user_id: str, t: datetime, idx: int) -> list[dict]:
        fb_spec = self.spec.get("feedback") or {}
        out: list[dict] = []
        base = {"trace_id": trace_id, "session_id": session_id, "user_id": user_id, "timestamp": _iso(t)}

        def add(kind: str, **values: Any) -> None:
            out.append({"feedback_id": f"fb-{idx:010d}-{len(out) + 1}", **base, "kind": kind, **values})

        if roll[0] < float(fb_spec["thumbs_rate"]):
            good = correct if roll[1] > 0.08 else not correct  # people misclick
            add("thumbs", thumbs="up" if good else "down")
        if roll[2] < float(fb_spec["rating_rate"]):
            rating = int(np.clip(round((4.6 if correct else 1.7) + (roll[3] - 0.5) * 2), 1, 5))
            add("rating", rating=rating)
        if not correct:
            if q.expected and roll[4] < float(fb_spec["correction_rate"]):
                add("correction", correction=q.expected, comment="the right answer, from a support agent")
            elif roll[4] > 1 - float(fb_spec["ticket_rate"]):
                add("ticket", ticket_id=f"tk-{idx:010d}", comment=(error or "the assistant's answer was wrong"))
            if roll[5] < 0.3:
                add("behavior", signal="rephrased")
        elif roll[5] < 0.15:
            add("behavior", signal="copied_answer")
        return out

    def _business(self, files: dict[str, TextIO], state: dict, user_id: str, session_id: str, t: datetime) -> None:
        ev = self.spec.get("events") or {}
        rng = self.rng
        total = state["good"] + state["bad"]
        bad_ratio = state["bad"] / total if total else 0.0
        roll = rng.random(size=2)
        price = float(ev["price_per_seat"])
        if state["plan"] == "trial" and roll[0] < float(ev["conversion_rate"]) * (1.5 - bad_ratio):
            state["plan"] = "paid"
            amount = round(price * state["seats"], 2)
            self._event(files, "conversion", user_id, session_id, None, t, None, {"plan": "pro", "seats": state["seats"]})
            self._event(files, "revenue", user_id, session_id, amount, t, "USD", {"plan": "pro"})
        elif state["plan"] == "paid" and roll[1] < float(ev["churn_rate"]) * (0.5 + 3 * bad_ratio):
            state["plan"] = "churned"
            self._event(files, "cancellation", user_id, session_id, None, t, None,
                        {"reason": "answers were wrong" if bad_ratio > 0.3 else "price"})
            self._event(files, "churn", user_id, None, None, t + timedelta(days=1), None, None)

    def _event(self, files: dict[str, TextIO], type_: str, user_id: str, session_id: str | None, amount: float | None,
               t: datetime, currency: str | None, attributes: dict | None) -> None:
        self.counts.events += 1
        record: dict[str, Any] = {"event_id": f"ev-{self.counts.events:010d}", "user_id": user_id,
                                  "timestamp": _iso(t), "type": type_}
        if session_id:
            record["session_id"] = session_id
        if amount is not None:
            record["amount"] = amount
            record["currency"] = currency
        if attributes:
            record["attributes"] = attributes
        files["events"].write(json.dumps(record, ensure_ascii=False) + "\n")


def _write_spans(f: TextIO, spans: list[dict]) -> None:
    request = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "tidepool-support"}}]},
        "scopeSpans": [{"scope": {"name": "flywheel.simulate"}, "spans": spans}]}]}
    f.write(json.dumps(request, ensure_ascii=False) + "\n")


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _nanos(ts: str) -> str:
    t = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return str(int(t.timestamp()) * 1_000_000_000)


def _attr(key: str, value: Any) -> dict:
    if isinstance(value, bool):
        v = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, float):
        v = {"doubleValue": value}
    else:
        v = {"stringValue": str(value)}
    return {"key": key, "value": v}


def _span(record: dict, trace_hex: str, span_hex: str, feedback: list[dict]) -> dict:
    """A trace as an OTel GenAI span (semantic conventions), its feedback as gen_ai.user.feedback events."""
    start = int(_nanos(record["timestamp"]))
    end = start + int(record["latency_ms"] * 1_000_000)
    attrs = [_attr("gen_ai.operation.name", "chat"), _attr("gen_ai.provider.name", "flywheel.demo"),
             _attr("gen_ai.request.model", record["model"]), _attr("gen_ai.response.model", record["model_version"]),
             _attr("gen_ai.conversation.id", record["session_id"]), _attr("user.id", record["user_id"]),
             _attr("gen_ai.input.messages", json.dumps(
                 [{"role": "user", "parts": [{"type": "text", "content": record["input"]}]}], ensure_ascii=False)),
             _attr("gen_ai.usage.input_tokens", record["prompt_tokens"]),
             _attr("gen_ai.usage.output_tokens", record["completion_tokens"]),
             _attr("gen_ai.usage.cost", float(record["cost"]))]
    if record["output"] is not None:
        attrs.append(_attr("gen_ai.output.messages", json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": record["output"]}], "finish_reason": "stop"}],
            ensure_ascii=False)))
    attrs += [_attr(f"app.{k}", v) for k, v in record["attributes"].items()]
    events = []
    for fb in feedback:
        ev = [_attr("feedback.id", fb["feedback_id"]), _attr("feedback.kind", fb["kind"])]
        ev += [_attr(f"feedback.{k}", fb[k]) for k in ("rating", "thumbs", "signal", "correction", "comment",
                                                       "ticket_id") if k in fb]
        events.append({"timeUnixNano": _nanos(fb["timestamp"]), "name": "gen_ai.user.feedback", "attributes": ev})
    span = {"traceId": trace_hex, "spanId": span_hex, "name": f"chat {record['model']}", "kind": 3,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(end), "attributes": attrs, "events": events,
            "status": {"code": 2, "message": record["error"]} if record.get("error") else {"code": 0}}
    return span
