"""Self-contained HTML reports: one file, no network, readable without JavaScript.

A report is built from a command's result only (the gate result, a sweep's leaderboard, later the monitor's
result). Each command has a *page builder* registered with `@page_for(command)` that turns its result into a
`Page`: a title, a provenance header and a list of `Section`s. This module owns the document around it: the
inline stylesheet, the small inline script that makes tables sortable and case lists filterable (the tables
are plain HTML and complete without it), and a Content-Security-Policy that forbids every fetch, so a report
that tried to load anything from the network would fail visibly in the browser instead of silently.

To add a report for another command (e.g. `monitor`): write `engine/report/monitor_html.py` with a function
decorated `@page_for("monitor")` returning a `Page` built from these helpers, and list the module in
`_BUILDERS`.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from pathlib import Path

_BUILDERS = ("engine.report.gate_html", "engine.report.sweep_html", "engine.report.monitor_html")
PAGES: dict[str, Callable[..., Page]] = {}


def page_for(command: str) -> Callable:
    """Register a page builder for results whose `command` field is `command`."""
    def register(fn: Callable[..., Page]) -> Callable[..., Page]:
        PAGES[command] = fn
        return fn
    return register


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    body: str  # HTML


@dataclass(frozen=True)
class Page:
    title: str  # plain text, the browser tab's
    status: str | None  # "pass" | "fail" | None: the colour of the banner
    heading: str  # HTML: the banner's headline
    lead: str  # HTML: a line under it
    provenance: list[tuple[str, str]]  # (label, plain text)
    sections: list[Section] = field(default_factory=list)


# -- building blocks ---------------------------------------------------------------------------------------

def esc(value) -> str:
    return "" if value is None else escape(str(value))


def badge(text: str, kind: str) -> str:
    return f'<span class="badge {kind}">{esc(text)}</span>'


def status_badge(status: str) -> str:
    return badge(status.upper(), {"pass": "ok", "fail": "bad", "error": "bad"}.get(status, "warn"))


@dataclass(frozen=True)
class Column:
    label: str
    numeric: bool = False
    wide: bool = False  # long free text (inputs, outputs): wraps, keeps line breaks


@dataclass
class Row:
    cells: list  # each an HTML string, or (HTML, sort key)
    tags: tuple[str, ...] = ()
    production: bool = False
    id: str | None = None


def table(columns: list[Column], rows: list[Row], table_id: str | None = None, sortable: bool = False,
          caption: str | None = None) -> str:
    """A plain HTML table. Sort keys go to `data-sort`, row tags and production origin to data attributes the
    filter script reads."""
    classes = "data" + (" sortable" if sortable else "")
    head = "".join(f'<th scope="col" class="{"num" if c.numeric else ""}">{esc(c.label)}</th>' for c in columns)
    body = []
    for row in rows:
        attrs = ""
        if row.id:
            attrs += f' id="{esc(row.id)}"'
        if row.tags:
            attrs += f' data-tags="|{esc("|".join(row.tags))}|"'
        if row.production:
            attrs += ' data-production="1" class="production"'
        cells = []
        for column, cell in zip(columns, row.cells):
            html, key = cell if isinstance(cell, tuple) else (cell, None)
            cls = "num" if column.numeric else ("text" if column.wide else "")
            sort = f' data-sort="{esc(key)}"' if key is not None else ""
            cells.append(f'<td class="{cls}"{sort}>{html}</td>')
        body.append(f"<tr{attrs}>{''.join(cells)}</tr>")
    tid = f' id="{esc(table_id)}"' if table_id else ""
    cap = f"<caption>{caption}</caption>" if caption else ""
    return (f'<div class="scroll"><table class="{classes}"{tid}>{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def filterable(table_id: str, rows: list[Row], table_html: str) -> str:
    """Filter controls for a case table (text search, capability tag, production-only). Hidden until the
    script runs: without JavaScript the full table shows and no dead control does."""
    tags = sorted({t for r in rows for t in r.tags})
    options = "".join(f'<option value="{esc(t)}">{esc(t)}</option>' for t in tags)
    production = ('<label><input type="checkbox" name="production"> from production only</label>'
                  if any(r.production for r in rows) else "")
    controls = (f'<div class="filters" data-table="{esc(table_id)}" hidden>'
                f'<input type="search" placeholder="filter cases by any text" aria-label="filter cases">'
                f'<select aria-label="capability tag"><option value="">all tags</option>{options}</select>'
                f'{production}<span class="count"></span></div>')
    return controls + table_html


def definition_list(items: Iterable[tuple[str, str]]) -> str:
    return '<dl class="prov">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items) + "</dl>"


def details(summary: str, body: str, open_: bool = False) -> str:
    return f'<details{" open" if open_ else ""}><summary>{summary}</summary>{body}</details>'


# -- the document ------------------------------------------------------------------------------------------

_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'")

_CSS = """
:root{--ok:#2b8a3e;--bad:#c92a2a;--warn:#e67700;--ink:#1d2329;--muted:#5c6670;--line:#dfe3e8;--prod:#862e9c}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--ink);background:#f6f7f9}
header{padding:18px 28px;background:#fff;border-bottom:4px solid var(--line)}
header.pass{border-color:var(--ok)}header.fail{border-color:var(--bad)}
h1{margin:0 0 4px;font-size:22px}h2{font-size:18px;margin:0 0 10px}h3{font-size:15px;margin:18px 0 6px}
header.pass h1 .verdict{color:var(--ok)}header.fail h1 .verdict{color:var(--bad)}
nav{padding:6px 28px;background:#fff;border-bottom:1px solid var(--line);position:sticky;top:0;z-index:1}
nav a{margin-right:14px;color:#1c4fb0;text-decoration:none}
main{padding:8px 28px 40px;max-width:1500px}
section{background:#fff;border:1px solid var(--line);border-radius:6px;padding:16px 18px;margin:16px 0}
.prov{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:10px 0 0;font-size:13px}
.prov dt{color:var(--muted)}.prov dd{margin:0;font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
.muted{color:var(--muted)}.nowrap{white-space:nowrap}
.badge{display:inline-block;padding:0 6px;border-radius:3px;font-size:12px;font-weight:600;color:#fff}
.badge.ok{background:var(--ok)}.badge.bad{background:var(--bad)}.badge.warn{background:var(--warn)}
.badge.prod{background:var(--prod)}.badge.tag{background:#e9ecef;color:#333;font-weight:400}
.scroll{overflow-x:auto}
table.data{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0}
table.data caption{text-align:left;color:var(--muted);padding:4px 0}
table.data th,table.data td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
table.data th{background:#f1f3f5;position:sticky;top:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.text{min-width:14em;max-width:34em;white-space:pre-wrap;overflow-wrap:anywhere}
tr.production td:first-child{border-left:4px solid var(--prod)}
tr[hidden]{display:none}
mark{background:#fff3bf}
.error,.neg{color:var(--bad)}.pos{color:var(--ok)}
header p{margin:2px 0 0}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
button.sort{all:unset;cursor:pointer}button.sort::after{content:" \\2195";color:#999}
th[aria-sort=ascending] button.sort::after{content:" \\2191";color:#333}
th[aria-sort=descending] button.sort::after{content:" \\2193";color:#333}
.filters{display:flex;gap:12px;align-items:center;margin:8px 0;flex-wrap:wrap}
.filters input[type=search]{width:22em;padding:4px 6px}
.count{color:var(--muted)}
svg.chart{display:block;max-width:100%;height:auto;margin:8px 0}
.charts{display:flex;flex-wrap:wrap;gap:8px 28px}
details>summary{cursor:pointer;margin:8px 0}
footer{padding:0 28px 24px;color:var(--muted);font-size:12px}
@media print{nav,.filters{display:none}section{break-inside:avoid}}
"""

# Progressive enhancement only: sort on header click, filter case tables. Everything is readable without it.
_JS = """
(function () {
  "use strict";
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };
  function key(cell, numeric) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (!numeric) { return raw.toLowerCase(); }
    var v = parseFloat(raw);
    return isNaN(v) ? -Infinity : v;
  }
  each(document.querySelectorAll("table.sortable"), function (table) {
    var heads = table.tHead.rows[0].cells;
    each(heads, function (th, col) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.textContent = th.textContent;
      th.textContent = "";
      th.appendChild(button);
      button.addEventListener("click", function () {
        var numeric = th.classList.contains("num");
        var asc = th.getAttribute("aria-sort") !== "ascending";
        each(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col], numeric), y = key(b.cells[col], numeric);
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  each(document.querySelectorAll(".filters"), function (box) {
    var table = document.getElementById(box.getAttribute("data-table"));
    var text = box.querySelector("input[type=search]");
    var tag = box.querySelector("select");
    var prod = box.querySelector("input[type=checkbox]");
    var count = box.querySelector(".count");
    function apply() {
      var q = text.value.trim().toLowerCase(), t = tag.value, shown = 0, rows = table.tBodies[0].rows;
      each(rows, function (r) {
        var ok = (!q || r.textContent.toLowerCase().indexOf(q) >= 0) &&
          (!t || (r.getAttribute("data-tags") || "").indexOf("|" + t + "|") >= 0) &&
          (!prod || !prod.checked || r.hasAttribute("data-production"));
        r.hidden = !ok;
        if (ok) { shown += 1; }
      });
      count.textContent = shown + " of " + rows.length + " cases shown";
    }
    [text, tag, prod].forEach(function (el) {
      if (el) { el.addEventListener("input", apply); el.addEventListener("change", apply); }
    });
    box.hidden = false;
    apply();
  });
})();
"""


def document(page: Page) -> str:
    nav = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in page.sections)
    sections = "".join(f'<section id="{esc(s.id)}"><h2>{esc(s.title)}</h2>{s.body}</section>'
                       for s in page.sections)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    status = f' class="{page.status}"' if page.status else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(page.title)}</title><style>{_CSS}</style></head><body>"
        f"<header{status}><h1>{page.heading}</h1><p>{page.lead}</p>{definition_list(page.provenance)}</header>"
        f"<nav>{nav}</nav><main>{sections}</main>"
        f"<footer>Generated by Flywheel at {generated} from the command's result only.</footer>"
        f"<script>{_JS}</script></body></html>\n")


def render_html(result: dict, **context) -> str:
    """The report of one command result (dispatched on `result["command"]`)."""
    for module in _BUILDERS:
        importlib.import_module(module)  # registers the page builders
    command = result.get("command")
    if command not in PAGES:
        raise ValueError(f"no HTML report for results of command {command!r}; available: {', '.join(sorted(PAGES))}")
    return document(PAGES[command](result, **context))


def report_path(cfg: dict) -> str | None:
    """Where the command's HTML report goes (`report.path`; a plain string from an older config works too)."""
    report = cfg.get("report")
    return report.get("path") if isinstance(report, dict) else report


def report_options(cfg: dict) -> dict:
    """The page builders' options from the `report` config section (show_pii)."""
    report = cfg.get("report")
    return {"show_pii": bool(report.get("show_pii"))} if isinstance(report, dict) else {}


def write_html(target: Path, result: dict, **context) -> Path:
    from engine.outputs import write_text
    from engine.redaction import scrub_value

    return write_text(target, render_html(scrub_value(result), **context))
