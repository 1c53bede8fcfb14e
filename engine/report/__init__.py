"""Reporting reads results only (never the store): terminal tables, JSON files, later HTML and CI formats."""


def is_production(case: dict) -> bool:
    """A case the bridge added from a production failure (its metadata says where it came from)."""
    meta = case.get("metadata")
    return isinstance(meta, dict) and meta.get("origin") == "production"


def live_source_text(parity: dict) -> str:
    """What the live rate of a parity check is made of, as configured (`live: feedback | online`)."""
    metric = parity.get("lab_metric") or parity["name"]
    if parity.get("live_source") == "online":
        return f"live: online scores of {metric} on sampled traces"
    if parity.get("live_source") == "feedback":
        return ("live: user feedback, among traces with a rating or a thumb; a trace fails on any negative "
                "rating, thumb, correction or ticket")
    return "live: as configured in monitor.parity (an older result does not say which source)"
