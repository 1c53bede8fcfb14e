"""`flywheel gate`: Loop 1's checkpoint. Evaluate baseline and challenger (cached), apply every rule, decide."""
from __future__ import annotations

from pathlib import Path

from engine import journal
from engine.commands.registry import Outcome, command
from engine.config import Composed
from engine.console import console
from engine.evaluation import StoreAccess, store_path
from engine.exit_codes import writing_output
from engine.gate.decide import compile_plan
from engine.gate import promotion
from engine.gate.promotion import already_promoted, model_fingerprint, promote
from engine.gate.report import junit_xml, markdown, print_gate
from engine.gate.session import DECISION, PROMOTE, RESOLVE, run_gate, stored_run
from engine.outputs import output_path, write_text
from engine.redaction import scrub_value
from engine.report.html import report_options, report_path, write_html
from engine.compiler import SCORING_TABLE
from engine.sql import Plan
from engine.store import Store


def compile_sql(composed: Composed) -> Plan:
    """The gate's statements, after those of the evaluate it runs for a side whose run is not stored yet (once
    per distinct statement: two sides with the same output identity share their text)."""
    from engine.evaluate_plan import compile_run

    cfg, seen, evaluate = composed.config, set(), []
    for side in ("baseline", "challenger"):
        for st in compile_run(cfg, cfg[side]).statements:
            if (st.name, st.sql(pretty=True)) not in seen:
                seen.add((st.name, st.sql(pretty=True)))
                evaluate.append(st if st.only_when else
                                st.conditional("for a side (baseline, challenger) whose run is not stored yet"))
    return Plan("gate", (*promotion.STATEMENTS[:2], RESOLVE, *evaluate,
                         *compile_plan(cfg["gate"], cfg["metrics"]).statements, DECISION, PROMOTE,
                         *promotion.STATEMENTS[2:]))


def sweep(options: dict, overrides: list[str]) -> int:
    from engine.gate.sweep import run_sweep
    return run_sweep(options, overrides)


@command("gate", "Loop 1: baseline vs challenger through every gate rule; PASS (exit 0) or BLOCKED (exit 1)",
         compile=compile_sql, sweep=sweep, sections=("gate",), spark_inputs=(SCORING_TABLE,))
def gate(composed: Composed) -> Outcome:
    cfg = composed.config
    path = store_path(cfg, composed.project)
    if cfg.get("promote"):
        with Store.open(path) as store:
            done = already_promoted(store, _challenger_fingerprint(store, composed))
        if done:  # a retry after the promotion committed: report that decision, change nothing
            p = done["promoted"]
            console.print(f"[bold green]already promoted[/]: challenger '{p['model']}' (fingerprint "
                          f"{p['fingerprint']}) is the blessed baseline v{p['version']} since "
                          f"{p['promoted_at'][:19]} (decision {p['decision_id']}); nothing to promote")
            write_ci_files(done, cfg, composed.project.dir)
            return Outcome(0, done, "gate_result")
    result, challenger_spec = run_gate(composed, StoreAccess(path))
    with Store.open(path) as store:
        if cfg.get("promote"):
            if result["verdict"] == "PASS":
                with journal.step(PROMOTE.name):
                    version = promote(store, challenger_spec, result["challenger"]["fingerprint"],
                                      result["decision_id"])
                result["promoted"] = {"version": version, "model": result["challenger"]["name"]}
            else:
                result["promotion_refused"] = "a BLOCKED challenger cannot be promoted"
    print_gate(result)
    write_ci_files(result, cfg, composed.project.dir)
    return Outcome(0 if result["verdict"] == "PASS" else 1, result, "gate_result")


def _challenger_fingerprint(store: Store, composed: Composed) -> str:
    if composed.config.get("challenger_run"):
        return stored_run(store, composed.config["challenger_run"])["fingerprint"]
    return model_fingerprint(composed.config["challenger"], composed.project.dir)


def write_ci_files(result: dict, cfg: dict, project_dir: Path) -> None:
    code = 0 if result["verdict"] == "PASS" else 1
    for key, render in (("junit", junit_xml), ("markdown", markdown)):
        if cfg.get(key):
            target = output_path(cfg[key], project_dir)
            with writing_output(key, cfg[key], target, code):
                write_text(target, render(scrub_value(result)))
    if report_path(cfg):
        target = output_path(report_path(cfg), project_dir)
        with writing_output("report", report_path(cfg), target, code):
            write_html(target, result, **report_options(cfg))
