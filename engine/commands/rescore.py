"""`flywheel rescore run=RUN [metrics=...]`: score a stored run again under the configured metric definitions,
from its stored outputs and golden cases, with zero model calls; stored as a new run.

Metrics whose definition is the one the run was scored with keep their stored scores (copied); the others are
re-scored by the same engine as `whatif gate` (engine/whatif/rescore.py). The new run has the configured
metrics' hash, so two re-scored runs can be gated with `flywheel gate baseline_run=... challenger_run=...`.
A run whose dataset versions or outputs are no longer stored cannot be re-scored (exit 2, with the reason).
"""
from __future__ import annotations

import json

from rich.table import Table

from engine.commands.registry import Outcome, command
from engine.compiler import compile_evaluate
from engine.config import Composed
from engine.console import console
from engine.errors import UserError
from engine.evaluation import metrics_hash, store_path
from engine.executor import execute
from engine.provenance import canonical_json, content_hash, git_commit, new_run_id, utc_now
from engine.store import Store
from engine.whatif.history import load_runs, stored_versions
from engine.whatif.rescore import Rescorer

TEMP = "rescore_scores"


def _run_id(args: tuple[str, ...]) -> str:
    given = [a.split("=", 1)[1] for a in args if a.startswith("run=")]
    if len(given) != 1 or not given[0]:
        raise UserError("usage: flywheel rescore run=RUN [metrics=...] [out=PATH]: name one stored run "
                        "(`flywheel evaluate` and `flywheel gate` print their run ids)")
    return given[0]


def _check_versions(con, run) -> None:
    versions = stored_versions(con)
    for name, version in sorted(run.dataset_versions.items()):
        stored = versions.get(version)
        if stored is None or stored.n_stored < stored.n_cases:
            raise UserError(f"cannot re-score run {run.run_id}: dataset '{name}' version {version} is no longer "
                            f"stored" + ("" if stored is None else f" completely ({stored.n_stored} of "
                                                                   f"{stored.n_cases} cases)"))


def rescore_run(store: Store, run_id: str, cfg: dict, project_dir) -> dict:
    con, metrics = store.con, cfg["metrics"]
    run = load_runs(con, {run_id}).get(run_id)
    if run is None:
        raise UserError(f"no stored run '{run_id}' in {store.path}")
    if run.status != "ok":
        raise UserError(f"run '{run_id}' did not finish (status {run.status}); it cannot be re-scored")
    _check_versions(con, run)
    rescorer = Rescorer(con, metrics, TEMP)
    used, copied, rescored = {}, [], []
    for m in metrics:
        differs = rescorer.differs(m, [run])
        used[m] = {"hash": rescorer.hash(m), "scored_with": run.metric_hash(m),
                   "source": "re-scored from stored outputs" if differs else "stored scores"}
        if not differs:
            copied.append(m)
            continue
        reason = rescorer.refusal(m, [run])
        if reason:
            raise UserError(f"cannot re-score run {run_id}: {reason}")
        rescored.append(m)
    started = utc_now()
    for m in rescored:
        rescorer.rescore(run, m)
    old = con.execute("SELECT config, n_errors, git_commit FROM runs WHERE run_id = ?", [run_id]).fetchall()[0]
    config = {**json.loads(old[0]), "metrics": metrics, "rescore": {"from_run": run_id}}
    new_id = new_run_id("rescore")
    with store.transaction() as tx:
        tx.execute("INSERT INTO runs (run_id, command, model_name, model_fingerprint, config_hash, metrics_hash, "
                   "dataset_versions, git_commit, started_at, finished_at, status, n_cases, n_model_calls, n_errors, "
                   "config) SELECT ?, 'rescore', model_name, model_fingerprint, ?, ?, dataset_versions, ?, ?, ?, 'ok', "
                   "n_cases, 0, n_errors, ? FROM runs WHERE run_id = ?",
                   [new_id, content_hash(config), metrics_hash(metrics), git_commit(project_dir), started, utc_now(),
                    canonical_json(config), run_id])
        tx.execute("INSERT INTO run_cases SELECT ?, dataset, dataset_version, case_id, input_hash, output_key FROM run_cases "
                   "WHERE run_id = ?", [new_id, run_id])
        tx.execute("INSERT INTO scores SELECT ?, dataset, dataset_version, case_id, repeat, metric, value, passed, "
                   "detail FROM scores WHERE run_id = ? AND list_contains(?, metric)", [new_id, run_id, copied])
        tx.execute(f"INSERT INTO scores SELECT ?, dataset, dataset_version, case_id, repeat, metric, value, passed, "
                   f"detail FROM {TEMP} WHERE run_id = ?", [new_id, run_id])
    summary = compile_evaluate(metrics).statements[-1]

    def rows(rid: str) -> list[dict]:
        return [r for r in execute(con, summary, {"run_id": rid}) if r["tag"] is None]

    return {"command": "rescore", "run_id": new_id, "from_run": run_id,
            "model": {"name": run.model_name, "fingerprint": run.fingerprint},
            "dataset_versions": run.dataset_versions, "metrics_hash": metrics_hash(metrics),
            "model_calls": rescorer.model_calls, "metrics": used, "rescored": rescored, "copied": copied,
            "summary": [_plain(r) for r in rows(new_id)], "before": [_plain(r) for r in rows(run_id)],
            "store": str(store.path)}


def _plain(row: dict) -> dict:
    keep = ("dataset", "metric", "n", "mean", "pass_rate")
    return {k: (float(row[k]) if k in ("mean", "pass_rate") and row[k] is not None else row[k]) for k in keep}


def print_rescore(result: dict) -> None:
    console.print(f"run {result['from_run']} ({result['model']['name']}) re-scored as [bold]{result['run_id']}[/]: "
                  f"{len(result['rescored'])} metric(s) re-scored from stored outputs "
                  f"({', '.join(result['rescored']) or 'none'}), {len(result['copied'])} unchanged, "
                  f"{result['model_calls']} model calls", highlight=False)
    before = {(r["dataset"], r["metric"]): r for r in result["before"]}
    table = Table(title_justify="left")
    for col in ("dataset", "metric", "definition", "n", "mean before", "mean now", "pass rate before", "pass rate now"):
        table.add_column(col, justify="right" if col not in ("dataset", "metric", "definition") else "left")

    def num(v) -> str:
        return "-" if v is None else f"{v:.4g}"

    for r in result["summary"]:
        b = before.get((r["dataset"], r["metric"]), {})
        source = "re-scored" if r["metric"] in result["rescored"] else "unchanged"
        table.add_row(r["dataset"], r["metric"], f"{source} {result['metrics'][r['metric']]['hash']}", str(r["n"]),
                      num(b.get("mean")), num(r["mean"]), num(b.get("pass_rate")), num(r["pass_rate"]))
    console.print(table)


@command("rescore", "score a stored run again under the configured metrics, from its stored outputs (no model "
                    "calls); stored as a new run", arguments=("run",))
def rescore(composed: Composed) -> Outcome:
    run_id = _run_id(composed.args)
    path = store_path(composed.config, composed.project)
    if not path.exists():
        raise UserError(f"no store at {path}: nothing to re-score")
    with Store.open(path) as store:
        result = rescore_run(store, run_id, composed.config, composed.project.dir)
    print_rescore(result)
    return Outcome(0, result, "whatif_rescore_result")
