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
from engine.journal import running_plan
from engine.sql import Plan, statement
from engine.whatif.history import RUNS, VERSIONS, load_runs, stored_versions
from engine.whatif.prepared import Prepared
from engine.whatif.rescore import CHECKS, Rescorer, rescore_statements, table_statement

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


OLD_RUN = statement("old_run", "SELECT config, n_errors, git_commit FROM runs WHERE run_id = $from_run",
                    "the stored run's config")
STORE_RUN = (
    statement("store:run", """
        INSERT INTO runs (run_id, command, model_name, model_fingerprint, config_hash, metrics_hash, dataset_versions,
                          git_commit, started_at, finished_at, status, n_cases, n_model_calls, n_errors, config)
        SELECT $run_id, 'rescore', model_name, model_fingerprint, $config_hash, $metrics_hash, dataset_versions,
               $git_commit, $started_at, $finished_at, 'ok', n_cases, 0, n_errors, $config
        FROM runs WHERE run_id = $from_run""", "the new run"),
    statement("store:run_cases", "INSERT INTO run_cases SELECT $run_id, dataset, dataset_version, case_id, input_hash, "
              "output_key FROM run_cases WHERE run_id = $from_run", "its cases: the stored run's"),
    statement("store:copied", "INSERT INTO scores SELECT $run_id, dataset, dataset_version, case_id, repeat, metric, "
              "value, passed, detail FROM scores WHERE run_id = $from_run AND list_contains($copied, metric)",
              "the scores of unchanged metrics, copied"),
    statement("store:rescored", f"INSERT INTO scores SELECT $run_id, dataset, dataset_version, case_id, repeat, "
              f"metric, value, passed, detail FROM {TEMP} WHERE run_id = $from_run", "the re-scored rows"),
)


def compile_plan(cfg: dict) -> tuple[Plan, dict, Prepared]:
    """What `flywheel rescore` runs: the stored run and its dataset versions, the checks and the re-scoring SQL of
    every configured metric (those whose definition changed run), the new run's rows, both runs' summaries."""
    metrics = cfg["metrics"]
    rescores = rescore_statements(metrics, tuple(metrics), TEMP)
    create = table_statement(TEMP)
    summary = compile_evaluate(metrics).statements[-1]
    plan = Plan("rescore", (RUNS, VERSIONS, create.statement, *(p.statement for p in CHECKS),
                            *(p.statement for p in rescores.values()), OLD_RUN, *STORE_RUN, summary))
    return plan, rescores, create


def compile_sql(composed: Composed) -> Plan:
    return compile_plan(composed.config)[0]


def rescore_run(store: Store, run_id: str, cfg: dict, project_dir) -> dict:
    con, metrics = store.con, cfg["metrics"]
    plan, rescores, create = compile_plan(cfg)
    running_plan(plan)
    run = load_runs(con, {run_id}).get(run_id)
    if run is None:
        raise UserError(f"no stored run '{run_id}' in {store.path}")
    if run.status != "ok":
        raise UserError(f"run '{run_id}' did not finish (status {run.status}); it cannot be re-scored")
    _check_versions(con, run)
    rescorer = Rescorer(con, metrics, TEMP, rescores, create)
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
    old = execute(con, OLD_RUN, {"from_run": run_id})[0]
    config = {**json.loads(old["config"]), "metrics": metrics, "rescore": {"from_run": run_id}}
    new_id = new_run_id("rescore")
    params = {"run_id": new_id, "from_run": run_id, "config_hash": content_hash(config),
              "metrics_hash": metrics_hash(metrics), "git_commit": git_commit(project_dir), "started_at": started,
              "finished_at": utc_now(), "config": canonical_json(config), "copied": copied}
    with store.transaction() as tx:
        for st in STORE_RUN:
            execute(tx, st, params)
    summary = plan.statements[-1]

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
                    "calls); stored as a new run", arguments=("run",), compile=compile_sql)
def rescore(composed: Composed) -> Outcome:
    run_id = _run_id(composed.args)
    path = store_path(composed.config, composed.project)
    if not path.exists():
        raise UserError(f"no store at {path}: nothing to re-score")
    with Store.open(path) as store:
        result = rescore_run(store, run_id, composed.config, composed.project.dir)
    print_rescore(result)
    return Outcome(0, result, "whatif_rescore_result")
