"""The chat_completions adapter's tool loop: an OpenAI-compatible model that calls tools, bounded by `max_steps`.

Tools are declared in the model config and implemented by Python callables (`_target_`), each called with the
model's arguments as keyword arguments and returning a JSON-serialisable result (an exception is the call's
error, which the model sees and may recover from):

    adapter: chat_completions
    params:
      base_url: http://localhost:8000/v1
      model: my-agent
      max_steps: 6              # model turns; a loop still calling tools after that is an errored case
      tools:
        lookup_order:
          _target_: engine.demo_models.agent_tools.lookup_order
          description: Look an order up by its id
          parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}

Each turn posts the conversation with `tools` (OpenAI function tools); a reply with `message.tool_calls` has
every call run and answered with a `role: tool` message (by `tool_call_id`), a reply without them is the final
answer. The recorded trajectory (engine/agents/trajectory.py) is kept with the output, so the whole loop is
cached like any output (by model fingerprint, which includes the tools, and input). Each turn is also cached as
soon as it is answered (engine/agents/turn_cache.py): a re-run re-plays the turns already answered without
calling the endpoint, and an interrupted loop resumes where it stopped. Tools are run again on a re-play (they
are local code; their results are part of the conversation that keys the next turn).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from engine.errors import UserError
from engine.models.base import ModelResponse
from engine.models.spec import params_schema
from engine.specs import with_defaults

# One declared tool of a chat_completions agent (`params.tools.<name>`), with its defaults.
TOOL_SCHEMA = params_schema("chat_completions")["properties"]["tools"]["additionalProperties"]


@dataclass(frozen=True)
class Tool:
    name: str
    target: str
    description: str
    parameters: dict
    fn: Callable[..., Any]

    def declaration(self) -> dict:
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}

    def fingerprint(self) -> dict:
        return {"name": self.name, "target": self.target, "description": self.description,
                "parameters": self.parameters}


def build_tools(model: str, tools: dict, project_dir) -> list[Tool]:
    """The declared tools with their callables imported; a bad declaration is the user's error, named."""
    from engine.models.importing import ImportFailure, load_object

    if not isinstance(tools, dict):
        raise UserError(f"model '{model}': params.tools must be a mapping of tool name to its declaration")
    built = []
    for name, spec in tools.items():
        where = f"model '{model}' @ params.tools.{name}"
        if not isinstance(spec, dict) or not isinstance(spec.get("_target_"), str):
            raise UserError(f"{where}: a tool needs `_target_` (the Python callable implementing it)")
        unknown = set(spec) - {"_target_", "description", "parameters"}
        if unknown:
            raise UserError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (allowed: _target_, "
                            f"description, parameters)")
        spec = with_defaults(TOOL_SCHEMA, spec)  # description, parameters: schemas/model.schema.json
        parameters = spec["parameters"]
        if not isinstance(parameters, dict):
            raise UserError(f"{where}.parameters: must be a JSON Schema object")
        try:
            fn = load_object(spec["_target_"], Path(project_dir or Path.cwd()))
        except ImportFailure as e:
            raise UserError(f"{where}._target_: cannot import `{spec['_target_']}`: {e}") from e
        if not callable(fn):
            raise UserError(f"{where}._target_: `{spec['_target_']}` is not callable")
        built.append(Tool(name, spec["_target_"], str(spec["description"]), parameters, fn))
    return built


class _Turn:
    """One parsed model turn: the assistant message, or why the body is unusable."""

    def __init__(self, adapter):
        self.adapter = adapter
        self.message: dict | None = None
        self.usage = (0, 0)

    def parse(self, raw: bytes, latency_ms: float, attempts: int) -> ModelResponse:
        try:
            data = json.loads(raw)
            message = data["choices"][0]["message"]
            if not isinstance(message, dict):
                raise TypeError
        except (ValueError, KeyError, IndexError, TypeError):
            return ModelResponse.failed("malformed response: no choices[0].message", latency_ms)
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        self.usage = tuple(u if isinstance(u, int) and not isinstance(u, bool) else None
                           for u in (usage.get("prompt_tokens"), usage.get("completion_tokens")))
        self.message = message
        return ModelResponse(output_text="", latency_ms=latency_ms)


def _run_call(tools: dict[str, Tool], call: Any) -> tuple[dict, str]:
    """Run one requested tool call: (its trajectory step, the content of the `tool` message answering it)."""
    function = call.get("function") if isinstance(call, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    call_id = call.get("id") if isinstance(call, dict) and isinstance(call.get("id"), str) else None
    step = {"type": "tool_call", "name": name if isinstance(name, str) and name else "<missing name>",
            "arguments": {}, "result": None, "error": None, "latency_ms": None, "id": call_id}
    text = function.get("arguments", "{}") if isinstance(function, dict) else "{}"
    try:
        arguments = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        step["error"] = f"arguments are not a JSON object: {str(text)[:200]}"
    elif step["name"] not in tools:
        step["arguments"] = arguments
        step["error"] = f"unknown tool {step['name']!r} (declared: {', '.join(tools)})"
    else:
        step["arguments"] = arguments
        started = time.perf_counter()
        try:
            result = tools[step["name"]].fn(**arguments)
            json.dumps(result, allow_nan=False)
            step["result"] = result
        except Exception as e:  # the tool's failure is the call's error; the model sees it
            step["error"] = f"{type(e).__name__}: {e}"
        step["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
    content = json.dumps({"error": step["error"]} if step["error"] else step["result"], ensure_ascii=False)
    return step, content


def run_tool_loop(adapter, messages: list[dict], repeat: int = 0) -> ModelResponse:
    """Turns until the model answers without tool calls, or `max_steps` turns: the final answer with its
    trajectory, tokens and cost summed over the turns (re-played turns included: what the answer cost), latency
    the loop's wall time."""
    cache = getattr(adapter, "turn_cache", None)
    tools = {t.name: t for t in adapter.tools}
    declared = [t.declaration() for t in adapter.tools]
    messages = list(messages)
    steps: list[dict] = []
    tokens = [0, 0]
    started = time.monotonic()

    def response(output: str | None, error: str | None = None) -> ModelResponse:
        prompt, completion = tokens
        return ModelResponse(output_text=output, error=error, latency_ms=(time.monotonic() - started) * 1000,
                             prompt_tokens=prompt, completion_tokens=completion,
                             cost=adapter._cost(prompt, completion), raw={"trajectory": steps})

    for _ in range(adapter.max_steps):
        turn = _Turn(adapter)
        cached = cache.get(repeat, messages) if cache is not None else None
        if cached is not None:
            turn.message, turn.usage = cached["message"], tuple(cached.get("usage") or (None, None))
        else:
            reply = adapter.complete(messages, parse=turn.parse, tools=declared)
            if reply.error:
                return response(None, reply.error)
            if cache is not None:
                cache.put(repeat, messages, turn.message, turn.usage)
        for i, used in enumerate(turn.usage):
            tokens[i] = None if used is None or tokens[i] is None else tokens[i] + used
        message = turn.message
        calls = message.get("tool_calls") or []
        content = message.get("content")
        if not calls:
            if not isinstance(content, str):
                return response(None, "malformed response: a final message without text content")
            return response(adapter._scrub(content))
        if not isinstance(calls, list):
            return response(None, "malformed response: message.tool_calls is not a list")
        if isinstance(content, str) and content:
            steps.append({"type": "message", "role": "assistant", "content": adapter._scrub(content)})
        messages.append({"role": "assistant", "content": content, "tool_calls": calls})
        for call in calls:
            step, answer = _run_call(tools, call)
            steps.append(step)
            messages.append({"role": "tool", "tool_call_id": step["id"], "content": answer})
    return response(None, f"no final answer within max_steps={adapter.max_steps} model turns")
