"""Groundedness: is every claim of the answer supported by the case's context passages?"""
from __future__ import annotations

from sqlglot import exp

from engine.metrics.base import MetricSQL, col, metric_kind, output, params
from engine.metrics.lexical import (
    REFUSAL_PATTERNS,
    STOPWORDS,
    UNICODE_SPACE,
    any_pattern,
    content_tokens,
    share_in,
    words,
)
from engine.sql import let, let_field, literal, parse_expression

# A sentence ends at ., ! or ? followed by (Unicode) whitespace: "$8.50" and "v1.2" do not split.
SENTENCE_END = f"[.!?]+{UNICODE_SPACE}+"

_BODY = """CASE
  WHEN __refusal__ THEN __on_refusal__
  WHEN len(__sentences__) = 0 THEN 0.0
  ELSE CAST(len(list_filter(__sentences__, lambda _s: coalesce(__share__, 0.0) >= __support__)) AS DOUBLE)
       / len(__sentences__)
END"""

_DETAIL = """CASE
  WHEN __refusal__ THEN 'refusal (configured to fail)'
  WHEN len(__sentences__) = 0 THEN 'empty answer'
  WHEN len(__pool__) = 0 THEN 'the case has no context passages'
  ELSE CAST(len(list_filter(__sentences__, lambda _s: coalesce(__share__, 0.0) < __support__)) AS VARCHAR)
       || ' of ' || CAST(len(__sentences__) AS VARCHAR) || ' sentence(s) unsupported, first: '
       || left(list_filter(__sentences__, lambda _s: coalesce(__share__, 0.0) < __support__)[1], 80)
END"""


@metric_kind("lexical_groundedness", {"properties": {
    "support_threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.6,
                          "description": "a sentence is supported when this share of its content words is "
                                         "in the context"},
    "threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 1.0,
                  "description": "a case passes when this share of its sentences is supported"},
    "refusal": {"enum": ["pass", "fail"], "default": "pass",
                "description": "how a refusal scores: pass (1, nothing to ground) or fail"},
    "refusal_patterns": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                         "default": list(REFUSAL_PATTERNS), "description": "RE2 patterns that mark a refusal"},
    "extra_stopwords": {"type": "array", "items": {"type": "string"}, "default": []}}})
def lexical_groundedness(spec: dict) -> MetricSQL:
    """Share of the answer's sentences supported by the context (0..1); passes when all are (threshold 1.0).

    Sentences end at . ! or ? followed by whitespace; one is supported when at least support_threshold (0.6)
    of its content words occur in the context passages. Sentences without content words are ignored, so an
    empty answer scores 0 and fails. A refusal makes no claim: it scores 1 (or 0 with `refusal: fail`). A case
    without context supports nothing and scores 0."""
    p = params(spec)
    stop = STOPWORDS + tuple(w.lower() for w in p["extra_stopwords"])
    threshold = float(p["threshold"])
    passed = exp.GTE(this=col("value"), expression=literal(threshold))
    bindings = {
        "sentences": parse_expression(
            "list_filter(regexp_split_to_array(__o__, __end__), lambda _s: len(__tokens__) > 0)",
            o=output(), end=literal(SENTENCE_END), tokens=content_tokens(exp.column("_s"), stop)),
        "pool": parse_expression("list_distinct(flatten(list_transform(context, lambda _p: __w__)))",
                                 w=words(exp.column("_p"))),
        "refusal": any_pattern(output(), p["refusal_patterns"]),
    }
    subs = {"support": literal(float(p["support_threshold"])),
            "on_refusal": literal(1.0 if p["refusal"] == "pass" else 0.0),
            "share": share_in(content_tokens(exp.column("_s"), stop), let_field("pool"))}

    detail = exp.Case().when(passed, exp.Null()).else_(let(_DETAIL, bindings, **subs))
    return MetricSQL(value=let(_BODY, bindings, **subs), passed=passed, detail=detail)
