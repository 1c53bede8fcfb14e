"""`flywheel demo`: the whole flywheel on the bundled data, narrated step by step.

Each step runs a real command in-process against a fresh demo project directory (.flywheel/demo under the
current directory), exactly as a user would run it, and the demo checks what each step found.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table

from engine.commands import load
from engine.commands.registry import Outcome, command
from engine.config import Composed, Project, compose
from engine.console import console
from engine.report.layout import fit
from engine.validate import validate


@dataclass
class DemoRun:
    project: Project
    steps: list[dict] = field(default_factory=list)

    def run(self, title: str, command_name: str, overrides: list[str], args: tuple[str, ...] = ()) -> Outcome:
        from dataclasses import replace

        from engine.commands.running import recorded_run, write_out

        console.print(Rule(f"[bold]{title}[/]"))
        console.print(f"[dim]$ flywheel {command_name} {' '.join((*args, *overrides))}[/]")
        started = time.perf_counter()
        composed = compose(self.project, overrides + ["run.progress=false"])
        cmd = load(command_name)
        validate(composed, cmd.sections)  # the sections the command reads, as the CLI does
        with recorded_run(cmd, composed) as record:  # its own run artifacts, in the demo project
            outcome = cmd.run(replace(composed, args=args))
            record(outcome)
        write_out(outcome, composed)
        self.steps.append({"title": title, "command": command_name, "exit_code": outcome.exit_code,
                           "seconds": round(time.perf_counter() - started, 2), "result": outcome.result,
                           "finding": ""})
        return outcome

    def finding(self, text: str) -> None:
        self.steps[-1]["finding"] = text


def _metric(result: dict, metric: str, dataset: str = "support_qa") -> float | None:
    row = next((r for r in result.get("summary", []) if r["metric"] == metric and r["tag"] is None
                and r["dataset"] == dataset), None)
    return row["mean"] if row else None


def _gate_finding(result: dict) -> str:
    text = f"{result['challenger']['name']}: {result['verdict']}"
    if result["blocking_failures"]:
        text += " (" + ", ".join(result["blocking_failures"]) + ")"
    prod = [c["case_id"] for r in result["rules"] for c in r["cases"]
            if (c.get("metadata") or {}).get("origin") == "production"]
    if prod:
        text += f"; {len(prod)} failing case(s) came from production"
    if result.get("promoted"):
        text += f"; promoted as blessed v{result['promoted']['version']}"
    return text


def _judges_steps(run: DemoRun, out) -> Outcome:
    """Is the LLM judge trustworthy, and where? Calibrate it against the bundled human labels, then gate on its
    grades: the decision may rest on it where people agree with it (billing, account), not on troubleshooting."""
    judge = ["metrics=[support,judge]", "dataset=[support_qa]"]  # the red-team set has no judge metric
    calibrated = run.run("1. Judges: calibrate the LLM judge against human labels", "judges",
                         judge + ["judges.labels=[bundled:support/judge_labels.jsonl]",
                                  f"out={out}/judges_calibrate.json", f"report={out}/judges_calibrate.html"],
                         args=("calibrate",))
    kappas = {s["slice"]: s["kappa"] for s in calibrated.result["judges"][0]["slices"]}
    run.finding(f"kappa {kappas['*']:.2f} over all labels; " + ", ".join(
        f"{tag} {kappas[tag]:.2f}" for tag in ("billing", "account", "troubleshooting")))
    judged = run.run("1. Release gate on the judge's grades, trusted only where calibrated", "gate",
                     judge + ["gate=judged", "challenger=bm25_clean", "baseline=keyword_baseline",
                              f"out={out}/gate_judged.json"])
    run.finding(_gate_finding(judged.result) + ": the judge is not trusted on troubleshooting")
    return judged


def _agent_steps(demo_dir, out) -> tuple[Outcome, Outcome, list[dict]]:
    """The agent gate: tool-using support agents scored on their trajectories. Run in a project of its own (its
    own store), so the support assistant's history that `flywheel whatif` replays stays as it was."""
    agents = DemoRun(Project(demo_dir / "agents", None))
    (demo_dir / "agents").mkdir()
    common = ["dataset=[support_agent]", "metrics=[agent]", "gate=agent", "baseline=agent_baseline"]
    careful = agents.run("1. Agents: gate the careful agent on its tool calls", "gate",
                         common + ["challenger=agent_careful", f"out={out}/gate_agent_careful.json"])
    agents.finding(_gate_finding(careful.result))
    fast = agents.run("1. Agents: gate the agent that refunds without looking the order up", "gate",
                      common + ["challenger=agent_fast_refund", f"out={out}/gate_agent_fast_refund.json"])
    agents.finding(_gate_finding(fast.result))
    return careful, fast, agents.steps


@command("demo", "the whole flywheel on the bundled data, end to end, narrated", sections=None)
def demo(composed: Composed) -> Outcome:
    started = time.perf_counter()
    demo_dir = composed.project.dir / ".flywheel" / "demo"
    if demo_dir.exists():
        shutil.rmtree(demo_dir)
    demo_dir.mkdir(parents=True)
    run = DemoRun(Project(demo_dir, None))
    out = demo_dir / "outputs"
    sim = composed.config["simulate"]
    drift_day = (date.fromisoformat(str(sim["start_date"])) + timedelta(days=int(sim["drift"]["start_day"])))
    console.print(Panel(
        "The Tidepool support assistant. Loop 1: a keyword baseline and two BM25 challengers through the release "
        "gate. Loop 2: a month of simulated production traffic for the promoted model, with a drift and a failure "
        "mode, ingested and monitored. The Bridge: training data out, production failures in as golden cases, "
        "and a new challenger that would repeat the production mistake is caught.", title="flywheel demo"))

    # 1. the lab
    for model in ("keyword_baseline", "bm25_clean", "bm25_fast"):
        r = run.run(f"1. Lab: evaluate {model}", "evaluate", [f"model={model}", f"out={out}/evaluate_{model}.json"])
        run.finding(f"accuracy {_metric(r.result, 'accuracy'):.3f}")
    risky = run.run("1. Release gate: the risky challenger", "gate",
                    ["challenger=bm25_fast", "baseline=keyword_baseline", f"out={out}/gate_bm25_fast.json",
                     f"junit={out}/gate_bm25_fast.xml", f"markdown={out}/gate_bm25_fast.md",
                     f"report={out}/gate_bm25_fast.html"])
    run.finding(_gate_finding(risky.result))
    clean = run.run("1. Release gate: the clean challenger, promoted if it passes", "gate",
                    ["challenger=bm25_clean", "baseline=keyword_baseline", "promote=true",
                     f"out={out}/gate_bm25_clean.json", f"report={out}/gate_bm25_clean.html"])
    run.finding(_gate_finding(clean.result))
    judged = _judges_steps(run, out)
    careful_agent, fast_agent, agent_steps = _agent_steps(demo_dir, out)
    run.steps.extend(agent_steps)

    # 2-3. the real world
    simulated = run.run("2. Production: a month of traffic for the promoted model", "simulate",
                        ["model=bm25_clean", f"out={out}/simulate.json"])
    run.finding(f"{simulated.result['counts']['traces']:,} traces, {simulated.result['counts']['feedback']:,} feedback, "
                f"{simulated.result['counts']['events']:,} events; drift from {drift_day}, failure mode "
                f"'{sim['failure']['topic']}' from day {sim['failure']['start_day']}")
    ingested = run.run("3. Ingest the production files", "ingest", ["path=data/production", f"out={out}/ingest.json"])
    totals = ingested.result["totals"]
    run.finding(f"{totals['read']:,} records read = {totals['accepted']:,} accepted + {totals['quarantined']:,} "
                f"quarantined")
    monitored = run.run("3. Monitor: drift, KPIs, ROI, prod-lab parity", "monitor",
                        [f"out={out}/monitor.json", f"report={out}/monitor.html"])
    m = monitored.result
    drifted = [d for d in m["drift"] if d["status"] == "alert"]
    first = min((d["first_alert"] for d in drifted), default=None)
    roi = next((k for k in m["kpis"] if k["category"] == "roi"), None)
    parity = m["parity"][0] if m["parity"] else None
    run.finding(f"{len(drifted)} drift rule(s) alerting from {first[:10] if first else '-'}; "
                + (f"ROI {roi['value']:.2f}; " if roi and roi["value"] is not None else "")
                + (f"parity gap {parity['gap']:+.1%} (worst slice {parity['slices'][0]['slice']})"
                   if parity and parity.get("gap") is not None and parity["slices"] else ""))

    # 4. the bridge
    bridged = run.run("4. Bridge: training data out, production failures into golden cases", "bridge",
                      [f"out={out}/bridge.json"])
    golden = bridged.result["golden"] or {}
    run.finding(f"{bridged.result['training']['records']} training records; {golden.get('added', 0)} production "
                f"case(s) with corrections -> {golden.get('dataset')} {golden.get('version')}; "
                f"{(golden.get('label_queue') or {}).get('records', 0)} to label")
    diffed = run.run("4. What changed in the golden set", "datasets", [f"out={out}/datasets_diff.json"],
                     args=("diff", golden.get("parent_version", ""), golden.get("version", "")))
    run.finding(f"{len(diffed.result['added'])} case(s) added, {len(diffed.result['removed'])} removed")

    # 5. the next challenger
    before = run.run("5. Gate a new challenger on the old golden set", "gate",
                     ["challenger=bm25_short_query", "dataset.support_qa.follow_bridge=false",
                      f"out={out}/gate_short_query_v1.json"])
    run.finding(_gate_finding(before.result) + " (golden v1)")
    after = run.run("5. Gate it again: the golden set now holds the production failures", "gate",
                    ["challenger=bm25_short_query", f"out={out}/gate_short_query_v2.json",
                     f"report={out}/gate_short_query_v2.html", f"markdown={out}/gate_short_query_v2.md"])
    run.finding(_gate_finding(after.result) + " (golden v2)")

    summary = Table(title="What the flywheel found", title_justify="left")
    for col in ("step", "exit", "seconds", "finding"):
        summary.add_column(col, overflow="fold")
    for step in run.steps:
        summary.add_row(step["title"], str(step["exit_code"]), f"{step['seconds']:.1f}", step["finding"])
    console.print(fit(summary))
    reports = sorted(str(p) for p in out.glob("*.html"))
    console.print("outputs: " + str(out))
    for path in reports:
        console.print(f"  report: {path}")
    console.print(f"store: {demo_dir / '.flywheel' / 'flywheel.duckdb'}; took {time.perf_counter() - started:.0f} s")

    checks = {
        "risky challenger blocked": risky.result["verdict"] == "BLOCKED",
        "clean challenger passed and promoted": clean.result["verdict"] == "PASS" and bool(clean.result["promoted"]),
        "drift flagged from the injection day": bool(first) and first[:10] == drift_day.isoformat(),
        "monitor alerted": not m["healthy"],
        "new golden version": golden.get("version") not in (None, golden.get("parent_version")),
        "new challenger passes on v1": before.result["verdict"] == "PASS",
        "new challenger blocked on v2 by production cases": after.result["verdict"] == "BLOCKED"
        and "no_regressions" in after.result["blocking_failures"],
        "judge trusted on billing/account, refused on troubleshooting": judged.result["verdict"] == "BLOCKED"
        and judged.result["blocking_failures"] == ["judge_trusted_on_troubleshooting"],
        "careful agent passed": careful_agent.result["verdict"] == "PASS",
        "agent refunding without lookup blocked by forbidden calls and trajectory regressions":
        fast_agent.result["verdict"] == "BLOCKED"
        and {"no_forbidden_tools", "no_trajectory_regressions"} <= set(fast_agent.result["blocking_failures"]),
    }
    failed = [k for k, ok in checks.items() if not ok]
    if failed:
        console.print("[bold red]the demo did not find what it should:[/] " + "; ".join(failed))
    result = {"command": "demo", "demo_dir": str(demo_dir), "seconds": round(time.perf_counter() - started, 1),
              "checks": checks, "reports": reports,
              "steps": [{k: v for k, v in s.items() if k != "result"} for s in run.steps]}
    return Outcome(0 if not failed else 1, result)
