"""Reporting reads results only (never the store): terminal tables, JSON files, later HTML and CI formats."""


def is_production(case: dict) -> bool:
    """A case the bridge added from a production failure (its metadata says where it came from)."""
    meta = case.get("metadata")
    return isinstance(meta, dict) and meta.get("origin") == "production"
