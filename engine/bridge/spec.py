"""The `bridge` section as a frozen spec (engine/specs.py): defaults from schemas/bridge.schema.json."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.schemas import load_schema
from engine.specs import with_defaults


@dataclass(frozen=True)
class ExportSpec:
    format: str  # jsonl | parquet
    layout: str  # chat | flat
    pii: tuple[str, ...]  # redacted in every exported text
    dropped_fields: tuple[str, ...]  # left out of the export


@dataclass(frozen=True)
class GoldenSpec:
    dataset: str | None  # the golden dataset production failures grow (None: none grows)
    from_policies: tuple[str, ...]
    label_queue: bool


@dataclass(frozen=True)
class BridgeSpec:
    out_dir: str
    start: str | None
    end: str | None
    salt: str
    policies: dict[str, dict[str, Any]]  # each sampler's own config (its schema: the sampler registry)
    export: ExportSpec
    golden: GoldenSpec

    @classmethod
    def of(cls, cfg: dict) -> "BridgeSpec":
        b = with_defaults(load_schema("bridge"), cfg.get("bridge"))
        e, g = b["export"], b["golden"]
        return cls(str(b["out_dir"]), b["start"], b["end"], str(b["salt"]), dict(b["policies"] or {}),
                   ExportSpec(e["format"], e["layout"], tuple(e["redact"]["pii"] or ()),
                              tuple(e["redact"]["fields"] or ())),
                   GoldenSpec(g["dataset"], tuple(g["from_policies"] or ()), bool(g["label_queue"])))
