"""The `ingest` section as frozen specs (engine/specs.py): defaults from schemas/ingest.schema.json.

`Options` is what shapes one batch's loading (also the key of the compiled-SQL caches); `IngestSpec` adds
what the command does around it (where to read, what to export, when to exit 1, what to print).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from engine.ingest import privacy
from engine.schemas import load_schema
from engine.specs import schema_defaults, with_defaults

UNKNOWN_FIELDS = ("keep", "ignore", "quarantine")
DEFAULTS = schema_defaults(load_schema("ingest"))  # {"chunk_bytes": 16777216, "privacy.hash_fields": [...], ...}


@dataclass(frozen=True)
class Options:
    """The resolved options of one batch; built directly (tests, tools), a field left out is the schema's
    default, as for a config that leaves it out."""

    kind: str = DEFAULTS["kind"]
    format: str = DEFAULTS["format"]
    unknown_fields: str = DEFAULTS["unknown_fields"]
    on_unreadable_file: str = DEFAULTS["on_unreadable_file"]
    chunk_bytes: int = DEFAULTS["chunk_bytes"]
    chunk_rows: int = DEFAULTS["chunk_rows"]  # ~16 MiB of JSON at a typical trace size, like chunk_bytes
    memory_mb: int = DEFAULTS["memory_mb"]  # DuckDB's memory in the batch (it spills beyond): with the chunk size, the bound
    salt: str | None = DEFAULTS["privacy.salt"]
    hash_fields: tuple[str, ...] = tuple(DEFAULTS["privacy.hash_fields"])
    redact: tuple[str, ...] = tuple(DEFAULTS["privacy.redact"])
    redaction: str = DEFAULTS["privacy.redaction"]
    keep_raw: bool = DEFAULTS["quarantine.keep_raw"]  # quarantine keeps raw lines despite privacy settings

    @classmethod
    def from_config(cls, cfg: dict) -> "Options":
        return IngestSpec.of(cfg).options

    def privacy_summary(self) -> dict:
        """What the batch did for privacy, storable: the salt's fingerprint, never the salt."""
        fp = hashlib.sha256(("flywheel-salt-fingerprint:" + self.salt).encode()).hexdigest()[:12] if self.salt else None
        return {"salt_fingerprint": fp, "hashed_fields": list(self.hash_fields) if self.salt else [],
                "redacted_fields": list(self.redact), "quarantine_keeps_raw": not privacy.active(self)}


@dataclass(frozen=True)
class ExportSpec:
    """`ingest.export`: which quarantined records `export_quarantine=PATH` writes out."""

    batch: str | None  # only this batch (None: every batch)
    kind: str | None  # only this kind
    include_resolved: bool  # also records whose key has since been stored


@dataclass(frozen=True)
class IngestSpec:
    options: Options
    paths: tuple[str, ...]  # files, directories or globs to read (the top-level `path=` wins)
    export: ExportSpec
    show_reasons: int  # quarantined records printed per reason
    max_quarantine_share: float  # exit 1 above it

    @classmethod
    def of(cls, cfg: dict) -> "IngestSpec":
        ing = with_defaults(load_schema("ingest"), cfg.get("ingest"))
        priv, export = ing["privacy"], ing["export"]
        raw = cfg.get("path") or ing["path"] or ()
        options = Options(
            kind=cfg.get("kind") or ing["kind"], format=ing["format"], unknown_fields=ing["unknown_fields"],
            on_unreadable_file=ing["on_unreadable_file"], chunk_bytes=int(ing["chunk_bytes"]),
            chunk_rows=int(ing["chunk_rows"]), memory_mb=int(ing["memory_mb"]),
            salt=priv["salt"] or None,  # an empty salt is no salt
            hash_fields=tuple(priv["hash_fields"]), redact=tuple(priv["redact"]), redaction=str(priv["redaction"]),
            keep_raw=bool(ing["quarantine"]["keep_raw"]))
        return cls(options, (raw,) if isinstance(raw, str) else tuple(raw),
                   ExportSpec(export["batch"], export["kind"], bool(export["include_resolved"])),
                   int(ing["show_reasons"]), float(ing["max_quarantine_share"]))
