"""The HTML page of a monitor result (schemas/monitor_result.schema.json), built from the result alone.

Sections: every check at a glance, drift (per feature the reference and current distributions, per rule the
statistic per window against its bound), KPIs by category against their targets, prod-lab parity, and the
online scoring summary.
"""
from __future__ import annotations

import math

from engine.report.html import (
    Column,
    Page,
    Row,
    Section,
    badge,
    details,
    esc,
    page_for,
    table,
)
from engine.report.svg import (
    ALERT_COLOUR,
    BASELINE_COLOUR,
    CHALLENGER_COLOUR,
    Point,
    fmt,
    histogram,
    line_chart,
)
from engine.report.monitor_format import CATEGORIES, OK_COLOUR, _alert_link, anchor, check_badge, number_cell, pct, target_text, window_label, window_tick
from engine.report.monitor_parity import _key, parity_section


def checks(result: dict) -> list[tuple[str, dict]]:
    return ([("drift", d) for d in result["drift"]] + [("kpi", k) for k in result["kpis"]]
            + [("parity", p) for p in result["parity"]])


def overview_section(result: dict) -> Section:
    columns = [Column("check"), Column("kind"), Column("severity"), Column("status"), Column("detail", wide=True)]
    rows = []
    for section, c in checks(result):
        label = c["name"] + (f" / {c['model'] or 'every model'}" + (f" ({c['model_version']})" if c["model_version"]
                                                                    else "") if section == "parity" else "")
        rows.append(Row([f'<a href="#{esc(anchor(section, c["name"]))}">{esc(label)}</a>', esc(section),
                         esc(c["severity"]), check_badge(c["status"], c["severity"]), esc(c["message"])]))
    counts = {s: sum(1 for _, c in checks(result) if c["status"] == s) for s in ("ok", "alert", "error", "no_data")}
    lead = (f"<p>{len(rows)} checks: {counts['ok']} ok, {counts['alert']} alerting, {counts['error']} could not be "
            f"computed (an error counts as an alert), {counts['no_data']} with no data (computed from zero rows: "
            "a blocking alert whatever the severity). A blocking alert makes the run ALERT (exit code 1); a warning "
            "is reported only.</p>")
    return Section("overview", "Every check", lead + table(columns, rows, table_id="checks-table", sortable=True))


# -- drift ---------------------------------------------------------------------------------------------------

def threshold_text(rule: dict) -> str:
    th = rule["threshold"]
    if th["kind"] == "p_value":
        return f"alert when p < {fmt(th['value'])}"
    if th["kind"] == "sigma":
        bound = th.get("bound")
        return (f"alert when {rule['test']} > its mean + {fmt(th['value'])}σ over the reference windows"
                + (f" = {fmt(bound)}" if bound is not None else " (not computable)"))
    return f"alert when {rule['test']} > {fmt(th['value'])}"


def _neg_log10(p: float | None) -> float | None:
    if p is None:
        return None
    return math.inf if p <= 0 else -math.log10(p)


def drift_chart(rule: dict, window: str) -> str:
    """The statistic per window against the rule's bound; for p-value rules -log10(p) against -log10(bound), so
    that in both cases a point above the dashed line is an alert."""
    windows = rule["windows"]
    categories = [w["window"] for w in windows]
    by_p = rule["threshold"]["kind"] == "p_value"
    bound = rule["threshold"].get("bound")
    points = []
    for w in windows:
        y = _neg_log10(w.get("p_value")) if by_p else w["statistic"]
        if y is None:
            continue
        what = f"p = {fmt(w.get('p_value'))}, {rule['test']} = {fmt(w['statistic'])}" if by_p else rule["test"]
        points.append(Point(w["window"], y, colour=ALERT_COLOUR if w["alert"] else OK_COLOUR,
                            label=f"{window_label(w['window'], window)} (n={w.get('n', '?')}) "
                                  f"{'ALERT ' if w['alert'] else ''}{what}"))
    if by_p:
        line = _neg_log10(bound) if bound is not None else None
        line_label, y_label = f"p = {fmt(bound)}", "−log10 p-value"
    else:
        line, y_label = bound, rule["test"]
        line_label = (f"mean + {fmt(rule['threshold']['value'])}σ = {fmt(bound)}" if rule["threshold"]["kind"] ==
                      "sigma" else f"threshold {fmt(bound)}")
    first = rule.get("first_alert")
    return line_chart(f"{rule['name']}: {rule['test']} on {rule['feature']} per {window}", categories, points,
                      y_label, line=line, line_label=line_label, marker=first,
                      marker_label=f"first alert {window_label(first, window)}" if first else "",
                      tick_labels=[window_tick(c, window) for c in categories])


def drift_window_table(rule: dict, window: str) -> str:
    columns = [Column("window"), Column("n", numeric=True), Column(rule["test"], numeric=True),
               Column("p-value", numeric=True), Column("alert"), Column("details")]
    rows = []
    for w in rule["windows"]:
        extra = ", ".join(f"{esc(k)} {fmt(v) if isinstance(v, float) else esc(v)}"
                          for k, v in (w.get("details") or {}).items() if not isinstance(v, (list, dict)))
        first = w["window"] == rule.get("first_alert")
        rows.append(Row([f'<span class="nowrap">{esc(window_label(w["window"], window))}</span>'
                         + (" " + badge("first alert", "bad") if first else ""),
                         (esc(w.get("n")), w.get("n") or 0), number_cell(w["statistic"]),
                         number_cell(w.get("p_value")), badge("alert", "bad") if w["alert"] else "",
                         f'<span class="muted">{extra}</span>']))
    return table(columns, rows, table_id=f"drift-windows-{rule['name']}")


def current_distribution(rules: list[dict], labels: list[str]) -> tuple[list[str], list[float]] | None:
    """The current period's share per bin, when the result carries it: a rule's `current` {labels,
    proportions}, or per window `details.current_proportions` (aligned with `details.current_labels`, else
    with the reference labels), pooled over the windows weighted by their size."""
    for rule in rules:
        current = rule.get("current")
        if isinstance(current, dict) and current.get("labels") and current.get("proportions"):
            return list(current["labels"]), list(current["proportions"])
    for rule in rules:
        shares: dict[str, float] = {}
        total = 0
        for w in rule["windows"]:
            d = w.get("details") or {}
            q = d.get("current_proportions")
            if not isinstance(q, list) or not w.get("n"):
                continue
            for label, share in zip(d.get("current_labels") or labels, q):
                shares[label] = shares.get(label, 0.0) + (share or 0.0) * w["n"]
            total += w["n"]
        if total:
            ordered = list(labels) + [label for label in shares if label not in labels]
            return ordered, [shares.get(label, 0.0) / total for label in ordered]
    return None


def feature_block(feature: str, rules: list[dict], result: dict) -> str:
    parts = [f'<h3 id="feature-{esc(feature)}">Feature <code>{esc(feature)}</code></h3>']
    binnings: dict[tuple, list[dict]] = {}
    for rule in rules:
        ref = rule.get("reference") or {}
        if ref.get("labels") and ref.get("proportions"):
            binnings.setdefault(tuple(ref["labels"]), []).append(rule)
    if not binnings:
        parts.append('<p class="muted">No reference distribution in the result (the rules compare against the '
                     "previous window, or the reference could not be fitted).</p>")
    for labels, group in binnings.items():
        ref = group[0]["reference"]
        current = current_distribution(group, list(labels))
        names = ", ".join(r["name"] for r in group)
        if current:
            all_labels, cur = current
            ref_by_label = dict(zip(labels, ref["proportions"]))
            series = [("reference", BASELINE_COLOUR, [ref_by_label.get(label) for label in all_labels]),
                      ("current", CHALLENGER_COLOUR, cur)]
            note = (f"Share of values per bin: the reference (n={ref.get('n', '?')}) against the whole current "
                    f"period, pooled over its windows. Bins as fitted for {names}.")
        else:
            all_labels = list(labels)
            series = [("reference", BASELINE_COLOUR, list(ref["proportions"]))]
            note = (f"Share of values per bin of the reference (n={ref.get('n', '?')}, {ref.get('n_missing', 0)} "
                    f"missing), as fitted for {names}. Reference only: the result does not carry the current "
                    "period's shares per bin.")
        parts.append(f'<p class="muted">{esc(note)}</p>' + histogram(
            f"{feature}: distribution, {' vs '.join(s[0] for s in series)}"
            + (f" (bins of {names})" if len(binnings) > 1 else ""), all_labels, series))
    for rule in rules:
        parts.append(drift_rule_block(rule, result["window"]))
    return "".join(parts)


def drift_rule_block(rule: dict, window: str) -> str:
    badge_html, _ = check_badge(rule["status"], rule["severity"])
    first = rule.get("first_alert")
    head = (f'<h4>{esc(rule["name"])} {badge_html}</h4>'
            f"<p>{esc(rule['test'])} on <code>{esc(rule['feature'])}</code>, {esc(rule['severity'])}; "
            f"{esc(threshold_text(rule))}."
            + (f' First alert: <b class="first-alert">{esc(window_label(first, window))}</b>.' if first else "")
            + f"<br>{esc(rule['message'])}</p>")
    body = (drift_chart(rule, window) + details("values per window", drift_window_table(rule, window))
            if rule["windows"] else '<p class="muted">No windows to chart.</p>')
    return f'<div class="check" id="{esc(anchor("drift", rule["name"]))}">{head}{body}</div>'


def drift_section(result: dict) -> Section | None:
    if not result["drift"]:
        return None
    columns = [Column("rule"), Column("feature"), Column("test"), Column("threshold"), Column("severity"),
               Column("status"), Column("first alert"), Column("detail", wide=True)]
    rows = [Row([f'<a href="#{esc(anchor("drift", d["name"]))}">{esc(d["name"])}</a>', esc(d["feature"]),
                 esc(d["test"]), esc(threshold_text(d)), esc(d["severity"]), check_badge(d["status"], d["severity"]),
                 f'<span class="nowrap">{esc(window_label(d["first_alert"], result["window"]))}</span>'
                 if d.get("first_alert") else "",
                 esc(d["message"])]) for d in result["drift"]]
    lead = ("<p>Each rule compares every current window with the reference. Charts: the statistic per window, "
            "the dashed line is the rule's bound, red points alert and the dotted line marks the first alert "
            "(p-value rules are drawn as −log10 p, so above the line is an alert there too).</p>")
    features: dict[str, list[dict]] = {}
    for d in result["drift"]:
        features.setdefault(d["feature"], []).append(d)
    body = lead + table(columns, rows, table_id="drift-table", sortable=True)
    body += "".join(feature_block(f, rules, result) for f, rules in features.items())
    return Section("drift", "Drift", body)


# -- KPIs ----------------------------------------------------------------------------------------------------

def kpi_chart(kpi: dict, categories: list[str], window: str) -> str:
    points = [Point(w["window"], w["value"], colour=ALERT_COLOUR if w.get("meets_target") is False else OK_COLOUR,
                    label=f"{window_label(w['window'], window)}"
                          + (" misses the target" if w.get("meets_target") is False else ""))
              for w in kpi["windows"] if w.get("value") is not None]
    target = kpi.get("target") or {}
    return line_chart(f"{kpi['name']} per {window} against its target", categories, points, kpi["name"],
                      line=target.get("value"), line_label=f"target {target_text(target)}",
                      tick_labels=[window_tick(c, window) for c in categories], width=560, height=240)


def kpi_category_block(category: str, kpis: list[dict], window: str) -> str:
    columns = [Column("KPI"), Column("target"), Column("current period", numeric=True), Column("severity"),
               Column("status"), Column("detail", wide=True)]
    rows = []
    for k in kpis:
        models = k.get("models") or []
        per_model = ("<br><span class=\"muted\">per model version: " + ", ".join(
            f"{esc(m['model'])} {fmt(m['value'])}" for m in models) + "</span>") if len(models) > 1 else ""
        rows.append(Row([f'<a href="#{esc(anchor("kpi", k["name"]))}">{esc(k["name"])}</a>',
                         esc(target_text(k.get("target"))), number_cell(k["value"]), esc(k["severity"]),
                         check_badge(k["status"], k["severity"]), esc(k["message"]) + per_model]))
    parts = [f'<h3 id="kpis-{esc(category)}">{esc(category)}</h3>',
             table(columns, rows, table_id=f"kpis-{category}-table", sortable=True)]
    windows = sorted({w["window"] for k in kpis for w in k["windows"]})
    charts = []
    for k in kpis:
        badge_html, _ = check_badge(k["status"], k["severity"])
        chart = (kpi_chart(k, windows, window) if any(w.get("value") is not None for w in k["windows"])
                 else '<p class="muted">No per-window values.</p>')
        charts.append(f'<div class="check" id="{esc(anchor("kpi", k["name"]))}"><h4>{esc(k["name"])} {badge_html}</h4>'
                      f"{chart}</div>")
    parts.append(f'<div class="charts">{"".join(charts)}</div>')
    if windows:
        columns = [Column("window")] + [Column(f"{k['name']} ({target_text(k.get('target'))})", numeric=True)
                                        for k in kpis]
        by_kpi = [{w["window"]: w for w in k["windows"]} for k in kpis]
        rows = []
        for win in windows:
            cells: list = [esc(window_label(win, window))]
            for values in by_kpi:
                w = values.get(win)
                if w is None or w.get("value") is None:
                    cells.append(("–", ""))
                elif w.get("meets_target") is False:
                    cells.append((f'<span class="neg" title="misses the target">{fmt(w["value"])} ✗</span>',
                                  w["value"]))
                else:
                    cells.append(number_cell(w["value"]))
            rows.append(Row(cells))
        parts.append(table(columns, rows, table_id=f"kpis-{category}-windows", sortable=True,
                           caption=f"{category} KPIs per {window} (✗ misses the target)"))
    return "".join(parts)


def kpi_section(result: dict) -> Section | None:
    if not result["kpis"]:
        return None
    by_category: dict[str, list[dict]] = {}
    for k in result["kpis"]:
        by_category.setdefault(k["category"], []).append(k)
    order = [c for c in CATEGORIES if c in by_category] + sorted(set(by_category) - set(CATEGORIES))
    lead = ("<p>Each KPI is checked on the whole current period against its target; the charts show it per "
            "window (dashed: the target, red: windows that miss it).</p>")
    return Section("kpis", "KPIs against targets",
                   lead + "".join(kpi_category_block(c, by_category[c], result["window"]) for c in order))


# -- parity --------------------------------------------------------------------------------------------------

LAB, LIVE = ("lab", BASELINE_COLOUR), ("live", CHALLENGER_COLOUR)


def join_section(result: dict) -> Section | None:
    """How many feedback records each KPI and parity check could tie to a monitored trace."""
    from engine.monitor.report import coverage_rows

    rows_in = coverage_rows(result)
    if not rows_in:
        return None
    floor = result["min_join_share"]  # (every result with join coverage carries it)
    columns = [Column("check"), Column("feedback"), Column("records", numeric=True), Column("matched", numeric=True),
               Column("share", numeric=True), Column("unmatched ids", numeric=True), Column("examples", wide=True)]
    rows = []
    for check, what, c in rows_in:
        low = c["share"] is None or c["share"] < floor
        share = f'<span class="{"neg" if low else ""}">{pct(c["share"])}</span>'
        rows.append(Row([f"<code>{esc(check)}</code>", esc(what), (esc(f"{c['records']:,}"), c["records"]),
                         (esc(f"{c['matched']:,}"), c["matched"]), (share, _key(c["share"])),
                         (esc(f"{c['unmatched_ids']:,}"), c["unmatched_ids"]),
                         ", ".join(f"<code>{esc(e)}</code>" for e in c["examples"]) or "–"]))
    warnings = "".join(f"<li><code>{esc(w['check'])}</code>: {esc(w['message'])}</li>"
                       for w in result.get("join_warnings") or [])
    lead = (f"<p>Feedback of the current period that names a monitored trace (by trace id or span id). A share "
            f"below {esc(fmt(floor))} (monitor.min_join_share) is a join warning; zero matched records make the "
            f"check NO DATA.</p>" + (f"<ul>{warnings}</ul>" if warnings else ""))
    return Section("joins", "Join coverage", lead + table(columns, rows, table_id="joins-table", sortable=True))


# -- online scoring ------------------------------------------------------------------------------------------

def online_section(result: dict) -> Section:
    online = result["online"]
    columns = [Column("metric"), Column("scored traces (current period)", numeric=True),
               Column("newly scored this run", numeric=True), Column("mean", numeric=True),
               Column("pass rate", numeric=True)]
    newly = online.get("newly_scored") or {}
    rows = [Row([esc(m["metric"]), (esc(m["n"]), m["n"]), (esc(newly.get(m["metric"], 0)), newly.get(m["metric"], 0)),
                 number_cell(m["mean"]), (pct(m["pass_rate"]), "" if m["pass_rate"] is None else m["pass_rate"])])
            for m in online["metrics"]]
    rate = online.get("rate")
    lead = (f"<p>A sample of the traces (rate {esc(fmt(rate))}) is scored with the lab's reference-free metrics; "
            "the scores feed drift features and parity.</p>" if rate is not None else "")
    body = table(columns, rows, table_id="online-table", sortable=True) if rows else \
        '<p class="muted">No online scores in the current period.</p>'
    return Section("online", "Online scoring", lead + body)


# -- page ----------------------------------------------------------------------------------------------------

def period_text(start: str | None, end: str | None) -> str:
    if not start:
        return "(none)"
    return f"{start[:16].replace('T', ' ')} to {(end or '?')[:16].replace('T', ' ')}"


def provenance(result: dict) -> list[tuple[str, str]]:
    p = result["periods"]
    items = [("run", result["run_id"]), ("started at", result["started_at"]),
             ("monitor config hash", result["config_hash"]),
             ("git commit", result.get("git_commit") or "(not a git checkout)"), ("window", result["window"]),
             ("model", result.get("model") or "all models"),
             ("reference period", period_text(p.get("ref_start"), p.get("ref_end"))),
             ("current period", period_text(p.get("cur_start"), p.get("last") or p.get("cur_end")))]
    if result.get("store"):
        items.append(("store", result["store"]))
    return items


@page_for("monitor")
def monitor_page(result: dict) -> Page:
    verdict = "HEALTHY" if result["healthy"] else "ALERT"
    model = result.get("model")
    heading = (f'<span class="verdict">{verdict}</span> · monitor of '
               + (f"<code>{esc(model)}</code>" if model else "all models") + f" per {esc(result['window'])}")
    blocking, warnings = result["blocking_alerts"], result["warnings"]
    lead = (f"{len(blocking)} blocking alert(s): {', '.join(_alert_link(a) for a in blocking)}" if blocking
            else "no blocking alert")
    lead += (f"; {len(warnings)} warning(s): {', '.join(_alert_link(a) for a in warnings)}" if warnings
             else "; no warning")
    if result.get("join_warnings"):
        lead += f"; {len(result['join_warnings'])} join warning(s) (see Join coverage)"
    sections = [s for s in (overview_section(result), drift_section(result), kpi_section(result),
                            parity_section(result), join_section(result), online_section(result)) if s]
    return Page(f"Flywheel monitor {verdict}", "pass" if result["healthy"] else "fail", heading, lead,
                provenance(result), sections)
