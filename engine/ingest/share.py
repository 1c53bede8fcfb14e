"""The quarantine share of an ingest and its limit: the one place that decides `flywheel ingest`'s exit 1.

Records a reader had to skip (e.g. OpenTelemetry model-call spans it could not convert) are input that did not
become stored data, exactly as quarantined records are: they count against the same share.
"""
from __future__ import annotations

from engine.ingest.options import DEFAULTS

# ingest.max_quarantine_share's default (schemas/ingest.schema.json: 0.05, above 5 % of a batch something upstream
# changed), for a caller that gives no limit
DEFAULT_MAX_SHARE = DEFAULTS["max_quarantine_share"]


def quarantine_share(read: int, quarantined: int, skipped: int = 0) -> float | None:
    """(quarantined + skipped) / (read + skipped); None when the batch read nothing."""
    total = read + skipped
    return (quarantined + skipped) / total if total else None


def share_verdict(totals: dict, limit: float | None) -> dict:
    """The share of a batch (`totals`: read, quarantined, optionally skipped) against the limit."""
    limit = DEFAULT_MAX_SHARE if limit is None else float(limit)
    skipped = int(totals.get("skipped") or 0)
    share = quarantine_share(int(totals["read"]), int(totals["quarantined"]), skipped)
    return {"share": None if share is None else round(share, 6), "limit": limit, "skipped": skipped,
            "exceeded": share is not None and share > limit}
