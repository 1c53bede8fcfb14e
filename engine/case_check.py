"""A fast check of a golden case against schemas/case.schema.json, for files of a million cases.

`plainly_valid(record)` is True only for a record the schema accepts, in a few attribute tests (the generic
JSON Schema validator costs tens of microseconds a record). A record it does not pass is handed to the JSON
Schema validator, which decides and says why, so messages are unchanged. A test checks the two agree on a
corpus of valid and invalid records, and that the schema is still the one this check was written for.
"""
from __future__ import annotations

from typing import Any

# An agent case (`messages`, `agent`) is not plainly valid: the schema checks it.
KEYS = frozenset(("id", "input", "expected", "context", "tags", "metadata"))


def plainly_valid(record: Any) -> bool:
    if type(record) is not dict or "id" not in record or "input" not in record or not KEYS.issuperset(record):
        return False
    case_id = record["id"]
    if type(case_id) is not str or not 1 <= len(case_id) <= 200:
        return False
    if type(record["input"]) not in (str, dict):
        return False
    # `expected` may be any JSON value
    if "context" in record:
        context = record["context"]
        if type(context) is not list or any(type(c) is not str for c in context):
            return False
    if "tags" in record:
        tags = record["tags"]
        if type(tags) is not list or any(type(t) is not str or not t for t in tags) or len(set(tags)) != len(tags):
            return False
    if "metadata" in record and type(record["metadata"]) is not dict:
        return False
    return True
