"""Operational metrics: what an answer costs (time, money, tokens, length) and whether the call failed.

Lower is better for all of them; a limit (`max_ms`, `max_cost`, ...) turns a value into pass/fail. Without
a limit a case passes when its value is known. The summary already reports p50/p95/p99/mean/sum/max of each.
"""
from __future__ import annotations

from sqlglot import exp

from engine.metrics.base import MetricSQL, col, metric_kind, output, params
from engine.metrics.lexical import UNICODE_SPACE
from engine.sql import literal, parse_expression


def _within(spec: dict, key: str, low_key: str | None = None) -> exp.Expression:
    """value <= spec[key] (and >= spec[low_key]) when set; else the value is known."""
    checks = [col("value").is_(exp.null()).not_()]
    if key in spec:
        checks.append(exp.LTE(this=col("value"), expression=literal(float(spec[key]))))
    if low_key and low_key in spec:
        checks.append(exp.GTE(this=col("value"), expression=literal(float(spec[low_key]))))
    return exp.and_(*checks)


def _limit_detail(what: str, passed: exp.Expression) -> exp.Expression:
    return parse_expression("CASE WHEN __ok__ THEN NULL WHEN value IS NULL THEN __unknown__ "
                            "ELSE __what__ || ' ' || CAST(value AS VARCHAR) || ' is out of bounds' END",
                            ok=passed, unknown=literal(f"{what} unknown"), what=literal(what))


def _limit(description: str) -> dict:
    return {"type": "number", "minimum": 0, "description": description}


@metric_kind("latency", {"properties": {"max_ms": _limit("a case passes when its latency <= this")}},
             aggregate="p95", higher_is_better=False)
def latency(spec: dict) -> MetricSQL:
    """Model call latency in milliseconds (summarised as p95 by default); passes at <= max_ms when set."""
    passed = _within(spec, "max_ms")
    return MetricSQL(value=exp.cast(col("latency_ms"), "DOUBLE"), passed=passed,
                     detail=_limit_detail("latency_ms", passed))


@metric_kind("cost", {"properties": {"max_cost": _limit("a case passes when its cost <= this")}},
             higher_is_better=False)
def cost(spec: dict) -> MetricSQL:
    """Cost of the model call as the adapter reported it (mean per case; the summary also has the sum)."""
    passed = _within(spec, "max_cost")
    return MetricSQL(value=exp.cast(col("cost"), "DOUBLE"), passed=passed, detail=_limit_detail("cost", passed))


@metric_kind("tokens", {"properties": {
    "which": {"enum": ["total", "prompt", "completion"], "default": "total", "description": "which tokens to count"},
    "max_tokens": _limit("a case passes when its token count <= this")}}, higher_is_better=False)
def tokens(spec: dict) -> MetricSQL:
    """Tokens of the model call: prompt + completion (total, the default), prompt or completion only."""
    which = params(spec)["which"]
    value = {"total": exp.Add(this=col("prompt_tokens"), expression=col("completion_tokens")),
             "prompt": col("prompt_tokens"), "completion": col("completion_tokens")}[which]
    passed = _within(spec, "max_tokens")
    return MetricSQL(value=exp.cast(value, "DOUBLE"), passed=passed, detail=_limit_detail(f"{which} tokens", passed))


@metric_kind("output_length", {"properties": {
    "unit": {"enum": ["characters", "words"], "default": "characters", "description": "count characters or words"},
    "min": _limit("a case passes when its length >= this"), "max": _limit("a case passes when its length <= this")}},
    higher_is_better=False)
def output_length(spec: dict) -> MetricSQL:
    """Length of the output in characters (default) or words (runs of non-whitespace); bounds `min`/`max`."""
    if params(spec)["unit"] == "words":
        value = parse_expression("len(list_filter(regexp_split_to_array(__o__, __sp__), lambda _w: _w <> ''))",
                                 o=output(), sp=literal(UNICODE_SPACE + "+"))
    else:
        value = exp.func("length", output())
    passed = _within(spec, "max", "min")
    return MetricSQL(value=exp.cast(value, "DOUBLE"), passed=passed, detail=_limit_detail("length", passed))


@metric_kind("error_rate", {"properties": {}}, higher_is_better=False)
def error_rate(spec: dict) -> MetricSQL:
    """1 when the model call errored, else 0 (mean = error rate); an errored case fails with its error."""
    errored = col("error").is_(exp.null()).not_()
    return MetricSQL(value=exp.cast(errored, "DOUBLE"), passed=col("error").is_(exp.null()),
                     detail=col("error"), applies_to_errors=True)
