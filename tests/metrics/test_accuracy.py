"""Accuracy kinds added on top of exact_match/contains: token_f1, regex_match, numeric_close, choice."""
from __future__ import annotations

import pytest

# ---- token_f1: SQuAD F1 (hand-computed), max over expected answers, threshold 0.5 by default ------------------
TOKEN_F1 = [
    # expected, output, value
    ("the Pro plan", "Pro plan costs", 0.8),  # gold [pro, plan], pred [pro, plan, costs]: P 2/3, R 1 -> 0.8
    (["nope", "b c"], "b", 2 / 3),  # best answer "b c": P 1, R 1/2 -> 2/3
    ("30 days", "30 days", 1.0),
    ("30 days", "The window is thirty days", 1 / 3),  # "days" shared: P 1/4, R 1/2 -> 1/3
    ("anything", "", 0.0),
    (None, "x", 0.0),  # no expected answer
]


@pytest.mark.parametrize("expected,out,value", TOKEN_F1)
def test_token_f1(score, expected, out, value):
    s = score({"kind": "token_f1"}, [{"expected": expected, "output": out}])
    assert s.values[0] == pytest.approx(value)
    assert s.passed[0] == (value >= 0.5)


def test_token_f1_threshold_and_errored_case(score):
    s = score({"kind": "token_f1", "threshold": 0.9},
              [{"expected": "the Pro plan", "output": "Pro plan costs"}, {"expected": "x", "error": "boom"}])
    assert s.passed == [False, False]
    assert s.details[1] == "errored: boom"


# ---- regex_match: the declared pattern (a value, never SQL) ------------------------------------------------------
REGEX = [
    # spec extras, output, matches
    ({}, "30 days", True),
    ({}, "about 30 days", True),  # anywhere
    ({"full_match": True}, "about 30 days", False),
    ({"full_match": True}, "30 days", True),
    ({}, "30 DAYS", False),
    ({"ignore_case": True}, "30 DAYS", True),
    ({}, "thirty days", False),
    ({}, "", False),
]


@pytest.mark.parametrize("extra,out,matches", REGEX)
def test_regex_match(score, extra, out, matches):
    s = score({"kind": "regex_match", "pattern": "[0-9]+ days", **extra}, [{"output": out}])
    assert s.values == [1.0 if matches else 0.0]
    assert s.details == [None if matches else "output does not match [0-9]+ days"]


def test_regex_pattern_is_a_value_not_sql(score):
    # a quote in the pattern cannot break out of the string literal
    s = score({"kind": "regex_match", "pattern": "it's'; DROP TABLE scores; --"},
              [{"output": "it's'; DROP TABLE scores; --"}, {"output": "x"}])
    assert s.values == [1.0, 0.0]
    assert s.store.con.execute("SELECT count(*) FROM scores").fetchall()[0][0] == 2


# ---- numeric_close: first number of the output vs the expected number ---------------------------------------------
NUMERIC = [
    # expected, output, spec extras, value, detail
    ("$8 per user per month", "It costs $8.00 per user.", {}, 1.0, None),
    ("1,234.5", "about 1234.5 in total", {}, 1.0, None),
    ("1,234.5", "1234", {}, 0.0, "output number 1234.0 is not close to the expected"),
    ("1,234.5", "1234", {"abs_tol": 1}, 1.0, None),
    ("100", "101", {"rel_tol": 0.01}, 1.0, None),  # |1| <= 0.01 * 101
    ("100", "102", {"rel_tol": 0.01}, 0.0, "output number 102.0 is not close to the expected"),
    ("-5", "The balance is -5", {}, 1.0, None),
    ("10", "auto-10 items", {}, 1.0, None),  # a hyphen inside a word is no minus sign
    ("2", "v2 has 3 features", {}, 0.0, "output number 3.0 is not close to the expected"),  # "v2" is no number
    ("10", "no idea", {}, 0.0, "no number in output"),
    (["7", "10"], "10", {}, 1.0, None),  # best over answers
    (10, "10", {}, 1.0, None),  # a JSON number as expected
]


@pytest.mark.parametrize("expected,out,extra,value,detail", NUMERIC)
def test_numeric_close(score, expected, out, extra, value, detail):
    s = score({"kind": "numeric_close", **extra}, [{"expected": expected, "output": out}])
    assert s.values == [value]
    assert s.details == [detail]


# ---- choice: multiple-choice label extraction -----------------------------------------------------------------------
CHOICE = [
    # expected, output, value, detail
    ("B", "B", 1.0, None),
    ("B", "b", 1.0, None),
    ("B", "(B)", 1.0, None),
    ("B", " B. ", 1.0, None),
    ("(b)", "The answer is (B)", 1.0, None),
    ("B", "Answer: b.", 1.0, None),
    ("B", "answer is B because of the price", 1.0, None),
    ("C", "A) because it is cheaper", 0.0, "picked A"),
    ("A", "Because of (a), the answer is A", 1.0, None),
    ("C", "I think so", 0.0, "no choice label in output"),
    ("C", "Bananas", 0.0, "no choice label in output"),  # a word starting with a label is no label
    ("B", "", 0.0, "no choice label in output"),
]


@pytest.mark.parametrize("expected,out,value,detail", CHOICE)
def test_choice(score, expected, out, value, detail):
    s = score({"kind": "choice"}, [{"expected": expected, "output": out}])
    assert s.values == [value]
    assert s.details == [detail]


def test_choice_declared_labels(score):
    spec = {"kind": "choice", "labels": ["yes", "no", "maybe"]}
    s = score(spec, [{"expected": "yes", "output": "Answer: YES"}, {"expected": "no", "output": "maybe"},
                     {"expected": "no", "output": "(no)"}])
    assert s.values == [1.0, 0.0, 1.0]
    assert s.details[1] == "picked maybe"


# ---- the original kinds, for completeness --------------------------------------------------------------------------
@pytest.mark.parametrize("kind,normalizer,expected,out,value", [
    ("exact_match", "squad", "pro plan", "The Pro plan!", 1.0),
    ("exact_match", "lower_strip", "30 days", " 30 Days ", 1.0),
    ("exact_match", "none", "30 days", "30 Days", 0.0),
    ("exact_match", "squad", ["x", "Yes"], "yes.", 1.0),
    ("contains", "squad", "30 days", "It is 30 days.", 1.0),
    ("contains", "squad", "30 days", "It is 300 days.", 0.0),  # whole tokens
    ("contains", "lower_strip", "30 days", "It is 300 DAYS.", 0.0),
    ("contains", "lower_strip", "0 days", "It is 300 DAYS.", 1.0),  # plain substring
    ("contains", "none", "Days", "300 days", 0.0),
])
def test_exact_match_and_contains(score, kind, normalizer, expected, out, value):
    s = score({"kind": kind, "normalizer": normalizer}, [{"expected": expected, "output": out}])
    assert s.values == [value]
