"""What a metric kind is: a small function from its config to SQL expressions over one scored row.

The row (alias-free columns of the `scoring_input` relation) holds the case and the model's output:
  case_id, dataset, input_text, expected_answers (VARCHAR[]), expected (JSON), context (VARCHAR[]),
  tags (VARCHAR[]), metadata (JSON), repeat, output_text, error, latency_ms, prompt_tokens,
  completion_tokens, cost.
A kind returns `value` (DOUBLE), and optionally `passed` and `detail`, which may refer to the computed
`value` column. An errored case always fails (fail closed), whatever the kind says.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlglot import exp

from engine import registry

SCORING_COLUMNS = ("case_id", "dataset", "input_text", "expected_answers", "expected", "context", "tags",
                   "metadata", "repeat", "output_text", "error", "latency_ms", "prompt_tokens",
                   "completion_tokens", "cost")

# Keys every metric accepts; a kind's own schema adds the rest.
COMMON_PROPERTIES = {
    "kind": {"type": "string", "description": "the metric kind (see `flywheel metrics`)"},
    "description": {"type": "string"},
    "datasets": {"type": "array", "items": {"type": "string"}, "uniqueItems": True,
                 "description": "datasets this metric scores; empty or absent means every dataset"},
    "threshold": {"type": "number", "description": "a case passes when value >= threshold (kinds say)"},
    "aggregate": {"enum": ["mean", "pass_rate", "p50", "p95", "p99", "sum", "max"],
                  "description": "how the per-case values are summarised in tables and gate rules"},
    "higher_is_better": {"type": "boolean"},
}


@dataclass(frozen=True)
class MetricSQL:
    value: exp.Expression
    passed: exp.Expression | None = None  # default: value >= threshold (or value = 1 without one)
    detail: exp.Expression | None = None  # why a case failed, shown in reports
    applies_to_errors: bool = False  # operational metrics (latency, error rate) also score errored cases


def col(name: str) -> exp.Column:
    return exp.column(name)


def output() -> exp.Expression:
    """The model output, '' for an errored case (so it scores as wrong, never as NULL)."""
    return exp.func("coalesce", col("output_text"), exp.Literal.string(""))


def metric_kind(name: str, schema: dict | None = None, aggregate: str = "mean",
                higher_is_better: bool = True) -> Callable:
    """Register a metric kind. `schema` lists the kind's own config keys (JSON Schema properties)."""
    full = {
        "type": "object",
        "required": ["kind"] + list((schema or {}).get("required", [])),
        "additionalProperties": False,
        "properties": {**COMMON_PROPERTIES, **(schema or {}).get("properties", {})},
    }

    def decorator(fn: Callable) -> Callable:
        fn.default_aggregate = aggregate
        fn.higher_is_better = higher_is_better
        return registry.register("metric", name, full)(fn)

    return decorator
