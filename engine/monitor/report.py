"""Terminal report of a monitor result (reads the result dict only)."""
from __future__ import annotations

from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from engine.console import console
from engine.report import live_source_text
from engine.report.layout import fit

STYLE = {"ok": "green", "alert": "red", "error": "bold red", "no_data": "bold red"}


def _status(status: str, severity: str) -> str:
    if status == "no_data":  # fails closed whatever the severity
        return "[bold red]NO DATA[/]"
    shown = status.upper() if status != "alert" or severity == "blocking" else "WARN"
    style = STYLE[status] if severity == "blocking" or status == "ok" else "yellow"
    return f"[{style}]{shown}[/]"


def coverage_rows(result: dict) -> list[tuple[str, str, dict]]:
    """(check, what, coverage) for every section that joins feedback to traces."""
    rows = []
    for k in result["kpis"]:
        for c in k.get("coverage") or []:
            if c.get("joined"):
                rows.append((f"kpi.{k['name']}", f"{c['aggregate']}" + (f" ({c['where']})" if c.get("where") else ""),
                             c))
    for p in result["parity"]:
        if p.get("coverage"):
            rows.append((f"parity.{p['name']}", "scored feedback", p["coverage"]))
    return rows


def _share(c: dict) -> str:
    return "-" if c["share"] is None else f"{c['share']:.1%}"


def _num(v, fmt: str = ".4g") -> str:
    return "-" if v is None else format(v, fmt)


def print_monitor(result: dict) -> None:
    p = result["periods"]
    head = (f"window {result['window']}, model {result['model'] or 'all'}; reference "
            f"{(p['ref_start'] or '-')[:16]} .. {(p['ref_end'] or '-')[:16]}, current "
            f"{(p['cur_start'] or '-')[:16]} .. {(p['last'] or '-')[:16]}")
    console.print(head)
    if result["online"]["metrics"]:
        t = Table(title=f"Online scores (sample rate {result['online']['rate']})", title_justify="left")
        for c in ("metric", "scored traces", "newly scored", "mean", "pass rate"):
            t.add_column(c)
        for m in result["online"]["metrics"]:
            t.add_row(m["metric"], str(m["n"]), str(result["online"]["newly_scored"].get(m["metric"], 0)),
                      _num(m["mean"]), _num(m["pass_rate"], ".3f"))
        console.print(fit(t))
    t = Table(title="Drift", title_justify="left")
    for c in ("rule", "feature", "test", "threshold", "status", "first alert", "detail"):
        t.add_column(c, overflow="fold")
    for d in result["drift"]:
        th = d["threshold"]
        bound = f"{th['kind']} {th['value']}" + (f" (= {th['bound']:.4g})" if th["kind"] == "sigma" and th.get("bound")
                                                  is not None else "")
        t.add_row(d["name"], d["feature"], d["test"], bound, _status(d["status"], d["severity"]),
                  (d["first_alert"] or "")[:16], d["message"])
    console.print(fit(t))
    t = Table(title="KPIs (current period)", title_justify="left")
    for c in ("kpi", "category", "value", "target", "status", "detail"):
        t.add_column(c, overflow="fold")
    for k in result["kpis"]:
        target = f"{k['target']['op']} {k['target']['value']}" if k["target"] else "-"
        t.add_row(k["name"], k["category"], _num(k["value"]), target, _status(k["status"], k["severity"]),
                  k["message"])
    console.print(fit(t))
    joins = coverage_rows(result)
    if joins:
        t = Table(title=f"Join coverage: feedback naming a monitored trace (current period; warn below "
                        f"{result['min_join_share']:g})", title_justify="left")
        for c in ("check", "feedback", "records", "matched", "share", "unmatched ids"):
            t.add_column(c, overflow="fold")
        for check, what, c in joins:  # the unmatched ids' examples are in the join warnings below
            low = c["share"] is not None and c["share"] < result["min_join_share"]
            t.add_row(check, what, f"{c['records']:,}", f"{c['matched']:,}",
                      f"[{'yellow' if low else 'green'}]{_share(c)}[/]" if c["records"] else "-",
                      f"{c['unmatched_ids']:,}")
        console.print(fit(t))
    for w in result.get("join_warnings") or []:
        console.print(f"[yellow]join warning[/] {w['check']}: {w['message']}", highlight=False)
    for r in result["parity"]:
        lines = [r["message"], live_source_text(r)]
        for s in r["slices"][:6]:
            lines.append(f"  {s['slice']:<16} lab {s['lab']['rate']:.1%} (n={s['lab']['n']})  live "
                         f"{s['live']['rate']:.1%} (n={s['live']['n']}, 95% CI {s['live']['ci'][0]:.1%}-"
                         f"{s['live']['ci'][1]:.1%})  gap {s['gap']:+.1%}")
        # Text that wraps inside the panel: the console's soft wrap would otherwise crop long lines at its border
        body = Text("\n".join(lines), no_wrap=False, overflow="fold")
        console.print(Panel(body, title=f"Prod-lab parity: {r['name']} / {r['model'] or 'every model'}"
                            + (f" ({r['model_version']})" if r["model_version"] else "") + " "
                            f"{_status(r['status'], r['severity'])}", title_align="left"))
    stale = result.get("stale_runs") or []
    if stale:
        console.print(f"[yellow]{len(stale)} earlier monitor run(s) are STALE[/]: they read records of retracted "
                      f"batch(es) {', '.join(sorted({b for s in stale for b in s['retracted_batches']}))}; their stored "
                      f"results ({', '.join(s['run_id'] for s in stale[:3])}{' ...' if len(stale) > 3 else ''}) "
                      f"no longer describe the data", highlight=False)
    verdict = "[bold green]HEALTHY[/]" if result["healthy"] else "[bold red]ALERT[/]"
    console.print(f"{verdict}: {len(result['blocking_alerts'])} blocking alert(s)"
                  + (f" ({', '.join(result['blocking_alerts'])})" if result["blocking_alerts"] else "")
                  + f", {len(result['warnings'])} warning(s)"
                  + (f", {len(result['join_warnings'])} join warning(s)" if result.get("join_warnings") else ""))
