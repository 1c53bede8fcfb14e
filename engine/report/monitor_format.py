"""Formatting shared by the monitor report's sections: badges, windows, rates, targets and anchors."""
from __future__ import annotations


import math

from engine.outcome import OP_TEXT
from engine.report.html import (
    badge,
    esc,
)
from engine.report.svg import (
    PALETTE,
    fmt,
)


CATEGORIES = ("business", "usage", "efficacy", "roi")
OK_COLOUR = PALETTE[0]
GAP_COLOUR = "#868e96"  # neutral: the red labels and the tolerance line carry the alert


# -- small formatting helpers ------------------------------------------------------------------------------

def check_badge(status: str, severity: str) -> tuple[str, str]:
    """(badge HTML, sort key): an alert reads ALERT when blocking, WARN when a warning; a check that could not be
    computed reads ERROR (it alerts with its own severity)."""
    if status == "ok":
        return badge("OK", "ok"), "3 ok"
    if status == "no_data":  # computed from nothing: an alert whatever the severity
        return badge("NO DATA", "bad"), "0 no_data"
    if status == "error":
        return badge("ERROR", "bad"), "0 error"
    return (badge("ALERT", "bad"), "1 alert") if severity == "blocking" else (badge("WARN", "warn"), "2 warn")


def window_label(iso: str | None, window: str) -> str:
    """A window's start as a reader names it: the date for days and weeks, date and hour for hours."""
    if not iso:
        return "–"
    return iso[:16].replace("T", " ") if window == "hour" else iso[:10]


def window_tick(iso: str, window: str) -> str:
    return iso[5:10] + " " + iso[11:13] + "h" if window == "hour" else iso[5:10]


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def rate_text(rate: dict | None) -> str:
    """71.6% (95% CI 65.9%–76.8%, n=261)"""
    if not rate or rate.get("rate") is None:
        return "–"
    ci = rate.get("ci") or [None, None]
    interval = f"95% CI {pct(ci[0])}–{pct(ci[1])}, " if ci and ci[0] is not None else ""
    return f"{pct(rate['rate'])} ({interval}n={rate.get('n', '?')})"


def target_text(target: dict | None) -> str:
    if not target or "op" not in target:
        return "(no target)"
    return f"{OP_TEXT.get(target['op'], target['op'])} {fmt(target['value'])}"


def number_cell(value) -> tuple[str, str | float]:
    if isinstance(value, float) and not math.isfinite(value):
        return ("∞" if value > 0 else "-∞"), value
    return fmt(value), "" if value is None else value


def anchor(section: str, name: str) -> str:
    """The id of a check's block; alerts name checks `section.name` (drift.topic_mix)."""
    return f"check-{section}-{name}"


def _alert_link(alert: str) -> str:
    section, _, name = alert.partition(".")
    return f'<a href="#{esc(anchor(section, name))}"><code>{esc(alert)}</code></a>'


# -- overview ------------------------------------------------------------------------------------------------
