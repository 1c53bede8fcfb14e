"""The normalised-text hash that deduplicates production inputs against golden cases and earlier exports."""
from __future__ import annotations

from sqlglot import exp

from engine.sql import parse_expression


def text_hash(text: exp.Expression) -> exp.Expression:
    """md5 of the text lower-cased, with every run of non-letters/digits collapsed to one space and trimmed:
    'How do I reset 2FA?' and 'how do i reset 2fa' are the same question."""
    return parse_expression(
        r"md5(trim(regexp_replace(lower(__t__), '[^\p{L}\p{N}]+', ' ', 'g')))", t=text)
