"""Accuracy family: does the output match the ground truth?"""
from __future__ import annotations

from sqlglot import exp

from engine.metrics.base import MetricSQL, col, metric_kind, output
from engine.sql import parse_expression

NORMALIZERS = ["none", "lower_strip", "squad"]
_NORMALIZER_SCHEMA = {"enum": NORMALIZERS, "description": "how texts are normalised before comparing"}


def normalize(text: exp.Expression, normalizer: str) -> exp.Expression:
    if normalizer == "none":
        return text
    if normalizer == "lower_strip":
        return parse_expression("lower(trim(__t__))", t=text)
    from engine.metrics.squad_sql import squad_normalize
    return squad_normalize(text)


def best_over_answers(score_of_answer) -> exp.Expression:
    """max over the acceptable answers (SQuAD style); 0 when the case lists none."""
    answer = exp.column("answer")
    per_answer = score_of_answer(answer)
    return parse_expression(
        "coalesce(list_max(list_transform(expected_answers, lambda answer: __s__)), 0.0)", s=per_answer)


@metric_kind("exact_match", {"properties": {"normalizer": _NORMALIZER_SCHEMA}}, aggregate="mean")
def exact_match(spec: dict) -> MetricSQL:
    """1 when the normalised output equals a normalised expected answer, else 0."""
    normalizer = spec.get("normalizer", "squad")
    if normalizer == "squad":
        from engine.metrics.squad_sql import squad_exact_match
        value = best_over_answers(lambda a: squad_exact_match(output(), a))
    else:
        value = best_over_answers(lambda a: exp.cast(
            exp.EQ(this=normalize(output(), normalizer), expression=normalize(a, normalizer)), "DOUBLE"))
    return MetricSQL(value=value)


@metric_kind("contains", {"properties": {"normalizer": _NORMALIZER_SCHEMA}}, aggregate="mean")
def contains(spec: dict) -> MetricSQL:
    """1 when a normalised expected answer appears in the normalised output (as whole tokens under `squad`)."""
    normalizer = spec.get("normalizer", "squad")
    if normalizer == "squad":
        from engine.metrics.squad_sql import squad_contains
        value = best_over_answers(lambda a: squad_contains(output(), a))
    else:
        value = best_over_answers(lambda a: parse_expression(
            "CASE WHEN length(__a__) = 0 THEN 0.0 WHEN contains(__o__, __a__) THEN 1.0 ELSE 0.0 END",
            o=normalize(output(), normalizer), a=normalize(a, normalizer)))
    return MetricSQL(value=value)
