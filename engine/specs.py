"""Config sections as frozen spec objects, with their defaults declared in their JSON Schemas.

A validated section is filled with the `default` of every property it leaves out (recursively through nested
objects; schemas/*.schema.json), then read into a frozen dataclass: the code reads `spec.export.format`, never
`cfg.get("format", "jsonl")`, so a default lives in one place, beside the option's type and description, and
`tests/test_specs.py` holds the README's defaults to the schema.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any


def with_defaults(schema: dict, block: dict | None) -> dict:
    """`block` with every missing property that has a `default` in `schema` filled in (a fresh dict; nested
    objects are filled when present or when the schema gives their own default)."""
    out = copy.deepcopy(block) if isinstance(block, dict) else {}
    for key, prop in (schema.get("properties") or {}).items():
        if key not in out and "default" in prop:
            out[key] = copy.deepcopy(prop["default"])
        if prop.get("type") == "object" and "properties" in prop and (key in out or "default" in prop):
            out[key] = with_defaults(prop, out.get(key))
    return out


def schema_defaults(schema: dict, prefix: str = "") -> dict[str, Any]:
    """Every declared default by its dotted key path, e.g. {"export.format": "jsonl"}."""
    out = {}
    for key, prop in (schema.get("properties") or {}).items():
        if "default" in prop:
            out[prefix + key] = prop["default"]
        if prop.get("type") == "object" and "properties" in prop:
            out.update(schema_defaults(prop, f"{prefix}{key}."))
    return out


@dataclass(frozen=True)
class RunSpec:
    """The `run` section: how a command calls models and shows its progress (schemas/config.schema.json)."""

    batch_size: int
    progress: bool

    @classmethod
    def of(cls, cfg: dict) -> "RunSpec":
        from engine.schemas import load_schema

        run = with_defaults(load_schema("config")["properties"]["run"], cfg.get("run"))
        return cls(int(run["batch_size"]), bool(run["progress"]))
