"""The three attribute layouts GenAI instrumentations write on OpenTelemetry spans, read into one shape.

    otel_genai           the OTel GenAI semantic conventions as they are now: gen_ai.operation.name,
                         gen_ai.input.messages / gen_ai.output.messages (JSON, or the gen_ai.user.message /
                         gen_ai.choice span events of earlier releases), gen_ai.usage.input_tokens/output_tokens
                         (opentelemetry-instrumentation-openai-v2, OpenLLMetry >= 0.4x)
    otel_genai_indexed   the older indexed attributes of OpenLLMetry/Traceloop: gen_ai.prompt.N.role/.content,
                         gen_ai.completion.N.role/.content, llm.request.type, gen_ai.usage.prompt_tokens/
                         completion_tokens, traceloop.association.properties.session_id/user_id
    openinference        OpenInference (Arize Phoenix): openinference.span.kind, llm.input_messages.N.message.role/
                         .content (or .contents.M.message_content.text), llm.output_messages..., input.value,
                         output.value, llm.model_name, llm.token_count.prompt/completion, llm.cost.total,
                         session.id, user.id

`read_span` tells for one span which layout it is in, what it is (a model call, an agent invocation, something
else) and the fields a trace record needs. It does not choose which span of a trace is the answer: otel.py does.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

LAYOUTS = ("otel_genai", "otel_genai_indexed", "openinference")

LLM, AGENT, OTHER = "llm", "agent", "other"  # what a span is; None: not recognisably GenAI at all
LLM_OPERATIONS = {"chat", "text_completion", "generate_content", "completion", "responses"}
AGENT_OPERATIONS = {"invoke_agent"}
OPENINFERENCE_KINDS = {"LLM": LLM, "AGENT": AGENT}  # CHAIN, TOOL, RETRIEVER, EMBEDDING, RERANKER, ...: OTHER

_INDEXED = re.compile(r"^gen_ai\.(prompt|completion)\.(\d+)\.(\w+)$")
_OI_MESSAGE = re.compile(r"^llm\.(input|output)_messages\.(\d+)\.message\.(role|content|contents\.(\d+)\."
                         r"message_content\.(type|text))$")
# Attributes that say "some GenAI library wrote this span" even when no layout above can be read from it.
_GENAI_HINT = re.compile(r"^(gen_ai|llm|ai|openinference|traceloop)\.")


@dataclass
class SpanFacts:
    layout: str | None  # one of LAYOUTS; None when the span is in no known GenAI layout
    role: str | None  # LLM | AGENT | OTHER; None: not a GenAI span
    what: str = ""  # the operation or span kind as written (chat, invoke_agent, CHAIN, execute_tool ...)
    model: str | None = None
    model_version: str | None = None
    input: str | None = None
    output: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    session_id: str | None = None
    user_id: str | None = None
    provider: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def looks_like_model_call(self) -> bool:
        return self.role in (LLM, AGENT)


def read_span(attrs: dict[str, Any], events: list[dict], event_attrs) -> SpanFacts:
    """The facts of one span from its attributes (a flat dict) and events (`event_attrs(event)` -> dict)."""
    if "openinference.span.kind" in attrs or any(k.startswith(("llm.input_messages.", "llm.output_messages."))
                                                  for k in attrs):
        return _openinference(attrs)
    if "llm.request.type" in attrs or any(_INDEXED.match(k) for k in attrs):
        return _indexed(attrs)
    if "gen_ai.operation.name" in attrs or "gen_ai.request.model" in attrs or "gen_ai.input.messages" in attrs:
        return _current(attrs, events, event_attrs)
    return SpanFacts(None, None)


def genai_hint(attrs: dict[str, Any], name: str) -> bool:
    """A span no layout reads, but whose attributes or name say a GenAI library wrote it (counted, not dropped)."""
    return any(_GENAI_HINT.match(k) for k in attrs) or bool(re.search(r"\b(chat|completion|llm)\b", name.lower()))


# -- the current OTel GenAI layout ------------------------------------------------------------------------------

def _current(attrs: dict, events: list[dict], event_attrs) -> SpanFacts:
    operation = attrs.get("gen_ai.operation.name")
    if operation in AGENT_OPERATIONS:
        role = AGENT
    elif operation is None or operation in LLM_OPERATIONS:
        role = LLM if "gen_ai.request.model" in attrs or operation else OTHER
    else:
        role = OTHER  # execute_tool, embeddings, create_agent ...
    facts = SpanFacts("otel_genai", role, str(operation or "chat"))
    facts.model = _str(attrs.get("gen_ai.request.model", attrs.get("gen_ai.response.model")))
    facts.model_version = _str(attrs.get("gen_ai.response.model"))
    facts.input = _current_input(attrs, events, event_attrs)
    facts.output = _current_output(attrs, events, event_attrs)
    facts.prompt_tokens = _int(attrs.get("gen_ai.usage.input_tokens", attrs.get("gen_ai.usage.prompt_tokens")))
    facts.completion_tokens = _int(attrs.get("gen_ai.usage.output_tokens",
                                             attrs.get("gen_ai.usage.completion_tokens")))
    facts.cost = _float(attrs.get("gen_ai.usage.cost"))  # not a convention: the simulator and some proxies
    facts.session_id = _str(attrs.get("gen_ai.conversation.id", attrs.get("session.id")))
    facts.user_id = _str(attrs.get("user.id", attrs.get("enduser.id")))
    facts.provider = _str(attrs.get("gen_ai.provider.name", attrs.get("gen_ai.system")))
    return facts


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


def _current_input(attrs: dict, events: list[dict], event_attrs) -> str | None:
    user = [m for m in _messages(attrs.get("gen_ai.input.messages")) if isinstance(m, dict) and m.get("role") == "user"]
    if user:
        return _message_text(user[-1])
    if isinstance(attrs.get("gen_ai.prompt"), str):
        return attrs["gen_ai.prompt"]
    for event in reversed(events):
        if event.get("name") == "gen_ai.user.message":
            content = event_attrs(event).get("content")
            if isinstance(content, str):
                return content
    return None


def _current_output(attrs: dict, events: list[dict], event_attrs) -> str | None:
    messages = _messages(attrs.get("gen_ai.output.messages"))
    if messages:
        return "\n".join(_message_text(m) for m in messages)
    if isinstance(attrs.get("gen_ai.completion"), str):
        return attrs["gen_ai.completion"]
    for event in events:
        if event.get("name") == "gen_ai.choice":
            message = event_attrs(event).get("message")
            if isinstance(message, dict):
                return _message_text(message)
    return None


# -- the indexed layout (OpenLLMetry / Traceloop before the current conventions) --------------------------------

def _indexed(attrs: dict) -> SpanFacts:
    request_type = attrs.get("llm.request.type")
    prompts: dict[int, dict] = {}
    completions: dict[int, dict] = {}
    for key, value in attrs.items():
        m = _INDEXED.match(key)
        if m:
            (prompts if m.group(1) == "prompt" else completions).setdefault(int(m.group(2)), {})[m.group(3)] = value
    if request_type in ("embedding", "rerank"):
        role = OTHER
    else:
        role = LLM if prompts or completions or request_type in ("chat", "completion") else OTHER
    facts = SpanFacts("otel_genai_indexed", role, str(request_type or "chat"))
    facts.model = _str(attrs.get("gen_ai.request.model", attrs.get("llm.request.model",
                                                                    attrs.get("gen_ai.response.model"))))
    facts.model_version = _str(attrs.get("gen_ai.response.model", attrs.get("llm.response.model")))
    users = [p for _, p in sorted(prompts.items()) if p.get("role", "user") == "user"]
    facts.input = _str(users[-1].get("content")) if users else None
    answers = [c.get("content") for _, c in sorted(completions.items())
               if c.get("role", "assistant") == "assistant" and isinstance(c.get("content"), str)]
    facts.output = "\n".join(answers) if answers else None
    facts.prompt_tokens = _int(attrs.get("gen_ai.usage.prompt_tokens", attrs.get("gen_ai.usage.input_tokens")))
    facts.completion_tokens = _int(attrs.get("gen_ai.usage.completion_tokens",
                                             attrs.get("gen_ai.usage.output_tokens")))
    facts.cost = _float(attrs.get("gen_ai.usage.cost"))
    facts.session_id = _str(attrs.get("traceloop.association.properties.session_id", attrs.get("session.id")))
    facts.user_id = _str(attrs.get("traceloop.association.properties.user_id", attrs.get("user.id")))
    facts.provider = _str(attrs.get("gen_ai.system", attrs.get("gen_ai.provider.name")))
    return facts


# -- OpenInference (Arize Phoenix) ---------------------------------------------------------------------------

def _openinference(attrs: dict) -> SpanFacts:
    kind = str(attrs.get("openinference.span.kind") or "LLM").upper()
    facts = SpanFacts("openinference", OPENINFERENCE_KINDS.get(kind, OTHER), kind)
    messages: dict[tuple[str, int], dict] = {}
    for key, value in attrs.items():
        m = _OI_MESSAGE.match(key)
        if not m:
            continue
        message = messages.setdefault((m.group(1), int(m.group(2))), {"parts": {}})
        if m.group(3) in ("role", "content"):
            message[m.group(3)] = value
        elif m.group(5) == "text":
            message["parts"][int(m.group(4))] = value
    inputs = [_oi_message(messages[k]) for k in sorted(k for k in messages if k[0] == "input")]
    outputs = [_oi_message(messages[k]) for k in sorted(k for k in messages if k[0] == "output")]
    users = [text for role, text in inputs if role == "user" and text is not None]
    answers = [text for role, text in outputs if role in ("assistant", "model", None) and text is not None]
    facts.input = users[-1] if users else _value_text(attrs, "input")
    facts.output = "\n".join(answers) if answers else _value_text(attrs, "output")
    invocation = _json_object(attrs.get("llm.invocation_parameters"))
    # the model asked for, as in the other layouts (llm.model_name is the one that answered, when known)
    facts.model = _str(attrs.get("llm.request.model_name", invocation.get("model", attrs.get("llm.model_name"))))
    facts.model_version = _str(attrs.get("llm.response.model_name", attrs.get("llm.model_name")))
    facts.prompt_tokens = _int(attrs.get("llm.token_count.prompt"))
    facts.completion_tokens = _int(attrs.get("llm.token_count.completion"))
    facts.cost = _float(attrs.get("llm.cost.total"))
    facts.session_id = _str(attrs.get("session.id"))
    facts.user_id = _str(attrs.get("user.id"))
    facts.provider = _str(attrs.get("llm.provider", attrs.get("llm.system")))
    return facts


def _oi_message(message: dict) -> tuple[str | None, str | None]:
    text = message.get("content")
    if not isinstance(text, str) and message["parts"]:
        text = "\n".join(str(t) for _, t in sorted(message["parts"].items()) if isinstance(t, str))
    return _str(message.get("role")), text if isinstance(text, str) else None


def _value_text(attrs: dict, which: str) -> str | None:
    """input.value / output.value: plain text as it is; a JSON chat request or completion read for its text."""
    value = attrs.get(f"{which}.value")
    if not isinstance(value, str):
        return None
    if attrs.get(f"{which}.mime_type") != "application/json":
        return value
    doc = _json_object(value)
    if which == "input" and isinstance(doc.get("messages"), list):
        users = [m.get("content") for m in doc["messages"] if isinstance(m, dict) and m.get("role") == "user"
                 and isinstance(m.get("content"), str)]
        return users[-1] if users else None
    if which == "output" and isinstance(doc.get("choices"), list):
        texts = [c.get("message", {}).get("content") for c in doc["choices"] if isinstance(c, dict)]
        texts = [t for t in texts if isinstance(t, str)]
        return "\n".join(texts) if texts else None
    return value


# -- values ---------------------------------------------------------------------------------------------------

def _json_object(value: Any) -> dict:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            doc = json.loads(value)
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}
    return {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None
