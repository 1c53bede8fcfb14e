"""JSON Lines as RFC 8259 and the JSON Lines spec define them: one place that splits and parses, for every reader.

Lines end at b"\\n" only (a trailing "\\r" is tolerated): `str.splitlines()` also breaks at U+2028, U+2029, U+0085,
\\x0b, \\x0c and \\x1c-\\x1e, which are valid inside JSON strings. A UTF-8 byte-order mark at the start of a file is
accepted. Values must be strict JSON: no NaN/Infinity (Python's json accepts them) and no duplicate keys in one
object (which value wins is ambiguous).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

BOM = "\ufeff"


class StrictJSONError(ValueError):
    """Text that is not RFC 8259 JSON, or an object with a duplicate key. `reason` is one short sentence."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _reject_constant(name: str) -> Any:
    raise StrictJSONError(f"invalid JSON: {name} is not a JSON value")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):  # a key repeated: name the first one
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise StrictJSONError(f"ambiguous JSON: duplicate key {key!r} in one object")
            seen.add(key)
    return obj


# A \uD800-\uDFFF escape: JSON's grammar allows one alone, but it is not a Unicode character (RFC 8259 section
# 8.2 leaves its meaning unpredictable; I-JSON, RFC 7493, forbids it). Python would keep it as a lone surrogate
# that cannot be encoded as UTF-8, DuckDB refuses it: refused here, with the line, like any invalid JSON.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")
LONE_SURROGATE = "invalid JSON: a lone surrogate escape (\\uD800-\\uDFFF) is not a Unicode character"


def may_hold_lone_surrogate(text: str | bytes) -> bool:
    """Whether the text has a surrogate escape at all (a pair makes one character when parsed; a lone one not)."""
    if isinstance(text, bytes):
        return b"\\u" in text and _SURROGATE_ESCAPE.search(text.decode("utf-8", "replace")) is not None
    return "\\u" in text and _SURROGATE_ESCAPE.search(text) is not None


def holds_lone_surrogate(value: Any) -> bool:
    """A parsed value with a lone surrogate in some string (a key or a value, at any depth)."""
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(holds_lone_surrogate(k) or holds_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_lone_surrogate(v) for v in value)
    return False


# Built once: json.loads(text, **options) builds a decoder per call, which doubles the cost of a short line.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)


def loads_strict(text: str | bytes) -> Any:
    """Parse one JSON text strictly; raises StrictJSONError with the reason (invalid JSON / duplicate key)."""
    try:
        if isinstance(text, str):
            if text.startswith(BOM):  # what json.loads says for a str
                raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
            value = _DECODER.decode(text)
        else:
            value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
    except StrictJSONError:
        raise
    except UnicodeDecodeError as e:
        raise StrictJSONError(f"invalid UTF-8 ({e.reason} at byte {e.start})") from e
    except json.JSONDecodeError as e:
        raise StrictJSONError(f"invalid JSON: {e.msg} (column {e.colno})") from e
    except RecursionError as e:
        raise StrictJSONError("invalid JSON: nested too deeply") from e
    if may_hold_lone_surrogate(text) and holds_lone_surrogate(value):
        raise StrictJSONError(LONE_SURROGATE)
    return value


def split_lines(text: str) -> Iterator[tuple[int, str]]:
    """(file line number, line) for each line of a JSON Lines text; a BOM at the start and a trailing \\r dropped."""
    if text.startswith(BOM):
        text = text[1:]
    for line_no, line in enumerate(text.split("\n"), start=1):
        yield line_no, line[:-1] if line.endswith("\r") else line


def read_text(path: Path) -> str:
    """A file's text as UTF-8, never with replacement characters; invalid bytes raise UnicodeDecodeError."""
    return path.read_bytes().decode("utf-8")


def iter_records(path: Path) -> Iterator[tuple[int, str, Any]]:
    """(line number, raw line, parsed value or StrictJSONError) for each non-blank line of a JSON Lines file.

    Decoding errors of the whole file raise UnicodeDecodeError; callers name the file and byte offset.
    """
    for line_no, line in split_lines(read_text(path)):
        if not line.strip():
            continue
        try:
            yield line_no, line, loads_strict(line)
        except StrictJSONError as e:
            yield line_no, line, e


def dumps_line(value: Any) -> str:
    """One JSON Lines record: strict JSON (NaN refused), non-ASCII kept raw; U+2028/9 are safe because we split on \\n."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
