"""Gate reports, all read from the result dict only: rich verdict panel, JUnit XML, Markdown for a PR."""
from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from rich.panel import Panel
from rich.table import Table

from engine.console import console
from engine.report import is_production
from engine.report.layout import fit
from engine.report.terminal import print_model_errors

STATUS_STYLE = {"pass": "green", "fail": "red", "error": "bold red"}


def _short(text, width: int = 70) -> str:
    if text is None:
        return "-"
    if not isinstance(text, str):
        text = json.dumps(text, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _value(v) -> str:
    return "-" if v is None else f"{v:.4g}"


def print_gate(result: dict) -> None:
    verdict = result["verdict"]
    style = "bold green" if verdict == "PASS" else "bold red"
    b, c = result["baseline"], result["challenger"]
    table = Table(show_header=True, header_style="bold", expand=False)
    for col in ("rule", "kind", "severity", "outcome", "value", "bound", "detail"):
        table.add_column(col, overflow="fold")
    for r in result["rules"]:
        table.add_row(r["name"], r["kind"], r["severity"], f"[{STATUS_STYLE[r['status']]}]{r['status'].upper()}[/]",
                      _value(r["value"]), r["bound"], r["message"])
    title = (f"[{style}]{verdict}[/]  challenger [bold]{c['name']}[/] vs baseline [bold]{b['name']}[/] "
             f"({b['source']})")
    console.print(Panel(fit(table), title=title, title_align="left", border_style="green" if verdict == "PASS" else "red"))
    for side in (b, c):
        print_model_errors(side["name"], side.get("error_messages") or [])
    for r in result["rules"]:
        if not r["cases"]:
            continue
        cases = Table(title=f"{r['name']}: {len(r['cases'])} case(s) "
                            f"{'regressed' if r['kind'] == 'no_regression' else 'failing'}",
                      title_justify="left", show_lines=False)
        for col in ("case", "tags", "input", "expected", "baseline", "challenger"):
            cases.add_column(col, overflow="fold")
        for case in r["cases"][:20]:
            origin = " [magenta](from production)[/]" if is_production(case) else ""
            challenger_text = case.get("challenger_output") or f"ERROR: {case.get('challenger_error')}"
            if r["kind"] != "no_regression" and case.get("c_detail"):
                challenger_text = f"{_short(challenger_text, 50)} [dim]({case['c_detail']})[/]"
            baseline_text = _short(case.get("baseline_output"), 50)
            if case.get("baseline_calls") or case.get("challenger_calls"):  # an agent: both trajectories
                baseline_text += f" [dim](calls: {case.get('baseline_calls') or 'none recorded'})[/]"
                challenger_text = (f"{_short(challenger_text, 90)} "
                                   f"[dim](calls: {case.get('challenger_calls') or 'none recorded'})[/]")
            cases.add_row(f"{case['case_id']}{origin}", ",".join(case.get("tags") or []), _short(case.get("input_text")),
                          _short(case.get("expected"), 30), baseline_text, _short(challenger_text, 240))
        if len(r["cases"]) > 20:
            cases.caption = f"... {len(r['cases']) - 20} more in the JSON result (out=PATH)"
        console.print(fit(cases))
    if result["flaky"]:
        console.print(f"[yellow]{len(result['flaky'])} flaky case result(s)[/] (passed in some repeats only): "
                      + ", ".join(f"{f['metric']}:{f['case_id']}" for f in result["flaky"][:10]))
    if result.get("promoted"):
        console.print(f"[bold green]promoted[/] {c['name']} as blessed baseline v{result['promoted']['version']}")
    elif result.get("promotion_refused"):
        console.print(f"[bold red]not promoted:[/] {result['promotion_refused']}")


def junit_xml(result: dict) -> str:
    """One test case per rule; a failed or uncomputable blocking rule is a failure, a warn rule is skipped-with-
    message when it fails so CI shows it without failing the build."""
    suite = ET.Element("testsuite", name=f"flywheel gate: {result['challenger']['name']}",
                       tests=str(len(result["rules"])),
                       failures=str(sum(1 for r in result["rules"] if r["status"] == "fail" and r["severity"] == "blocking")),
                       errors=str(sum(1 for r in result["rules"] if r["status"] == "error" and r["severity"] == "blocking")))
    for r in result["rules"]:
        case = ET.SubElement(suite, "testcase", classname=f"gate.{r['kind']}", name=r["name"])
        text = f"{r['message']} (bound: {r['bound']})"
        if r["cases"]:
            text += "\ncases: " + ", ".join(c["case_id"] for c in r["cases"])
        if r["status"] != "pass":
            if r["severity"] == "warn":
                ET.SubElement(case, "skipped", message=f"warn: {r['message']}").text = text
            else:
                tag = "failure" if r["status"] == "fail" else "error"
                ET.SubElement(case, tag, message=r["message"]).text = text
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def markdown(result: dict) -> str:
    icon = {"pass": "✅", "fail": "❌", "error": "⛔"}
    b, c = result["baseline"], result["challenger"]
    lines = [f"## Flywheel gate: **{result['verdict']}**", "",
             f"Challenger `{c['name']}` (`{c['fingerprint']}`) vs baseline `{b['name']}` (`{b['fingerprint']}`, {b['source']}).",
             f"Gate config `{result['gate_config_hash']}`, datasets "
             + ", ".join(f"`{k}@{v}`" for k, v in result["dataset_versions"].items()) + ".", "",
             "| rule | severity | outcome | value | bound | detail |", "|---|---|---|---|---|---|"]
    for r in result["rules"]:
        lines.append(f"| {r['name']} | {r['severity']} | {icon[r['status']]} {r['status']} | {_value(r['value'])} | "
                     f"{r['bound']} | {r['message'].replace('|', '/')} |")
    for r in result["rules"]:
        if r["cases"]:
            lines += ["", f"<details><summary>{r['name']}: {len(r['cases'])} case(s)</summary>", "",
                      "| case | input | expected | baseline | challenger |", "|---|---|---|---|---|"]
            for case in r["cases"][:50]:
                prod = " (production)" if is_production(case) else ""
                lines.append(f"| `{case['case_id']}`{prod} | {_short(case.get('input_text'), 60)} | "
                             f"{_short(case.get('expected'), 30)} | {_short(case.get('baseline_output'), 50)} | "
                             f"{_short(case.get('challenger_output') or case.get('challenger_error'), 50)} |"
                             .replace("\n", " "))
            lines += ["", "</details>"]
    return "\n".join(lines) + "\n"
