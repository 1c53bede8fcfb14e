"""The SQL text building blocks: Unicode-aware words, content tokens, shares, refusal patterns, let."""
from __future__ import annotations

import duckdb
import pytest

from engine.metrics.lexical import REFUSAL_PATTERNS, any_pattern, content_tokens, share_in, words
from engine.sql import let
from engine.sql import literal, render


def sql(expression):
    return duckdb.sql("SELECT " + render(expression)).fetchall()[0][0]


@pytest.mark.parametrize("text,expected", [
    ("Don\u2019t cancel\u2014the Pro plan!", ["dont", "cancel", "the", "pro", "plan"]),
    ("NA\u00cfVE caf\u00e9\u00a0\u00c9T\u00c9 3rd", ["na\u00efve", "caf\u00e9", "\u00e9t\u00e9", "3rd"]),  # NBSP splits
    ("$8.50/month", ["8", "50", "month"]),
    ("", []),
    ("...", []),
])
def test_words_are_unicode_aware(text, expected):
    assert sql(words(literal(text))) == expected


def test_content_tokens_drop_stopwords_and_duplicates():
    assert sorted(sql(content_tokens(literal("How do I cancel? Cancel what I can\u2019t use")))) == ["cancel", "use"]
    assert sorted(sql(content_tokens(literal("the refund"), ["refund"]))) == ["the"]


def test_share_in():
    assert sql(share_in(literal(["a", "b", "c"]), literal(["b", "c", "d"]))) == pytest.approx(2 / 3)
    assert sql(share_in(literal([]), literal(["b"]))) is None


@pytest.mark.parametrize("text", ["I'm sorry, but I can't help with that", "I\u2019M SORRY, BUT I CAN\u2019T do it",
                                  "Unfortunately I cannot help with this", "I can't assist with that request"])
def test_refusal_patterns_match(text):
    assert sql(any_pattern(literal(text), REFUSAL_PATTERNS)) is True


@pytest.mark.parametrize("text", ["Sure! Here's how to reset it", "I can help with that",
                                  "I'm sorry to hear that. Go to Settings", ""])
def test_refusal_patterns_do_not_match(text):
    assert sql(any_pattern(literal(text), REFUSAL_PATTERNS)) is False


def test_let_binds_once():
    assert sql(let("__x__ + __x__ * __k__", {"x": literal(3)}, k=literal(2))) == 9
