"""One gate session: both sides resolved (named, blessed or configured baseline; stored runs or fresh evaluations),
every rule decided and the decision recorded. `flywheel gate` and each job of a sweep (engine/gate/sweep.py) run it.
"""
from __future__ import annotations

import json
import uuid

from engine import journal
from engine.config import Composed
from engine.errors import UserError
from engine.evaluation import (EvalRun, StoreAccess, evaluate_model, follow_bridge_heads, load_datasets,
                               metrics_hash)
from engine.executor import execute
from engine.gate.decide import decide
from engine.gate.promotion import current_blessed, model_fingerprint, refuse_self_comparison
from engine.gate.spec import GateSpec
from engine.provenance import canonical_json, config_hash, git_commit, stored_config, utc_now
from engine.redaction import scrub_value
from engine.report.summary import per_tag_summary
from engine.sql import PythonStep, Statement, parse, statement
from engine.store import Store


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


_STORED_RUN = statement("runs:stored", "SELECT run_id, model_name, model_fingerprint, dataset_versions, "
                        "metrics_hash, status FROM runs WHERE run_id = $run_id",
                        "a stored run named on the command line")


def stored_run(store: Store, run_id: str) -> dict:
    rows = execute(store.con, _STORED_RUN, {"run_id": run_id})
    if not rows:
        raise UserError(f"no stored run '{run_id}' in {store.path}")
    run_id, name, fp, versions, m_hash, status = rows[0].values()
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
                "calls": run.to_json()["calls"], "error_messages": run.error_messages, "backend": run.backend}
    return {"name": run["name"], "run_id": run["run_id"], "fingerprint": run["fingerprint"], "source": source}


def run_gate(composed: Composed, access: StoreAccess) -> tuple[dict, dict]:
    """Evaluate (or load) both runs and decide; returns (result, challenger model spec).

    The store is opened for short steps only: models are called with it closed (engine/evaluation.py)."""
    cfg = composed.config
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
                                        GateSpec.of(gate).reducer, cfg["metrics"])
    with store.transaction() as con:
        execute(con, DECISION, {
            "decision_id": result["decision_id"], "baseline_run": baseline["run_id"],
            "challenger_run": challenger["run_id"], "baseline_model": baseline["name"],
            "challenger_model": challenger["name"], "verdict": outcome.verdict,
            "gate_config_hash": result["gate_config_hash"], "git_commit": result["git_commit"],
            "decided_at": decided_at, "gate_config": stored_config(gate),
            "result": canonical_json(scrub_value(result))})
    return result
