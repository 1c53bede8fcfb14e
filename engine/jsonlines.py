"""JSON Lines as RFC 8259 and the JSON Lines spec define them: one place that splits and parses, for every reader.

Lines end at b"\\n" only (a trailing "\\r" is tolerated): `str.splitlines()` also breaks at U+2028, U+2029, U+0085,
\\x0b, \\x0c and \\x1c-\\x1e, which are valid inside JSON strings. A UTF-8 byte-order mark at the start of a file is
accepted. Values must be strict JSON: no NaN/Infinity (Python's json accepts them) and no duplicate keys in one
object (which value wins is ambiguous).
"""
from __future__ import annotations

import json
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


# Built once: json.loads(text, **options) builds a decoder per call, which doubles the cost of a short line.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)


def loads_strict(text: str | bytes) -> Any:
    """Parse one JSON text strictly; raises StrictJSONError with the reason (invalid JSON / duplicate key)."""
    try:
        if isinstance(text, str):
            if text.startswith(BOM):  # what json.loads says for a str
                raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
            return _DECODER.decode(text)
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
    except StrictJSONError:
        raise
    except UnicodeDecodeError as e:
        raise StrictJSONError(f"invalid UTF-8 ({e.reason} at byte {e.start})") from e
    except json.JSONDecodeError as e:
        raise StrictJSONError(f"invalid JSON: {e.msg} (column {e.colno})") from e
    except RecursionError as e:
        raise StrictJSONError("invalid JSON: nested too deeply") from e


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
