"""Accuracy family: does the output match the ground truth?"""
from __future__ import annotations

from sqlglot import exp

from engine.metrics.base import MetricSQL, col, metric_kind, output, params
from engine.metrics.lexical import UNICODE_SPACE
from engine.sql import literal, parse_expression

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


@metric_kind("exact_match", {"properties": {"normalizer": {**_NORMALIZER_SCHEMA, "default": "squad"}}},
             aggregate="mean")
def exact_match(spec: dict) -> MetricSQL:
    """1 when the normalised output equals a normalised expected answer, else 0."""
    normalizer = params(spec)["normalizer"]
    if normalizer == "squad":
        from engine.metrics.squad_sql import squad_exact_match
        value = best_over_answers(lambda a: squad_exact_match(output(), a))
    else:
        value = best_over_answers(lambda a: exp.cast(
            exp.EQ(this=normalize(output(), normalizer), expression=normalize(a, normalizer)), "DOUBLE"))
    return MetricSQL(value=value)


@metric_kind("contains", {"properties": {"normalizer": {**_NORMALIZER_SCHEMA, "default": "squad"}}},
             aggregate="mean")
def contains(spec: dict) -> MetricSQL:
    """1 when a normalised expected answer appears in the normalised output (as whole tokens under `squad`)."""
    normalizer = params(spec)["normalizer"]
    if normalizer == "squad":
        from engine.metrics.squad_sql import squad_contains
        value = best_over_answers(lambda a: squad_contains(output(), a))
    else:
        value = best_over_answers(lambda a: parse_expression(
            "CASE WHEN length(__a__) = 0 THEN 0.0 WHEN contains(__o__, __a__) THEN 1.0 ELSE 0.0 END",
            o=normalize(output(), normalizer), a=normalize(a, normalizer)))
    return MetricSQL(value=value)


def _value_at_least(threshold: float) -> exp.Expression:
    return exp.GTE(this=col("value"), expression=literal(float(threshold)))


@metric_kind("token_f1", {"properties": {
    "threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5, "description": "passes at F1 >= this"}}})
def token_f1(spec: dict) -> MetricSQL:
    """SQuAD token F1 between the output and the best-matching expected answer (0..1); passes at >= threshold.

    Official SQuAD v1.1 normalisation (lowercase, no punctuation or articles, Unicode whitespace); 0 when the
    case lists no expected answer. Default threshold 0.5."""
    from engine.metrics.squad_sql import squad_f1
    return MetricSQL(value=best_over_answers(lambda a: squad_f1(output(), a)),
                     passed=_value_at_least(params(spec)["threshold"]))


@metric_kind("regex_match", {"required": ["pattern"], "properties": {
    "pattern": {"type": "string", "minLength": 1, "description": "an RE2 regular expression the output must match"},
    "full_match": {"type": "boolean", "default": False,
                   "description": "the whole output must match (default: a match anywhere)"},
    "ignore_case": {"type": "boolean", "default": False, "description": "match regardless of case"}}})
def regex_match(spec: dict) -> MetricSQL:
    """1 when the output matches the declared RE2 `pattern` (anywhere, or the whole output with full_match).

    The pattern is config, passed to DuckDB as a string value. Per-case patterns taken from the expected answer
    are deliberately not supported: one malformed pattern in a dataset would abort the whole run; use
    `contains` or `exact_match` for per-case answers."""
    p = params(spec)
    pattern = p["pattern"]
    if p["full_match"]:
        pattern = f"^(?:{pattern})$"
    if p["ignore_case"]:
        pattern = f"(?i){pattern}"
    value = exp.cast(exp.func("regexp_matches", output(), literal(pattern)), "DOUBLE")
    detail = parse_expression("CASE WHEN value = 1 THEN NULL ELSE 'output does not match ' || __p__ END",
                              p=literal(spec["pattern"]))
    return MetricSQL(value=value, detail=detail)


# The first number in a text: optional sign, thousands separators, decimals ("$1,234.50" -> 1234.5). It must
# not continue a word or another number ("v2", "abc-10" -> 10, not -10); RE2 has no look-behind, hence group 1.
NUMBER_PATTERN = "(?:^|[^\\pL\\pN_.,])([-+]?(?:\\d{1,3}(?:,\\d{3})+|\\d+)(?:\\.\\d+)?)"


def first_number(text: exp.Expression) -> exp.Expression:
    """The first number written in `text` as DOUBLE, NULL when there is none."""
    return parse_expression("TRY_CAST(replace(NULLIF(regexp_extract(__t__, __p__, 1), ''), ',', '') AS DOUBLE)",
                            t=text, p=literal(NUMBER_PATTERN))


@metric_kind("numeric_close", {"properties": {
    "abs_tol": {"type": "number", "minimum": 0, "default": 0.0, "description": "absolute tolerance"},
    "rel_tol": {"type": "number", "minimum": 0, "default": 1e-9, "description": "relative tolerance"}}})
def numeric_close(spec: dict) -> MetricSQL:
    """1 when the first number in the output is close to the number in an expected answer, as math.isclose.

    |out - exp| <= max(rel_tol * max(|out|, |exp|), abs_tol); "$1,234.50" reads as 1234.5. An output without
    a number scores 0."""
    p = params(spec)
    out = first_number(output())
    close = lambda a: parse_expression(
        "CASE WHEN abs(__o__ - __e__) <= greatest(__rel__ * greatest(abs(__o__), abs(__e__)), __abs__) "
        "THEN 1.0 ELSE 0.0 END", o=out, e=first_number(a),
        rel=literal(float(p["rel_tol"])), abs=literal(float(p["abs_tol"])))
    detail = parse_expression("CASE WHEN value = 1 THEN NULL WHEN __o__ IS NULL THEN 'no number in output' "
                              "ELSE 'output number ' || CAST(__o__ AS VARCHAR) || ' is not close to the expected' END",
                              o=out)
    return MetricSQL(value=best_over_answers(close), detail=detail)


def re2_escape(text: str) -> str:
    """`text` as an RE2 pattern matching it literally."""
    return "".join("\\" + c if c in "\\.^$|?*+()[]{}-" else c for c in text)


def choice_label(text: exp.Expression, labels: list[str]) -> exp.Expression:
    """The choice a text picks, as the declared label ('B'), NULL when none is recognisable.

    Tried in order: the whole text is a label ("B", "(b)", "B."); "answer: B" / "the answer is (b)";
    a label in brackets anywhere ("(B)"); a label opening the text ("B) because ...")."""
    alt = "|".join(re2_escape(label) for label in sorted(labels, key=len, reverse=True))
    sp, end = UNICODE_SPACE, "(?:[^\\pL\\pN]|$)"
    patterns = [f"(?i)^{sp}*[(\\[]?{sp}*({alt}){sp}*[)\\].:]?{sp}*$",
                f"(?i)answer(?:{sp}+is)?{sp}*[:\\-]?{sp}*[(\\[]?({alt}){end}",
                f"(?i)(?:^|[^\\pL\\pN])[(\\[]({alt})[)\\]]",
                f"(?i)^{sp}*({alt})[).:](?:{sp}|$)"]
    found = exp.func("coalesce", *[parse_expression("NULLIF(regexp_extract(__t__, __p__, 1), '')", t=text,
                                                    p=literal(p)) for p in patterns])
    # back to the declared spelling, so "b" and "B" are the same choice
    return parse_expression("list_filter(__labels__, lambda _l: lower(_l) = lower(__f__))[1]",
                            labels=literal(labels), f=found)


@metric_kind("choice", {"properties": {
    "labels": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 2, "uniqueItems": True,
               "default": ["A", "B", "C", "D", "E"], "description": "the choice labels"}}})
def choice(spec: dict) -> MetricSQL:
    """1 when the choice label read from the output ("B", "(b)", "Answer: B") equals the expected label.

    Labels compare case-insensitively; the expected answer is read the same way ("(B)" means B). An output
    with no recognisable label scores 0."""
    labels = list(params(spec)["labels"])
    picked = choice_label(output(), labels)
    value = best_over_answers(lambda a: exp.cast(
        exp.func("coalesce", exp.EQ(this=picked, expression=choice_label(a, labels)), literal(False)), "DOUBLE"))
    detail = parse_expression("CASE WHEN value = 1 THEN NULL WHEN __p__ IS NULL THEN 'no choice label in output' "
                              "ELSE 'picked ' || __p__ END", p=picked)
    return MetricSQL(value=value, detail=detail)
