"""The prod-lab parity section of the monitor report: lab against live per model version and slice."""
from __future__ import annotations


from engine.report import live_source_text
from engine.report.html import (
    Column,
    Row,
    Section,
    definition_list,
    details,
    esc,
    table,
)
from engine.report.svg import (
    BASELINE_COLOUR,
    CHALLENGER_COLOUR,
    Bar,
    Point,
    grouped_bars,
    line_chart,
)

from engine.report.monitor_format import GAP_COLOUR, anchor, check_badge, pct, rate_text, window_label, window_tick
LAB, LIVE = ("lab", BASELINE_COLOUR), ("live", CHALLENGER_COLOUR)


def _bar(rate: dict | None) -> Bar:
    if not rate or rate.get("rate") is None:
        return Bar(None)
    ci = rate.get("ci") or [None, None]
    return Bar(rate["rate"], ci[0], ci[1], f" (n={rate.get('n', '?')})")


def _key(value) -> float | str:
    return "" if value is None else value


def _gap_cell(s: dict, tolerance: float | None) -> tuple[str, float | str]:
    over = s.get("gap") is not None and tolerance is not None and s["gap"] > tolerance
    return f'<span class="{"neg" if over else ""}">{pct(s.get("gap"))}</span>', _key(s.get("gap"))


def parity_charts(p: dict, window: str) -> list[str]:
    """Lab vs live overall, the gap per slice against the tolerance, the live rate per window against the lab's."""
    charts = [grouped_bars(f"{p['name']}: lab vs live pass rate, overall",
                           [("overall", [_bar(p.get("lab")), _bar(p.get("live"))])], [LAB, LIVE], unit_interval=True)]
    tolerance = p.get("tolerance")
    slices = sorted((s for s in p.get("slices") or [] if s.get("gap") is not None), key=lambda s: -s["gap"])
    if slices:
        flagged = {str(s["slice"]) for s in slices if tolerance is not None and s["gap"] > tolerance}
        charts.append(grouped_bars(f"{p['name']}: gap (lab − live) per slice, largest first",
                                   [(str(s["slice"]), [Bar(s["gap"])]) for s in slices], [("gap", GAP_COLOUR)],
                                   flagged=flagged, rule=tolerance, rule_label="tolerance"))
    windows = p.get("windows") or []
    if windows:
        categories = [w["window"] for w in windows]
        lab_rate = (p.get("lab") or {}).get("rate")
        points = [Point(w["window"], w["rate"], *(w.get("ci") or [None, None])[:2], colour=CHALLENGER_COLOUR,
                        label=f"{window_label(w['window'], window)} live (n={w.get('n')})")
                  for w in windows if w.get("rate") is not None]
        charts.append(line_chart(f"{p['name']}: live pass rate per {window} against the lab rate", categories,
                                 points, "live pass rate (95% CI)", line=lab_rate,
                                 line_label=f"lab {pct(lab_rate)}" if lab_rate is not None else "",
                                 tick_labels=[window_tick(c, window) for c in categories], unit_interval=True))
    return charts


def parity_tables(p: dict, window: str) -> list[str]:
    tables = []
    if p.get("slices"):
        columns = [Column("slice"), Column("lab", numeric=True), Column("live", numeric=True),
                   Column("gap", numeric=True)]
        rows = [Row([esc(s["slice"]), (rate_text(s.get("lab")), _key((s.get("lab") or {}).get("rate"))),
                     (rate_text(s.get("live")), _key((s.get("live") or {}).get("rate"))),
                     _gap_cell(s, p.get("tolerance"))]) for s in p["slices"]]
        tables.append(table(columns, rows, sortable=True, caption="pass rate per slice, lab vs live (95% CIs)"))
    if p.get("windows"):
        columns = [Column("window"), Column("live", numeric=True)]
        rows = [Row([esc(window_label(w["window"], window)), (rate_text(w), _key(w.get("rate")))])
                for w in p["windows"]]
        tables.append(details("live pass rate per window", table(columns, rows)))
    return tables


def parity_block(p: dict, window: str, first_of_name: bool) -> str:
    badge_html, _ = check_badge(p["status"], p["severity"])
    ident = f' id="{esc(anchor("parity", p["name"]))}"' if first_of_name else ""
    version = f"<code>{esc(p['model_version'])}</code> " if p.get("model_version") else ""
    title = (f"<h3>{esc(p['name'])} · {esc(p.get('model') or 'every model')} {version}"
             f"{badge_html}</h3><p>{esc(p['message'])}</p><p class=\"muted live-source\">"
             f"{esc(live_source_text(p))}</p>")
    facts = definition_list([("lab", rate_text(p.get("lab"))), ("live", rate_text(p.get("live"))),
                             ("gap (lab − live)", pct(p.get("gap"))), ("tolerance", pct(p.get("tolerance"))),
                             ("lab run", (p.get("lab") or {}).get("run_id") or "–")])
    return (f'<div class="check"{ident}>{title}{facts}' + "".join(parity_charts(p, window))
            + "".join(parity_tables(p, window)) + "</div>")


def parity_section(result: dict) -> Section | None:
    if not result["parity"]:
        return None
    seen: set[str] = set()
    blocks = []
    for p in result["parity"]:
        blocks.append(parity_block(p, result["window"], p["name"] not in seen))
        seen.add(p["name"])
    sources = sorted({live_source_text(p) for p in result["parity"]})
    lead = ("<p>Pass rate of the lab metric in the lab (the model's last evaluation) and live in the current "
            f"period ({esc('; '.join(sources))}), with 95% Wilson intervals. The gap is lab minus live: above the "
            "tolerance, the model works worse in production than the lab says.</p>")
    return Section("parity", "Prod-lab parity", lead + "".join(blocks))


# -- join coverage -------------------------------------------------------------------------------------------
