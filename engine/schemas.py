"""Loading the JSON Schemas shipped in schemas/ and turning jsonschema errors into placed messages."""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from engine.errors import did_you_mean
from engine.paths import schemas_dir


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """`load_schema("case")` reads schemas/case.schema.json."""
    path = schemas_dir() / f"{name}.schema.json"
    return json.loads(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(name))


def validator_for(schema: dict) -> Draft202012Validator:
    return Draft202012Validator(schema)


def dotted(path: Any, prefix: str = "") -> str:
    """jsonschema's deque path as `a.b[2].c`, under an optional prefix."""
    out = prefix
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def explain(error: jsonschema.ValidationError) -> tuple[Any, str]:
    """(path, message) for one error; unknown keys get a did-you-mean over the allowed ones."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        extras = [k for k in error.instance if k not in allowed]
        if extras:
            return path + [extras[0]], f"unknown key '{extras[0]}'; {did_you_mean(extras[0], allowed)}"
    if error.validator == "enum":
        allowed = [str(v) for v in error.validator_value]
        return path, f"{error.instance!r} is not allowed; {did_you_mean(str(error.instance), allowed)}"
    if error.validator == "required":
        return path, error.message.replace("is a required property", "is required but missing")
    if error.validator == "type":
        return path, f"expected {error.validator_value}, got {type(error.instance).__name__} {error.instance!r}"
    return path, error.message


def all_errors(validator_: Draft202012Validator, instance: Any) -> list[tuple[Any, str]]:
    errors = sorted(validator_.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    out = []
    for error in errors:
        # oneOf/anyOf: the most specific sub-error explains more than "is not valid under any of".
        if error.context:
            best = jsonschema.exceptions.best_match(error.context)
            out.append(explain(best))
        else:
            out.append(explain(error))
    return out
