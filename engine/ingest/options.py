"""The resolved `ingest` config of one batch (plain, frozen data: also the key of the compiled-SQL caches)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from engine.ingest import privacy

UNKNOWN_FIELDS = ("keep", "ignore", "quarantine")


@dataclass(frozen=True)
class Options:
    """The resolved `ingest` config."""

    kind: str = "auto"
    format: str = "auto"
    unknown_fields: str = "keep"
    on_unreadable_file: str = "fail"
    chunk_bytes: int = 16 << 20
    chunk_rows: int = 25_000  # ~16 MiB of JSON at a typical trace size, like chunk_bytes
    memory_mb: int = 256  # DuckDB's memory during the batch (it spills beyond): with the chunk size, the bound
    salt: str | None = None
    hash_fields: tuple[str, ...] = ("user_id",)
    redact: tuple[str, ...] = ()
    redaction: str = "[REDACTED]"
    keep_raw: bool = False  # quarantine keeps raw lines despite privacy settings (ingest.quarantine.keep_raw)

    @classmethod
    def from_config(cls, cfg: dict) -> "Options":
        ing = cfg.get("ingest") or {}
        privacy = ing.get("privacy") or {}
        kind = cfg.get("kind") or ing.get("kind") or "auto"
        return cls(kind=kind, format=ing.get("format") or "auto",
                   unknown_fields=ing.get("unknown_fields") or "keep",
                   on_unreadable_file=ing.get("on_unreadable_file") or "fail",
                   chunk_bytes=int(ing.get("chunk_bytes") or (16 << 20)),
                   memory_mb=int(ing.get("memory_mb") or 256),
                   chunk_rows=int(ing.get("chunk_rows") or 25_000),
                   salt=privacy.get("salt") or None,
                   hash_fields=tuple(privacy.get("hash_fields") or ()),
                   redact=tuple(privacy.get("redact") or ()),
                   redaction=str(privacy.get("redaction", "[REDACTED]")),
                   keep_raw=bool((ing.get("quarantine") or {}).get("keep_raw", False)))

    def privacy_summary(self) -> dict:
        """What the batch did for privacy, storable: the salt's fingerprint, never the salt."""
        fp = hashlib.sha256(("flywheel-salt-fingerprint:" + self.salt).encode()).hexdigest()[:12] if self.salt else None
        return {"salt_fingerprint": fp, "hashed_fields": list(self.hash_fields) if self.salt else [],
                "redacted_fields": list(self.redact), "quarantine_keeps_raw": not privacy.active(self)}
