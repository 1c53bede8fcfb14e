"""`flywheel gate`: Loop 1's checkpoint. Evaluate baseline and challenger (cached), apply every rule, decide."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

from engine.commands import Outcome, command
from engine.config import Composed
from engine import journal
from engine.executor import execute
from engine.sql import Plan, PythonStep, Statement, parse
from engine.errors import UserError
from engine.evaluation import (EvalRun, StoreAccess, evaluate_model, follow_bridge_heads, load_datasets,
                               metrics_hash, store_path)
from engine.gate.decide import compile_plan, decide
from engine.console import console
from engine.exit_codes import writing_output
from engine.gate.promotion import (already_promoted, current_blessed, model_fingerprint, promote,
                                   refuse_self_comparison)
from engine.gate.report import junit_xml, markdown, print_gate
from engine.outputs import output_path, write_text
from engine.provenance import canonical_json, config_hash, git_commit, stored_config, utc_now
from engine.redaction import scrub_value
from engine.report.html import report_options, report_path, write_html
from engine.report.summary import per_tag_summary
from engine.store import Store


def compile_sql(composed: Composed) -> Plan:
    """The gate's statements, after those of the evaluate it runs for a side whose run is not stored yet (once
    per distinct statement: two sides with the same output identity share their text)."""
    from engine.evaluate_plan import compile_run

    cfg, seen, evaluate = composed.config, set(), []
    for side in ("baseline", "challenger"):
        for st in compile_run(cfg, cfg[side]).statements:
            if (st.name, st.sql()) not in seen:
                seen.add((st.name, st.sql()))
                evaluate.append(st if st.only_when else
                                st.conditional("for a side (baseline, challenger) whose run is not stored yet"))
    return Plan("gate", (RESOLVE, *evaluate, *compile_plan(cfg["gate"], cfg["metrics"]).statements, DECISION,
                         PROMOTE))


RESOLVE = PythonStep("sides:resolve", "the datasets' bridge heads followed and the baseline resolved (named on the "
                     "command line, else the latest blessed one, else the config's); the same model on both sides "
                     "is refused")
_COLUMNS = ("decision_id", "baseline_run", "challenger_run", "baseline_model", "challenger_model", "verdict",
            "gate_config_hash", "git_commit", "decided_at", "gate_config", "result")
DECISION = Statement("gate:decision", parse(f"INSERT INTO gate_decisions VALUES "
                                            f"({', '.join('$' + c for c in _COLUMNS)})"), _COLUMNS,
                     "the verdict with its rules' hash, git commit and whole result")
PROMOTE = PythonStep("promote", "the challenger becomes the blessed baseline (engine/gate/promotion.py)",
                     "with promote=true when the verdict is PASS")


def _explicit_baseline(composed: Composed) -> bool:
    return any(ov.lstrip("+~").startswith(("baseline=", "model@baseline=", "baseline.")) for ov in composed.overrides)


def resolve_baseline(store: Store, composed: Composed) -> tuple[dict, str]:
    """The configured baseline if named on the command line, else the latest blessed one, else the config's."""
    if not _explicit_baseline(composed):
        blessed = current_blessed(store)
        if blessed:
            return blessed["model_spec"], f"blessed v{blessed['version']}"
    return composed.config["baseline"], "config"


def stored_run(store: Store, run_id: str) -> dict:
    rows = store.con.execute("SELECT run_id, model_name, model_fingerprint, dataset_versions, metrics_hash, status "
                             "FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if not rows:
        raise UserError(f"no stored run '{run_id}' in {store.path}")
    run_id, name, fp, versions, m_hash, status = rows[0]
    if status != "ok":
        raise UserError(f"run '{run_id}' did not finish (status {status}); it cannot be gated")
    return {"run_id": run_id, "name": name, "fingerprint": fp, "dataset_versions": json.loads(versions),
            "metrics_hash": m_hash}


def check_comparable(baseline: dict, challenger: dict) -> None:
    """Refuse stale comparisons: both runs must be scored on the same dataset versions and metric definitions."""
    problems = []
    for name in sorted(set(baseline["dataset_versions"]) | set(challenger["dataset_versions"])):
        b, c = baseline["dataset_versions"].get(name), challenger["dataset_versions"].get(name)
        if b != c:
            problems.append(f"dataset '{name}': baseline scored on version {b}, challenger on {c}")
    if baseline["metrics_hash"] != challenger["metrics_hash"]:
        problems.append(f"metric configuration differs (baseline {baseline['metrics_hash']}, "
                        f"challenger {challenger['metrics_hash']}); re-run both with the same metrics")
    if problems:
        raise UserError("stale comparison refused:\n  " + "\n  ".join(problems))


def _side(run: EvalRun | dict, source: str) -> dict:
    if isinstance(run, EvalRun):
        return {"name": run.model_name, "run_id": run.run_id, "fingerprint": run.model_fingerprint, "source": source,
                "calls": run.to_json()["calls"], "error_messages": run.error_messages}
    return {"name": run["name"], "run_id": run["run_id"], "fingerprint": run["fingerprint"], "source": source}


def run_gate(composed: Composed, access: StoreAccess) -> tuple[dict, dict]:
    """Evaluate (or load) both runs and decide; returns (result, challenger model spec).

    The store is opened for short steps only: models are called with it closed (engine/evaluation.py)."""
    cfg, gate = composed.config, composed.config["gate"]
    if cfg.get("baseline_run"):
        with access.open() as store, journal.step(RESOLVE.name):
            b_run, c_run = stored_run(store, cfg["baseline_run"]), stored_run(store, cfg["challenger_run"])
            refuse_self_comparison(b_run["fingerprint"], c_run["fingerprint"], c_run["name"], "stored run", store)
        check_comparable(b_run, c_run)
        if c_run["metrics_hash"] != metrics_hash(cfg["metrics"]):
            raise UserError("stale comparison refused: the stored runs were scored with a different metric "
                            "configuration than the one selected now")
        baseline, challenger = _side(b_run, "stored run"), _side(c_run, "stored run")
        versions = c_run["dataset_versions"]
        challenger_spec = cfg["challenger"]
    else:
        datasets = load_datasets(cfg, composed.project)
        with access.open() as store, journal.step(RESOLVE.name):
            datasets = follow_bridge_heads(store, datasets, cfg, composed.project)
            baseline_spec, source = resolve_baseline(store, composed)
            refuse_self_comparison(model_fingerprint(baseline_spec, composed.project.dir),
                                   model_fingerprint(cfg["challenger"], composed.project.dir),
                                   cfg["challenger"]["name"], source, store)
        b = evaluate_model(access, baseline_spec, datasets, cfg, composed.project, command="gate")
        c = evaluate_model(access, cfg["challenger"], datasets, cfg, composed.project, command="gate")
        baseline, challenger = _side(b, source), _side(c, "config")
        versions = c.dataset_versions
        challenger_spec = cfg["challenger"]
    with access.open() as store:
        return _decide_and_record(store, composed, baseline, challenger, versions), challenger_spec


def _decide_and_record(store: Store, composed: Composed, baseline: dict, challenger: dict, versions: dict) -> dict:
    cfg, gate = composed.config, composed.config["gate"]
    outcome = decide(store, gate, cfg["metrics"], baseline["run_id"], challenger["run_id"])
    decided_at = utc_now()
    result = {
        "command": "gate",
        "decision_id": f"gate-{decided_at.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}",
        "verdict": outcome.verdict,
        "baseline": baseline,
        "challenger": challenger,
        "dataset_versions": versions,
        "gate_config_hash": config_hash(gate),
        "metrics_hash": metrics_hash(cfg["metrics"]),
        "git_commit": git_commit(composed.project.dir),
        "decided_at": decided_at.isoformat(),
        "rules": [r.to_json() for r in outcome.rules],
        "blocking_failures": [r.name for r in outcome.blocking_failures],
        "flaky": outcome.flaky,
        "timings_ms": outcome.timings_ms,
        "promoted": None,
        "promotion_refused": None,
        "store": str(store.path),
    }
    result["per_tag"] = per_tag_summary(store.con, baseline["run_id"], challenger["run_id"],
                                        gate.get("reducer", "all"), cfg["metrics"])
    with store.transaction() as con:
        execute(con, DECISION, {
            "decision_id": result["decision_id"], "baseline_run": baseline["run_id"],
            "challenger_run": challenger["run_id"], "baseline_model": baseline["name"],
            "challenger_model": challenger["name"], "verdict": outcome.verdict,
            "gate_config_hash": result["gate_config_hash"], "git_commit": result["git_commit"],
            "decided_at": decided_at, "gate_config": stored_config(gate),
            "result": canonical_json(scrub_value(result))})
    return result


def sweep(options: dict, overrides: list[str]) -> int:
    from engine.gate.sweep import run_sweep
    return run_sweep(options, overrides)


@command("gate", "Loop 1: baseline vs challenger through every gate rule; PASS (exit 0) or BLOCKED (exit 1)",
         compile=compile_sql, sweep=sweep, sections=("gate",))
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
