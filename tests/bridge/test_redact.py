"""PII redaction patterns, positive and negative examples, run in DuckDB."""
from __future__ import annotations

import duckdb
import pytest
from sqlglot import exp

from engine.bridge.redact import redact
from engine.sql import literal, render

ALL = ["email", "phone", "credit_card"]
CASES = [
    ("mail me at jane.doe@example.com please", "mail me at [EMAIL] please"),
    ("ops+alerts@sub.tidepool.co.uk", "[EMAIL]"),
    ("call +1 415 555 0134 now", "call [PHONE] now"),
    ("office (030) 1234 5678", "office [PHONE]"),
    ("card 4111 1111 1111 1111 expires", "card [CARD] expires"),
    ("card 4111-1111-1111-1111", "card [CARD]"),
    ("amex 378282246310005", "amex [CARD]"),
    ("two: a@b.io and c@d.org", "two: [EMAIL] and [EMAIL]"),
    # negatives: left as they are
    ("the refund window is 30 days", None),
    ("on 2025-03-01 at 10:30", None),
    ("error TP-403 after 1000 meters", None),
    ("costs $12 per user per month", None),
    ("version 2.14.1", None),
    ("write to support at tidepool dot app", None),
    ("an @mention in Slack", None),
]


@pytest.mark.parametrize("text,expected", CASES)
def test_redaction(text, expected):
    con = duckdb.connect()
    got = con.execute(render(exp.select(redact(literal(text), ALL)))).fetchall()[0][0]
    assert got == (expected if expected is not None else text)


def test_only_declared_kinds_are_redacted():
    con = duckdb.connect()
    text = "jane@example.com +1 415 555 0134"
    got = con.execute(render(exp.select(redact(literal(text), ["email"])))).fetchall()[0][0]
    assert got == "[EMAIL] +1 415 555 0134"
