"""An agent's tool calls as columns of each monitored trace, for declared monitor features and KPIs.

Every trace the monitor reads (engine/monitor/sources.py `traces_in_scope`) gains, from its `execute_tool`
spans (`trace_tool_steps`, engine/agents/otel_steps.py):

    tool_calls      the number of tool calls (0 for a trace without any)
    tool_errors     how many of them failed
    tool_sequence   the tools called, in order, joined by ' > ' ('' for none): a categorical "tool mix"

so that tool mix drift, tool error rate and step counts per window are declared like any feature or KPI:

    features:
      tool_mix: {expr: "tool_sequence", type: categorical}
      tool_calls: {expr: "tool_calls", type: numeric}
    kpis:
      tool_error_rate:
        category: efficacy
        aggregates:
          errors: {from: traces, agg: "sum(tool_errors)"}
          calls: {from: traces, agg: "sum(tool_calls)"}
        value: "errors / nullif(calls, 0)"
"""
from __future__ import annotations

from sqlglot import exp

from engine.sql import parse

AGENT_COLUMNS = ("tool_calls", "tool_errors", "tool_sequence")

_PER_TRACE = parse("""
SELECT trace_id, count(*) AS tool_calls, count(error) AS tool_errors,
       string_agg(coalesce(tool_name, '?'), ' > ' ORDER BY step) AS tool_sequence
FROM trace_tool_steps GROUP BY trace_id""")


def with_agent_columns(select: exp.Select, alias: str = "t") -> exp.Select:
    """`select` (over traces AS `alias`) with the three agent columns added by a left join."""
    calls = exp.column("tool_calls", table="fw_tools")
    return select.select(
        exp.alias_(exp.func("coalesce", calls, exp.Literal.number(0)), "tool_calls"),
        exp.alias_(exp.func("coalesce", exp.column("tool_errors", table="fw_tools"), exp.Literal.number(0)),
                   "tool_errors"),
        exp.alias_(exp.func("coalesce", exp.column("tool_sequence", table="fw_tools"), exp.Literal.string("")),
                   "tool_sequence"),
    ).join(_PER_TRACE.subquery("fw_tools"),
           on=exp.column("trace_id", table="fw_tools").eq(exp.column("trace_id", table=alias)), join_type="left")
