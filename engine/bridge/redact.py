"""PII redaction applied in SQL before anything leaves the store (training exports, golden cases, label queue).

Card numbers go first (a 16-digit card would otherwise look like a phone number), then emails, then phones.
Every 13-19 digit run (with optional spaces or dashes) is redacted as a card, Luhn-valid or not: an export
should rather lose an order number than leak a card.
"""
from __future__ import annotations

import re

from sqlglot import exp

from engine.sql import literal

PATTERNS = {
    "credit_card": (r"\b(?:\d[ -]?){12,18}\d\b", "[CARD]"),
    "email": (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", "[EMAIL]"),
    "phone": (r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]?\d{3,4}[ .-]?\d{3,4}\b", "[PHONE]"),
}
ORDER = ("credit_card", "email", "phone")


def redact(text: exp.Expression, kinds: list[str]) -> exp.Expression:
    """`text` with every declared kind of PII replaced by a placeholder token."""
    out = text
    for kind in ORDER:
        if kind in kinds:
            pattern, token = PATTERNS[kind]
            out = exp.RegexpReplace(this=out, expression=literal(pattern), replacement=literal(token),
                                    modifiers=literal("g"))
    return out


# The same patterns for Python callers (HTML reports mask outputs with them). RE2's \d and \b are ASCII-only;
# re.ASCII makes Python's behave the same, so a report masks exactly what an export would.
_COMPILED = {kind: (re.compile(pattern, re.ASCII), token) for kind, (pattern, token) in PATTERNS.items()}


def redact_text(text: str | None, kinds: tuple[str, ...] | list[str] = ORDER) -> str | None:
    """`text` with every kind of PII in `kinds` replaced by its placeholder, in the same order as `redact`."""
    if text is None:
        return None
    for kind in ORDER:
        if kind in kinds:
            pattern, token = _COMPILED[kind]
            text = pattern.sub(token, text)
    return text
