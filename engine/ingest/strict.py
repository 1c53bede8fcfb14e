"""Strict JSON (RFC 8259) on the ingest path, without parsing every record in Python.

DuckDB's JSON reader is lenient: `json_valid` accepts trailing commas, `NaN`, `Infinity`, `inf`, `nan` (any
case), numbers too large for a double (read as infinity) and duplicate keys (`json_extract` takes the first,
Python the last). Such a record must be quarantined ("invalid JSON" / "ambiguous JSON"), never stored.

How, cheaply:
1. A regular expression recognises the shape almost every record has: an object whose members are strictly
   lexed scalars (strings, numbers of bounded magnitude, true/false/null) or arrays of them, plus at most the
   schema's object fields (`attributes`) holding such a flat object. RE2 (Arrow's `match_substring_regex`)
   runs it over a whole chunk in the reader thread: ~2 microseconds per record, no Python per record.
   A record it recognises is RFC 8259 JSON except for duplicate keys, which can then only sit at the top
   level or in `attributes`: the SQL checks compare `json_keys` with its distinct values there
   (`duplicate_keys_sql`).
2. Every other record (broken, lenient, or simply nested deeper) is parsed strictly in Python (`problem`):
   duplicate keys at any depth, NaN/Infinity, non-finite numbers. Its reason becomes the chunk's `problem`,
   which the SQL checks report before anything else.
"""
from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.jsonlines import LONE_SURROGATE, StrictJSONError, holds_lone_surrogate, may_hold_lone_surrogate

_WS = r"[ \t\n\r]*"
# A \u escape outside D800-DFFF: a surrogate escape (a pair, or a lone one that is refused) takes the strict parse
_STRING = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u(?:[0-9a-cA-CefEF][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2}))*"'
# At most 15 integer digits and a 2-digit exponent: the value is a finite double whatever the digits are.
# Longer numbers are legal JSON; they take the strict parse, which refuses the ones that overflow.
_NUMBER = r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]+)?(?:[eE][-+]?[0-9]{1,2})?"
_SCALAR = f"(?:{_STRING}|{_NUMBER}|true|false|null)"
_ARRAY = rf"\[{_WS}(?:{_SCALAR}(?:{_WS},{_WS}{_SCALAR})*{_WS})?\]"
_MEMBER = rf"{_STRING}{_WS}:{_WS}(?:{_SCALAR}|{_ARRAY})"
_FLAT_OBJECT = rf"\{{{_WS}(?:{_MEMBER}(?:{_WS},{_WS}{_MEMBER})*{_WS})?\}}"


@lru_cache(maxsize=None)
def shape_pattern(object_fields: tuple[str, ...]) -> str:
    """The RE2 pattern of a record whose strictness the SQL can finish checking (see the module docstring)."""
    nested = "|".join(re.escape(json.dumps(name)) for name in object_fields)
    member = f"(?:{_MEMBER}|(?:{nested}){_WS}:{_WS}{_FLAT_OBJECT})" if nested else _MEMBER
    return rf"^{_WS}\{{{_WS}(?:{member}(?:{_WS},{_WS}{member})*{_WS})?\}}{_WS}$"


def object_fields() -> tuple[str, ...]:
    """Top-level fields that a record schema lets hold an object (their keys are checked in SQL)."""
    from engine.ingest.records import KINDS
    from engine.schemas import load_schema

    names: set[str] = set()
    for kind in KINDS.values():
        for name, sub in load_schema(kind.schema).get("properties", {}).items():
            t = sub.get("type", [])
            if "object" in ([t] if isinstance(t, str) else t):
                names.add(name)
    return tuple(sorted(names))


# ----------------------------------------------------------------------------------------- the strict parse


def _constant(name: str) -> Any:
    raise StrictJSONError(f"invalid JSON: {name} is not a JSON value")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJSONError("invalid JSON: a number too large for a double")
    return value


def _int(text: str) -> int:
    if len(text) > 300 and not math.isfinite(float(text)):  # stored as a double, it would be infinite
        raise StrictJSONError("invalid JSON: a number too large for a double")
    return int(text)


def _pairs(pairs: list[tuple[str, Any]]) -> dict:
    obj: dict = {}
    for key, value in pairs:
        if key in obj:
            raise StrictJSONError(f"ambiguous JSON: duplicate key {key!r} in one object")
        obj[key] = value
    return obj


def problem(text: str) -> str | None:
    """Why `text` is not one strict JSON value (RFC 8259, finite numbers, no duplicate keys); None when it is.

    Reasons start with "invalid JSON" or "ambiguous JSON" and carry no column, so that they group."""
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int,
                           object_pairs_hook=_pairs)
    except StrictJSONError as e:
        return e.reason
    except json.JSONDecodeError as e:
        return f"invalid JSON: {e.msg[:1].lower() + e.msg[1:]}"
    except (RecursionError, ValueError):
        return "invalid JSON: nested too deeply or a number too long"
    if may_hold_lone_surrogate(text) and holds_lone_surrogate(value):
        return LONE_SURROGATE
    return None


# ----------------------------------------------------------------------------------------- on chunks


def check_table(table: pa.Table) -> pa.Table:
    """The chunk with `problem` set for every record that is not strict JSON (records that already have a
    problem, such as bad UTF-8, keep theirs) and `strict` true for those the pattern recognised (JSON by
    construction: the SQL checks skip json_valid for them)."""
    if table.num_rows == 0:
        return table
    raw = table.column("raw")
    recognised = pc.fill_null(pc.match_substring_regex(raw, shape_pattern(object_fields())), False)
    table = table.set_column(table.schema.get_field_index("strict"), "strict", recognised)
    suspect = pc.and_kleene(pc.invert(recognised), pc.is_null(table.column("problem")))
    rows = np.flatnonzero(pc.fill_null(suspect, False).to_numpy(zero_copy_only=False))
    if len(rows) == 0:
        return table
    problems = table.column("problem").to_numpy(zero_copy_only=False).astype(object)
    found = False
    for i in rows.tolist():
        reason = problem(raw[i].as_py())
        if reason is not None:
            problems[i] = reason
            found = True
    if not found:
        return table
    index = table.schema.get_field_index("problem")
    return table.set_column(index, "problem", pa.array(problems, pa.string()))


def checked(chunks: Iterator) -> Iterator:
    """The reader's chunks with strict-JSON problems marked (runs in the reader thread under `prefetched`)."""
    for chunk in chunks:
        chunk.table = check_table(chunk.table)
        yield chunk
