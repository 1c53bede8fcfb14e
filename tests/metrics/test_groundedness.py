"""lexical_groundedness: share of the answer's sentences whose content words are in the context."""
from __future__ import annotations

import pytest

CONTEXT = ["The Pro plan costs $8 per user per month.", "Refunds take 5 to 10 business days."]
PONY = "1 of 2 sentence(s) unsupported, first: It also includes a free pony."

GROUNDEDNESS = [
    # answer, spec extras, value, passed, detail
    ("The Pro plan costs $8 per user per month. Refunds take 5 to 10 days!", {}, 1.0, True, None),
    ("The Pro plan costs $8 per user per month. It also includes a free pony.", {}, 0.5, False, PONY),
    ("The Pro plan costs $8 per user per month.\u00a0It also includes a free pony.", {}, 0.5, False, PONY),
    ("The Pro plan costs $8 per user per month. It also includes a free pony.", {"threshold": 0.5}, 0.5, True, None),
    # "pro plan costs 9 seat": 3 of 5 content words in the context = 0.6 >= support_threshold 0.6
    ("The Pro plan costs $9 per seat.", {}, 1.0, True, None),
    ("The Pro plan costs $9 per seat.", {"support_threshold": 0.7}, 0.0, False,
     "1 of 1 sentence(s) unsupported, first: The Pro plan costs $9 per seat."),
    ("It costs $8.50 per user per month.", {}, 1.0, True, None),  # "$8.50" does not end a sentence
    ("Sure! The Pro plan costs $8.", {}, 0.5, False, "1 of 2 sentence(s) unsupported, first: Sure"),
    ("   ", {}, 0.0, False, "empty answer"),
    ("... !", {}, 0.0, False, "empty answer"),  # no content word anywhere
    ("I\u2019m sorry, but I can\u2019t help with that.", {}, 1.0, True, None),  # a refusal claims nothing
    ("I'm sorry, but I can't help with that.", {"refusal": "fail"}, 0.0, False, "refusal (configured to fail)"),
    ("Nope, not doing that.", {"refusal_patterns": ["not doing that"]}, 1.0, True, None),
]


@pytest.mark.parametrize("answer,extra,value,passed,detail", GROUNDEDNESS)
def test_lexical_groundedness(score, answer, extra, value, passed, detail):
    s = score({"kind": "lexical_groundedness", **extra}, [{"context": CONTEXT, "output": answer}])
    assert s.values == [value]
    assert s.passed == [passed]
    assert s.details == [detail]


def test_no_context_and_errored_cases_fail(score):
    s = score({"kind": "lexical_groundedness"}, [{"context": [], "output": "The Pro plan costs $8."},
                                                 {"context": CONTEXT, "error": "boom"}])
    assert s.values == [0.0, 0.0]
    assert s.details == ["the case has no context passages", "errored: boom"]
