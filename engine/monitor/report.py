"""Terminal report of a monitor result (reads the result dict only)."""
from __future__ import annotations

from rich.panel import Panel
from rich.table import Table

from engine.console import console

STYLE = {"ok": "green", "alert": "red", "error": "bold red"}


def _status(status: str, severity: str) -> str:
    shown = status.upper() if status != "alert" or severity == "blocking" else "WARN"
    style = STYLE[status] if severity == "blocking" or status == "ok" else "yellow"
    return f"[{style}]{shown}[/]"


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
        console.print(t)
    t = Table(title="Drift", title_justify="left")
    for c in ("rule", "feature", "test", "threshold", "status", "first alert", "detail"):
        t.add_column(c, overflow="fold")
    for d in result["drift"]:
        th = d["threshold"]
        bound = f"{th['kind']} {th['value']}" + (f" (= {th['bound']:.4g})" if th["kind"] == "sigma" and th.get("bound")
                                                  is not None else "")
        t.add_row(d["name"], d["feature"], d["test"], bound, _status(d["status"], d["severity"]),
                  (d["first_alert"] or "")[:16], d["message"])
    console.print(t)
    t = Table(title="KPIs (current period)", title_justify="left")
    for c in ("kpi", "category", "value", "target", "status", "detail"):
        t.add_column(c, overflow="fold")
    for k in result["kpis"]:
        target = f"{k['target'].get('op', '')} {k['target'].get('value', '')}" if k["target"] else "-"
        t.add_row(k["name"], k["category"], _num(k["value"]), target, _status(k["status"], k["severity"]),
                  k["message"])
    console.print(t)
    for r in result["parity"]:
        lines = [r["message"]]
        for s in r["slices"][:6]:
            lines.append(f"  {s['slice']:<16} lab {s['lab']['rate']:.1%} (n={s['lab']['n']})  live "
                         f"{s['live']['rate']:.1%} (n={s['live']['n']}, 95% CI {s['live']['ci'][0]:.1%}-"
                         f"{s['live']['ci'][1]:.1%})  gap {s['gap']:+.1%}")
        console.print(Panel("\n".join(lines), title=f"Prod-lab parity: {r['name']} / {r['model']} ({r['model_version']}) "
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
                  + f", {len(result['warnings'])} warning(s)")
