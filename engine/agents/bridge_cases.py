"""A failed production agent session as a multi-turn golden case (the agent part of `flywheel bridge`).

The bridge picks failed sessions with its failure_first policies (signals such as `negative_feedback`,
`tool_error` and `forbidden_tool`, engine/bridge/sampling.py) and makes each a golden case
(engine/bridge/run.py). For an agent's trace this module adds what was recorded at ingest
(engine/agents/otel_steps.py):

    messages                         the conversation before the trace's input (`trace_conversations`), PII-redacted
                                     like the input: the case replays the session's earlier turns
    agent.forbidden_tools            the tools it called that its policy's `forbidden_tools` names: a forbidden call
                                     is its own ground truth ("must not call X"), so such a case needs no label
    metadata.production_tool_calls   the recorded calls in order (name, and error when it failed): the trajectory
                                     that failed, as context for whoever reviews or labels the case

The ground truth is the correction when the session has one, else the forbidden tools it called; a session with
neither goes to the label queue with these keys filled in, where a labeller writes `expected` and/or the expected
tool sequence (`agent.tool_calls`), imported back with `flywheel bridge import_labels=PATH`.
"""
from __future__ import annotations

import json

from engine.agents.otel_steps import production_tool_calls
from engine.backend import run_on
from engine.sql import statement
from engine.bridge.redact import redact_text


def _forbidden_by_policy(policies: dict) -> dict[str, list[str]]:
    return {name: list(p.get("forbidden_tools") or []) for name, p in (policies or {}).items()
            if isinstance(p, dict) and "forbidden_tool" in (p.get("signals") or [])}


_CONVERSATIONS = statement("agent:conversations", "SELECT trace_id, messages FROM trace_conversations "
                           "WHERE list_contains($ids, trace_id)", "the candidates' earlier turns")


def agent_parts(con, rows: list[dict], policies: dict, pii: list[str]) -> dict[str, dict]:
    """{trace id: {"messages"?, "agent"?, "tool_calls"?}} for the candidate rows that are agent sessions."""
    ids = [r["trace_id"] for r in rows]
    if not ids:
        return {}
    calls = production_tool_calls(con, ids)
    turns = {r["trace_id"]: json.loads(r["messages"]) for r in run_on(con, _CONVERSATIONS, {"ids": ids})}
    forbidden = _forbidden_by_policy(policies)
    out: dict[str, dict] = {}
    for row in rows:
        trace_id = row["trace_id"]
        part: dict = {}
        if turns.get(trace_id):
            part["messages"] = [{"role": m["role"], "content": redact_text(m["content"], pii)}
                                for m in turns[trace_id]]
        if calls.get(trace_id):
            part["tool_calls"] = calls[trace_id]
            banned = forbidden.get(row["policy"], [])
            called = list(dict.fromkeys(c["name"] for c in calls[trace_id] if c["name"] in banned))
            if called:
                part["agent"] = {"forbidden_tools": called}
        if part:
            out[trace_id] = part
    return out
