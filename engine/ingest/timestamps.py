"""The date-time rule of record timestamps: one definition for the SQL checks and the reference validator.

A timestamp is a date `YYYY-MM-DD` (year 0001-9999, a day that exists: 2024-02-29 yes, 2025-02-29 no), `T`, `t`
or a space, a time `hh:mm` (hour 00-23, minute 00-59) with optional seconds `:ss` (00-59: no leap second, the
store cannot hold 23:59:60) and a fraction of 1-9 digits, then optionally an offset: `Z`, `z`, `+hh:mm`, `+hhmm`
or `+hh` (or `-`; hours 00-23, minutes 00-59). Without an offset the time is UTC. The store keeps microseconds:
digits after the sixth are dropped (truncated, never rounded), so an instant is stored as written to the
microsecond. Everything else (`+25:00`, `24:00`, `2025-03-01` alone, a trailing space) is refused, by both paths.
"""
from __future__ import annotations

import re
from datetime import datetime

from sqlglot import exp

_YEAR = "(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"  # 0001-9999
_DATE = _YEAR + "-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.][0-9]{1,9})?)?"
_OFFSET = "(?:[Zz]|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)"
# Matched whole (Python re.fullmatch, DuckDB regexp_full_match): the same meaning in both engines.
PATTERN = f"{_DATE}[Tt ]{_TIME}{_OFFSET}?"
_COMPILED = re.compile(PATTERN)


def is_date_time(value: str) -> bool:
    """The reference check (Python): the shape, then the calendar (datetime refuses 2025-02-30)."""
    if not _COMPILED.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value.upper())
    except ValueError:
        return False
    return True


def instant(value: str) -> datetime:
    """The instant a valid timestamp names, as the reference computes it (UTC when there is no offset)."""
    from datetime import timezone

    parsed = datetime.fromisoformat(value.upper())
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def sql_instant(text: exp.Expression) -> exp.Expression:
    """The TIMESTAMPTZ a string names, NULL when the calendar refuses it (the session time zone is UTC)."""
    from engine.sql import parse_expression

    return parse_expression("TRY_CAST(upper(__s__) AS TIMESTAMPTZ)", s=text)


def sql_valid(text: exp.Expression) -> exp.Expression:
    """The SQL check: the same shape (RE2) and a calendar date and time DuckDB can cast."""
    from engine.sql import literal, parse_expression

    return parse_expression("(regexp_full_match(__s__, __p__) AND __i__ IS NOT NULL)", s=text, p=literal(PATTERN),
                            i=sql_instant(text))
