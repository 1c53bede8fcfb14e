"""A model's trajectory: what an agent did to reach its final answer, one step at a time.

A python model (or the chat_completions tool loop) returns, beside its final `output`, a `trajectory`: a list of
steps, each either
  {"type": "tool_call", "name": str, "arguments": {...}, "result": any JSON, "error": str | null,
   "latency_ms": number | null, "id": str | null}
  {"type": "message", "role": "assistant" | "user" | "tool" | "system", "content": str}
`normalize` checks it (a malformed trajectory makes the case an errored case, never a silently empty one) and
it is kept in the output's `raw` JSON, so it is cached with the output. `engine/agents/steps.py` unrolls it
into `trajectory_steps` rows, with the final answer as the last step.
"""
from __future__ import annotations

import math
from typing import Any

MESSAGE_ROLES = ("assistant", "user", "tool", "system")
_TOOL_KEYS = {"type", "name", "arguments", "result", "error", "latency_ms", "id"}
_MESSAGE_KEYS = {"type", "role", "content"}


class TrajectoryError(ValueError):
    """The model returned a trajectory that is not a list of well-formed steps."""


def _finite_json(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise TrajectoryError(f"{where}: {value} is not a JSON number")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TrajectoryError(f"{where}: key {k!r} is not a string")
            _finite_json(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _finite_json(v, f"{where}[{i}]")
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise TrajectoryError(f"{where}: {type(value).__name__} is not JSON")


def _tool_call(step: dict, where: str) -> dict:
    unknown = set(step) - _TOOL_KEYS
    if unknown:
        raise TrajectoryError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (allowed: "
                              f"{', '.join(sorted(_TOOL_KEYS))})")
    name = step.get("name")
    if not isinstance(name, str) or not name:
        raise TrajectoryError(f"{where}.name: a tool call needs the tool's name")
    arguments = step.get("arguments", {})
    if not isinstance(arguments, dict):
        raise TrajectoryError(f"{where}.arguments: must be an object, not {type(arguments).__name__}")
    _finite_json(arguments, f"{where}.arguments")
    _finite_json(step.get("result"), f"{where}.result")
    error, latency, call_id = step.get("error"), step.get("latency_ms"), step.get("id")
    if error is not None and not isinstance(error, str):
        raise TrajectoryError(f"{where}.error: must be text or null")
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, (int, float))
                                or not math.isfinite(latency) or latency < 0):
        raise TrajectoryError(f"{where}.latency_ms: must be a non-negative number or null")
    if call_id is not None and not isinstance(call_id, str):
        raise TrajectoryError(f"{where}.id: must be text or null")
    return {"type": "tool_call", "name": name, "arguments": arguments, "result": step.get("result"),
            "error": error or None, "latency_ms": None if latency is None else float(latency), "id": call_id}


def _message(step: dict, where: str) -> dict:
    unknown = set(step) - _MESSAGE_KEYS
    if unknown:
        raise TrajectoryError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (allowed: role, content)")
    if step.get("role") not in MESSAGE_ROLES:
        raise TrajectoryError(f"{where}.role: must be one of {', '.join(MESSAGE_ROLES)}")
    if not isinstance(step.get("content"), str):
        raise TrajectoryError(f"{where}.content: must be text")
    return {"type": "message", "role": step["role"], "content": step["content"]}


def normalize(trajectory: Any) -> list[dict]:
    """The trajectory as stored: every step checked and given all its keys. Raises TrajectoryError."""
    if not isinstance(trajectory, (list, tuple)):
        raise TrajectoryError(f"trajectory must be a list of steps, not {type(trajectory).__name__}")
    out = []
    for i, step in enumerate(trajectory):
        where = f"trajectory[{i}]"
        if not isinstance(step, dict):
            raise TrajectoryError(f"{where}: a step is an object, not {type(step).__name__}")
        kind = step.get("type")
        if kind == "tool_call":
            out.append(_tool_call(step, where))
        elif kind == "message":
            out.append(_message(step, where))
        else:
            raise TrajectoryError(f"{where}.type: must be 'tool_call' or 'message', not {kind!r}")
    return out
