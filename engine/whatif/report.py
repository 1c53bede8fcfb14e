"""Terminal and Markdown renderings of what-if results (they read the result dict only)."""
from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from engine.console import console

ARROW = "→"
STATUS_STYLE = {"flipped": "bold red", "changed": "yellow", "refused": "bold magenta", "unchanged": "green"}


def _cell(text) -> str:
    return escape(str(text)) if text is not None else "-"


def _md(text) -> str:
    return str(text).replace("|", "/").replace("\n", " ") if text is not None else "-"


def _verdict(rec: dict) -> str:
    v = rec["verdict"]
    return v["before"] if v["after"] in (None, v["before"]) else f"{v['before']} {ARROW} {v['after']}"


def _changes(rec: dict) -> list[str]:
    if rec["status"] == "refused":
        return [f"refused: {rec['reason']}"]
    return [c["explanation"] for c in rec["changes"] if c["outcome_changed"]]


# -- gate ---------------------------------------------------------------------------------------------------

def print_whatif_gate(result: dict) -> None:
    s = result["summary"]
    console.print(f"What-if gate: [bold]{escape(result['policy']['label'])}[/] against "
                  f"{escape(result['against']['label'])}; {s['decisions']} stored decision(s), "
                  f"{s['replayed']} replayed, {result['model_calls']} model calls", highlight=False)
    shown = [r for r in result["decisions"] if r["status"] != "unchanged"]
    if shown:
        table = Table(title_justify="left", show_lines=True)
        for col in ("decision", "decided", "challenger vs baseline", "verdict", "what changes"):
            table.add_column(col, overflow="fold")
        for rec in shown:
            style = STATUS_STYLE[rec["status"]]
            rescored = f"\n[dim]re-scored: {', '.join(rec['rescored'])}[/]" if rec["rescored"] else ""
            table.add_row(_cell(rec["decision_id"]), rec["decided_at"][:19],
                          f"{_cell(rec['challenger']['name'])} vs {_cell(rec['baseline']['name'])}",
                          f"[{style}]{_cell(_verdict(rec))}[/]",
                          "\n".join(_cell(c) for c in _changes(rec)) + rescored)
        console.print(table)
    style = "bold green" if not shown else "bold red"
    console.print(f"[{style}]{escape(result['summary_line'])}[/]", highlight=False)


def whatif_gate_markdown(result: dict) -> str:
    s = result["summary"]
    lines = ["## Flywheel what-if: gate policy", "", f"**{result['summary_line']}**", "",
             f"Policy: {result['policy']['label']}, compared with {result['against']['label']}; "
             f"{s['decisions']} stored decision(s) selected, {s['replayed']} replayed, "
             f"{result['model_calls']} model calls.",
             "Metric definitions: " + (", ".join(f"`{m}` `{h}`" for m, h in result["metric_hashes"].items()) or "-")
             + "."]
    shown = [r for r in result["decisions"] if r["status"] not in ("unchanged", "refused")]
    if shown:
        lines += ["", "| decision | decided | challenger vs baseline | verdict | what changes |", "|---|---|---|---|---|"]
        for rec in shown:
            verdict = _verdict(rec)
            verdict = f"**{verdict}**" if rec["status"] == "flipped" else verdict
            lines.append(f"| `{rec['decision_id']}` | {rec['decided_at'][:10]} | `{_md(rec['challenger']['name'])}` vs "
                         f"`{_md(rec['baseline']['name'])}` | {verdict} | "
                         + "<br>".join(_md(c) for c in _changes(rec))
                         + (f"<br>_re-scored: {', '.join(rec['rescored'])}_" if rec["rescored"] else "") + " |")
    refused = [r for r in result["decisions"] if r["status"] == "refused"]
    if refused:
        lines += ["", f"<details><summary>{len(refused)} decision(s) could not be replayed</summary>", "",
                  "| decision | decided | reason |", "|---|---|---|"]
        lines += [f"| `{r['decision_id']}` | {r['decided_at'][:10]} | {_md(r['reason'])} |" for r in refused]
        lines += ["", "</details>"]
    replayed = [r for r in result["decisions"] if r["status"] != "refused"]
    if replayed:
        lines += ["", "<details><summary>What each replayed decision used</summary>", "",
                  "| decision | verdict | dataset versions | metric definitions |", "|---|---|---|---|"]
        for r in replayed:
            versions = ", ".join(f"`{k}@{v}`" for k, v in r["dataset_versions"].items())
            metrics = ", ".join(f"`{m}` `{u['hash']}`" + (" (re-scored)" if m in r["rescored"] else "")
                                for m, u in r["metrics"].items())
            lines.append(f"| `{r['decision_id']}` | {_verdict(r)} | {versions} | {metrics} |")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


# -- monitor ------------------------------------------------------------------------------------------------

def _num(v) -> str:
    return "-" if v is None else f"{v:.4g}"


def _windows(items: list[dict], limit: int = 6) -> str:
    shown = ", ".join(f"{w['window'][:16]}" + (f" {w['model']}" if w.get("model") else "") + f" ({_num(w['value'])})"
                      for w in items[:limit])
    return shown + (f", ... {len(items) - limit} more" if len(items) > limit else "")


def print_whatif_monitor(result: dict) -> None:
    h = result["history"]
    console.print(f"What-if monitor: [bold]{escape(result['policy']['label'])}[/] against "
                  f"{escape(result['against']['label'])}; {h['runs']} stored monitor run(s), {h['observations']} "
                  f"observations, windows {(h['first_window'] or '-')[:10]} .. {(h['last_window'] or '-')[:10]}",
                  highlight=False)
    shown = [r for r in result["rules"] if r["status"] != "unchanged"]
    if shown:
        table = Table(title_justify="left", show_lines=True)
        for col in ("rule", "bound", "alerts", "appear", "disappear"):
            table.add_column(col, overflow="fold")
        for r in shown:
            style = STATUS_STYLE.get(r["status"], "yellow")
            bound = r["bound"]["before"] if r["bound"]["before"] == r["bound"]["after"] else \
                f"{r['bound']['before']} {ARROW} {r['bound']['after']}"
            if r["severity"]["before"] != r["severity"]["after"]:
                bound += f"\n{r['severity']['before']} {ARROW} {r['severity']['after']}"
            alerts = (f"[{style}]refused: {_cell(r['reason'])}[/]" if r["status"] == "refused"
                      else f"{r['alerts']['before']} {ARROW} {r['alerts']['after']}"
                      + (" (removed)" if r["status"] == "removed" else ""))
            table.add_row(f"{r['section']}.{_cell(r['name'])}", _cell(bound), alerts, _cell(_windows(r["appear"])),
                          _cell(_windows(r["disappear"])))
        console.print(table)
    if result["weeks"]:
        weeks = Table(title="Windowed alerts per week", title_justify="left")
        for col in ("week of", "before", "after"):
            weeks.add_column(col, justify="right")
        for w in result["weeks"]:
            weeks.add_row(w["week"], str(w["before"]), str(w["after"]))
        console.print(weeks)
    quiet = not result["summary"]["changed_rules"] and not result["summary"]["refused_rules"]
    console.print(f"[{'bold green' if quiet else 'bold red'}]{escape(result['summary_line'])}[/]", highlight=False)


def whatif_monitor_markdown(result: dict) -> str:
    h = result["history"]
    lines = ["## Flywheel what-if: monitor policy", "", f"**{result['summary_line']}**", "",
             f"Policy: {result['policy']['label']}, compared with {result['against']['label']}; {h['runs']} stored "
             f"monitor run(s), windows {(h['first_window'] or '-')[:10]} .. {(h['last_window'] or '-')[:10]}."]
    shown = [r for r in result["rules"] if r["status"] != "unchanged"]
    if shown:
        lines += ["", "| rule | bound | alerts | appear | disappear |", "|---|---|---|---|---|"]
        for r in shown:
            bound = r["bound"]["before"] if r["bound"]["before"] == r["bound"]["after"] else \
                f"{r['bound']['before']} {ARROW} {r['bound']['after']}"
            alerts = (f"refused: {_md(r['reason'])}" if r["status"] == "refused"
                      else f"{r['alerts']['before']} {ARROW} {r['alerts']['after']}")
            lines.append(f"| `{r['section']}.{r['name']}` | {_md(bound)} | {alerts} | {_md(_windows(r['appear']))} | "
                         f"{_md(_windows(r['disappear']))} |")
    if result["weeks"]:
        lines += ["", "| week of | alerts before | alerts after |", "|---|---|---|"]
        lines += [f"| {w['week']} | {w['before']} | {w['after']} |" for w in result["weeks"]]
    return "\n".join(lines) + "\n"
