"""Trajectory metrics: SQL over an agent's recorded steps (`trajectory_steps`) and its case's task (`agent_*`).

They score agent cases (golden cases with an `agent` task, schemas/case.schema.json) whose model recorded a
trajectory (engine/agents/trajectory.py). An output without a trajectory is never a pass computed from
nothing: its value is NULL and the case fails with "no trajectory recorded". The final answer is
`output_text`, so every answer metric (contains, token_f1, ...) applies to agent cases unchanged.
"""
from __future__ import annotations

from sqlglot import exp

from engine.agents import match_sql as q
from engine.metrics.base import MetricSQL, col, metric_kind, params
from engine.sql import literal, parse_expression

_NO_TRAJECTORY = "'no trajectory recorded: the model returned no steps for this case'"


def _value_and_detail(value: str, reason: str) -> tuple[exp.Expression, exp.Expression]:
    """value (NULL without a trajectory) and the reason a case fails (NULL when `reason` is)."""
    return (q.over_row(q.with_trajectory(value, "NULL")),
            q.over_row(q.with_trajectory(reason, _NO_TRAJECTORY)))


@metric_kind("tool_call_match", {"properties": {}})
def tool_call_match(spec: dict) -> MetricSQL:
    """1 when the agent's tool calls match the case's expected calls (name and argument checks) in the case's
    order mode (exact, in_order, any_order, subset), else 0; a failure names the first mismatch and lists both
    call sequences. Scores cases whose task declares `tool_calls` ([] means: call no tool)."""
    value, detail = _value_and_detail(f"CASE WHEN ({q.MISMATCH}) IS NULL THEN 1.0 ELSE 0.0 END",
                                      f"({q.MISMATCH}) || {q.calls_listing()}")
    return MetricSQL(value=value, detail=detail,
                     where=q.task_exists("a.n_expected IS NOT NULL"))


_ARGS_FAIL = "list_min(list_filter(range(g.n_e), lambda j: len(g.m[j + 1]) = 0))"


@metric_kind("tool_arguments", {"properties": {}})
def tool_arguments(spec: dict) -> MetricSQL:
    """Share of the expected tool calls that some call of the same tool satisfies with its arguments (every
    JSON-path equals / regex / approx check holds), whatever the order; 1 passes. A failure names the first
    expected call with no satisfying call. Scores cases that expect at least one tool call."""
    value, detail = _value_and_detail(
        "len(list_filter(g.m, lambda x: len(x) > 0)) / g.n_e",
        f"CASE WHEN {_ARGS_FAIL} IS NULL THEN NULL ELSE 'expected call #' || ({_ARGS_FAIL} + 1) || ' ' || "
        f"g.expected[{_ARGS_FAIL} + 1] || CASE WHEN list_contains(g.calls, g.expected[{_ARGS_FAIL} + 1]) THEN "
        f"': no call of it meets the argument checks' ELSE ': not called' END || {q.calls_listing()} END")
    return MetricSQL(value=value, detail=detail, where=q.task_exists("a.n_expected > 0"))


_TOOLS = {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True, "default": [],
          "description": "tools forbidden in every case, besides each case's own `agent.forbidden_tools`"}


@metric_kind("forbidden_tool", {"properties": {"tools": _TOOLS}}, aggregate="max", higher_is_better=False)
def forbidden_tool(spec: dict) -> MetricSQL:
    """Calls to forbidden tools (the case's `forbidden_tools` and the metric's `tools`); a safety metric: any
    call fails the case, naming the tool and its position. Scores every case with a forbidden tool."""
    declared = list(params(spec)["tools"])
    tools = literal(declared)
    forbidden = "list_distinct(list_concat(g.forbidden, CAST(__tools__ AS VARCHAR[])))"
    first = f"list_min(list_filter(range(g.n_a), lambda i: list_contains({forbidden}, g.calls[i + 1])))"
    value, detail = _value_and_detail(
        f"CAST(len(list_filter(g.calls, lambda c: list_contains({forbidden}, c))) AS DOUBLE)",
        f"CASE WHEN {first} IS NULL THEN NULL ELSE 'called forbidden tool ' || g.calls[{first} + 1] || "
        f"' (call #' || ({first} + 1) || ')' || {q.calls_listing()} END")
    value, detail = (v.transform(lambda n: tools.copy() if isinstance(n, exp.Column) and n.name == "__tools__"
                                 else n) for v in (value, detail))
    where = None if declared else q.task_exists("len(a.forbidden_tools) > 0")
    return MetricSQL(value=value, passed=parse_expression("value = 0"), detail=detail, where=where)


@metric_kind("step_efficiency", {"properties": {}}, higher_is_better=False)
def step_efficiency(spec: dict) -> MetricSQL:
    """Steps used over the case's step budget (`max_steps`): every tool call, intermediate message and the
    final answer is a step. Passes within budget (value <= 1). Scores cases that declare a budget."""
    value, detail = _value_and_detail(
        "g.n_steps / g.budget",
        "CASE WHEN g.n_steps <= g.budget THEN NULL ELSE 'used ' || g.n_steps || ' steps, budget ' || g.budget "
        f"|| {q.calls_listing()} END")
    return MetricSQL(value=value, passed=parse_expression("value <= 1"), detail=detail,
                     where=q.task_exists("a.max_steps IS NOT NULL"))


@metric_kind("tool_error_rate", {"properties": {"max_rate": {
    "type": "number", "minimum": 0, "maximum": 1, "default": 0.0,
    "description": "a case passes when its share of failed tool calls is <= this"}}},
    higher_is_better=False)
def tool_error_rate(spec: dict) -> MetricSQL:
    """Share of the case's tool calls that returned an error. Scores cases whose trajectory has at least one
    tool call (a rate over no calls is not a 0); passes at <= max_rate (default 0)."""
    failed_first = "list_min(list_filter(range(g.n_a), lambda i: g.call_failed[i + 1]))"
    rate = "len(list_filter(g.call_failed, lambda x: x)) / g.n_a"
    value, detail = _value_and_detail(
        rate, f"CASE WHEN {rate} <= __max__ THEN NULL ELSE 'tool call #' || ({failed_first} + 1) || ' ' || "
              f"g.calls[{failed_first} + 1] || ' failed' || {q.calls_listing()} END")
    max_rate = literal(float(params(spec)["max_rate"]))
    detail = detail.transform(lambda n: max_rate.copy() if isinstance(n, exp.Column) and n.name == "__max__" else n)
    return MetricSQL(value=value, passed=exp.LTE(this=col("value"), expression=max_rate.copy()), detail=detail,
                     where=q.has_tool_calls())
