"""`flywheel demo`: the whole flywheel on the bundled data, narrated step by step.

Each step runs a real command in-process against a fresh demo project directory (default .flywheel/demo),
so the demo exercises exactly what a user runs. Steps are added as the flywheel grows.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table

from engine.commands import Outcome, command, load_all
from engine.config import Composed, Project, compose
from engine.console import console
from engine.validate import validate


@dataclass
class DemoRun:
    project: Project
    steps: list[dict] = field(default_factory=list)

    def run(self, title: str, command_name: str, overrides: list[str]) -> Outcome:
        console.print(Rule(f"[bold]{title}[/]"))
        console.print(f"[dim]$ flywheel {command_name} {' '.join(overrides)}[/]")
        started = time.perf_counter()
        composed = compose(self.project, overrides + ["run.progress=false"])
        validate(composed)
        outcome = load_all()[command_name].run(composed)
        from engine.cli import write_out
        write_out(outcome, composed)
        self.steps.append({"title": title, "command": command_name, "exit_code": outcome.exit_code,
                           "seconds": round(time.perf_counter() - started, 2), "result": outcome.result})
        return outcome


def _accuracy(result: dict) -> str:
    row = next((r for r in result.get("summary", []) if r["metric"] == "accuracy" and r["tag"] is None), None)
    return f"accuracy {row['mean']:.3f}" if row else ""


@command("demo", "the whole flywheel on the bundled data, end to end, narrated")
def demo(composed: Composed) -> Outcome:
    cfg = composed.config
    demo_dir = composed.project.dir / ".flywheel" / "demo"
    if demo_dir.exists():
        shutil.rmtree(demo_dir)
    demo_dir.mkdir(parents=True)
    run = DemoRun(Project(demo_dir, None))
    out = demo_dir / "outputs"
    console.print(Panel("Flywheel demo: the Tidepool support assistant. A keyword baseline, two BM25 challengers "
                        "(one clean, one risky), the release gate between them.", title="flywheel demo"))

    for model in ("keyword_baseline", "bm25_clean", "bm25_fast"):
        run.run(f"Lab: evaluate {model}", "evaluate", [f"model={model}", f"out={out}/evaluate_{model}.json"])
    risky = run.run("Release gate: the risky challenger", "gate",
                    ["challenger=bm25_fast", "baseline=keyword_baseline", f"out={out}/gate_bm25_fast.json",
                     f"junit={out}/gate_bm25_fast.xml", f"markdown={out}/gate_bm25_fast.md"])
    clean = run.run("Release gate: the clean challenger (promoted if it passes)", "gate",
                    ["challenger=bm25_clean", "baseline=keyword_baseline", "promote=true",
                     f"out={out}/gate_bm25_clean.json", f"junit={out}/gate_bm25_clean.xml",
                     f"markdown={out}/gate_bm25_clean.md"])

    summary = Table(title="What the demo found", title_justify="left")
    summary.add_column("step")
    summary.add_column("exit")
    summary.add_column("finding")
    for step in run.steps:
        result = step["result"]
        if step["command"] == "evaluate":
            finding = f"{result['model']['name']}: {_accuracy(result)}"
        elif step["command"] == "gate":
            finding = f"{result['challenger']['name']}: {result['verdict']}"
            if result["blocking_failures"]:
                finding += " (failed: " + ", ".join(result["blocking_failures"]) + ")"
            if result.get("promoted"):
                finding += f", promoted as blessed v{result['promoted']['version']}"
        else:
            finding = ""
        summary.add_row(step["title"], str(step["exit_code"]), finding)
    console.print(summary)
    console.print(f"outputs in {out}; store {demo_dir / '.flywheel' / 'flywheel.duckdb'}")
    ok = risky.result["verdict"] == "BLOCKED" and clean.result["verdict"] == "PASS"
    result = {"command": "demo", "demo_dir": str(demo_dir), "steps": [
        {k: v for k, v in s.items() if k != "result"} for s in run.steps],
        "gates": {"bm25_fast": risky.result["verdict"], "bm25_clean": clean.result["verdict"]}}
    return Outcome(0 if ok else 1, result)
