"""One model over the selected datasets: load data, call the model through the cache, score in SQL.

The store is held only for short steps, never while a model is called (an API model can take hours, and
DuckDB allows one writer): (1) read what the run needs -- new dataset versions and the run's row are written
here, in one short transaction -- and which outputs are cached; (2) call the model with the store closed,
journaling each batch (engine/runner.py); (3) run the metrics' Python steps (judges, encoders) on a private
in-memory copy of the run, with the store opened only for short reads of cached answers; (4) write outputs,
cases of the run, prepared rows and scores in one short transaction. With `backend=spark` each metric's scoring
SQL in step 4 runs on Spark over the run's scoring input, its rows written into the store's `scores`, except the
kinds Spark cannot run with the same meaning, which run on the store (recorded in the result's
`backend.not_portable`); the dataset-level reports and the summary run on the store.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pyarrow as pa

from engine import backend_choice
from engine import datasets as ds
from engine.config import Project
from engine.dataset_carry import follow_head
from engine.executor import execute
from engine.provenance import canonical_json, content_hash, git_commit, new_run_id, stored_config, utc_now
from engine.models.errors import error_summary
from engine.models.spec import ModelSpec
from engine.provenance import config_hash as provenance_hash
from engine.runner import CallStats
from engine.specs import RunSpec
from engine.sql import Plan, statement
from engine.store import Store


@dataclass
class EvalRun:
    run_id: str
    model_name: str
    model_fingerprint: str
    dataset_versions: dict[str, str]
    config_hash: str
    metrics_hash: str
    git_commit: str | None
    started_at: str
    finished_at: str
    calls: CallStats
    summary: list[dict] = field(default_factory=list)
    aggregates: dict[str, str] = field(default_factory=dict)  # metric -> declared aggregate
    # dataset-level reports of some metric kinds: section ("classification", "regression") -> metric -> rows
    reports: dict[str, dict[str, list[dict]]] = field(default_factory=dict)
    error_messages: list[dict] = field(default_factory=list)  # errored calls grouped by message (models/errors.py)
    backend: dict = field(default_factory=lambda: {"name": "duckdb"})  # what ran the scoring (backend_choice.py)

    def to_json(self) -> dict:
        return {
            "run_id": self.run_id,
            "model": {"name": self.model_name, "fingerprint": self.model_fingerprint},
            "dataset_versions": self.dataset_versions,
            "config_hash": self.config_hash,
            "metrics_hash": self.metrics_hash,
            "git_commit": self.git_commit,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "calls": {"needed": self.calls.needed, "cached": self.calls.cached, "called": self.calls.called,
                      "errors": self.calls.errors},
            "error_messages": self.error_messages,
            "aggregates": self.aggregates,
            "summary": self.summary,
            "backend": self.backend,
            **self.reports,
        }


@dataclass(frozen=True)
class StoreAccess:
    """How a long command reaches the store: opened for each short step, closed in between."""

    path: Path

    @contextmanager
    def open(self, read_only: bool = False) -> Iterator[Store]:
        with Store.open(self.path, read_only=read_only) as store:
            yield store

    def read(self):
        return self.open(read_only=True)

    @property
    def journal_dir(self) -> Path:
        return self.path.parent / "pending"


def follow_bridge_heads(store: Store, datasets: list[ds.DatasetVersion], cfg: dict, project: Project
                        ) -> list[ds.DatasetVersion]:
    """Swap in the bridge's newer version of a dataset (production cases added), saying so."""
    from engine.console import console

    out = []
    for d in datasets:
        head = follow_head(store, d, cfg["dataset"].get(d.name, {}), project.dir)
        if head is not d:
            added = len(head.cases) - len(d.cases)
            console.print(f"[magenta]{d.name}[/]: using the bridge's version {head.version} "
                          f"({len(head.cases)} cases, {added:+d} from production since {d.version})")
            ds.store_version(store, head)
        out.append(head)
    return out


def metrics_hash(metrics: dict) -> str:
    return content_hash(metrics)


def load_datasets(cfg: dict, project: Project) -> list:
    """The configured datasets (engine/dataset_cache.py: a file already loaded is not parsed again)."""
    from engine import evaluate_plan, journal
    from engine.dataset_cache import load_datasets as load

    with journal.step(evaluate_plan.READ_DATASETS.name):
        return load(cfg, project, store_path(cfg, project))


def _register_datasets(con, datasets: list) -> None:
    con.register("flywheel_run_datasets", pa.table({
        "name": pa.array([d.name for d in datasets], pa.string()),
        "dataset_version": pa.array([d.version for d in datasets], pa.string()),
        "ord": pa.array(range(len(datasets)), pa.int64())}))


class _RunCaseList:
    """The run's cases in order, as model requests need them: made (and files parsed) on first use only."""

    def __init__(self, datasets: list):
        self.datasets = datasets
        self._cases: list | None = None

    def __getitem__(self, index: int):
        if self._cases is None:
            self._cases = [c for d in self.datasets for c in d.cases]
        return self._cases[index]


@dataclass
class _Run:
    """One evaluation in progress: what step 1 read, for steps 2 to 4."""

    access: StoreAccess
    plan: Plan  # what runs: its statements are executed by name
    adapter: object  # engine.models.ModelAdapter
    fingerprint: str
    model_spec: dict
    cfg: dict
    project: Project
    run_id: str
    repeats: int
    started: object  # datetime
    commit: str | None
    config_hash: str
    metrics_hash: str
    datasets: list = field(default_factory=list)  # DatasetVersion or dataset_cache.FileVersion
    n_cases: int = 0
    run_cases: pa.Table | None = None  # fetched only for a metric's Python step (the scratch copy)
    todo: pa.Table | None = None  # (output key, repeat) pairs with no stored output
    distinct_keys: int = 0
    scratch_rows: dict | None = None  # what a private copy of the run needs, when a metric has a Python step

    @property
    def versions(self) -> dict[str, str]:
        return {d.name: d.version for d in self.datasets}


def evaluate_model(access: StoreAccess, model_spec: dict, datasets: list[ds.DatasetVersion], cfg: dict,
                   project: Project, command: str = "evaluate", plan: Plan | None = None) -> EvalRun:
    """Run the evaluate plan (engine/evaluate_plan.compile_run) of one model: `flywheel evaluate` hands over the
    plan it compiled (and shows in its run artifacts); the gate compiles one per side."""
    from engine.evaluate_plan import compile_run
    from engine.models import build_adapter, fingerprint

    adapter = build_adapter(model_spec, project.dir)
    backend_choice.start(cfg)  # backend=spark: the JVM starts now, not while the store is held (step 4)
    run = _Run(access, plan or compile_run(cfg, model_spec), adapter, fingerprint(adapter), model_spec, cfg,
               project, new_run_id(command),
               ModelSpec.of(model_spec).repeats, utc_now(), git_commit(project.dir), provenance_hash(cfg),
               metrics_hash(cfg["metrics"]))
    _read(run, datasets, command)
    try:
        from engine import evaluate_plan, journal

        with journal.step(evaluate_plan.MODEL_CALLS.name):
            called = _call_model(run)
        with journal.step(evaluate_plan.METRIC_STEPS.name) if run.scratch_rows is not None else nullcontext():
            writes = _prepare_metrics(run, called.outputs)
        return _write_results(run, called, writes)
    except BaseException as e:
        _mark_stopped(access, run.run_id, interrupted=isinstance(e, KeyboardInterrupt))
        raise


def _read(run: _Run, datasets: list, command: str) -> None:
    """Step 1: what the run needs and what the cache holds; one short write (dataset versions, the run's row)."""
    from engine import evaluate_plan as plan
    from engine import journal
    from engine.dataset_cache import remember_files
    from engine.executor import execute, execute_arrow
    from engine.metrics.base import has_prepare_step
    from engine.runner import missing, recover_journals

    with run.access.open() as store, store.transaction() as con:
        recover_journals(store, run.access.journal_dir)
        with journal.step(plan.REGISTER_DATASETS.name):
            for dataset in datasets:
                ds.store_version(store, dataset)
            remember_files(store, datasets)
            run.datasets = follow_bridge_heads(store, datasets, run.cfg, run.project)
        _register_datasets(con, run.datasets)
        # computed once here (a join and a window over every case), then read three times
        execute(con, run.plan.step("run_cases:stage"), {})
        run.todo, run.distinct_keys = missing(con, run.fingerprint, plan.RUN_CASES_TABLE, run.repeats)
        run.n_cases = execute(con, plan.RUN_CASE_COUNT, {})[0]["n"]
        execute(con, plan.START_RUN, {
            "run_id": run.run_id, "command": command, "model_name": run.model_spec["name"],
            "fingerprint": run.fingerprint, "config_hash": run.config_hash, "metrics_hash": run.metrics_hash,
            "dataset_versions": canonical_json(run.versions), "git_commit": run.commit, "started_at": run.started,
            "config": stored_config(run.cfg)})
        if has_prepare_step(run.cfg["metrics"]):
            params = {"run_id": run.run_id, "fingerprint": run.fingerprint, "repeats": run.repeats}
            run_cases, *scratch = (execute_arrow(con, st, params) for st in plan.SCRATCH)
            run.run_cases = run_cases
            run.scratch_rows = dict(zip(("runs", "cases", "outputs"), scratch))
        # the temporary table and the registered table end with this connection


def _call_model(run: _Run):
    """Step 2: call the model for the outputs the cache lacks, store closed, each batch journaled."""
    from engine.runner import Journal, call_model

    run_cfg = RunSpec.of(run.cfg)
    if getattr(run.adapter, "tools", None):  # an agent: each turn kept as it is answered, beside the store
        from engine.agents.turn_cache import TurnCache
        run.adapter.turn_cache = TurnCache(run.access.path.parent / "turns", run.adapter.fingerprint_payload())
    return call_model(run.adapter, run.fingerprint, run.todo, run.distinct_keys,
                      _RunCaseList(run.datasets), run.run_id, repeats=run.repeats,
                      batch_size=int(ModelSpec.of(run.model_spec).batch_size or run_cfg.batch_size),
                      show_progress=run_cfg.progress, journal=Journal(run.access.journal_dir, run.run_id))


def _prepare_metrics(run: _Run, new_outputs: pa.Table) -> list:
    """Step 3: the metrics' Python steps (judges, encoders) on a private in-memory copy of the run, store
    closed; returns their writes, deferred to step 4."""
    from engine.bulk import write_arrow
    from engine.metrics.base import PrepareContext, prepare_metrics

    writes: list = []
    if run.scratch_rows is None:
        return writes
    run_cfg = RunSpec.of(run.cfg)
    scratch = Store.in_memory()
    try:
        con = scratch.con
        write_arrow(con, "runs", run.scratch_rows["runs"])
        write_arrow(con, "cases", run.scratch_rows["cases"])
        write_arrow(con, "run_cases", run.run_cases)
        write_arrow(con, "outputs", run.scratch_rows["outputs"])
        write_arrow(con, "outputs", new_outputs, replace=True)
        ctx = PrepareContext(scratch, run.run_id, run.repeats, run.project, run_cfg.progress,
                             run_cfg.batch_size, cache=run.access.read, writes=writes,
                             journal_dir=run.access.journal_dir)
        prepare_metrics(ctx, run.cfg["metrics"])
    finally:
        scratch.con.close()
    return writes


def _write_results(run: _Run, called, writes: list) -> EvalRun:
    """Step 4: everything the run produced, in one short transaction."""
    from engine import evaluate_plan as run_plan
    from engine import journal
    from engine.agents.steps import INSERT_STEPS, store_steps
    from engine.compiler import SCORING_TABLE, default_aggregate
    from engine.runner import discard_journals

    *scoring, summary_step = run.plan.between(INSERT_STEPS.name, run_plan.COUNT_ERRORS.name)
    reports: dict[str, dict[str, list[dict]]] = {}
    params = {"run_id": run.run_id, "repeats": run.repeats}
    with run.access.open() as store, store.transaction() as con:
        # DuckDB, or Spark scoring the run's scoring input (mirrored from the store); writes stay in the store
        backend = backend_choice.backend_for(store, run.cfg, run.project.dir, inputs=(SCORING_TABLE,))
        _register_datasets(con, run.datasets)
        backend.run(run.plan.step("run_cases:insert"), {"run_id": run.run_id})
        con.unregister("flywheel_run_datasets")
        backend.write_step(run_plan.WRITE_OUTPUTS, called.outputs)
        store_steps(con, run.fingerprint, run.run_id)  # recorded agent trajectories, one row per step
        with journal.step(run_plan.METRIC_WRITES.name) if writes else nullcontext():
            for write in writes:
                write.apply(con)
        for step in scoring:
            rows = backend.run(step, params)
            section, _, metric = step.name.partition(":")
            if section not in ("score", "materialize"):
                reports.setdefault(section, {})[metric] = rows
        summary = backend.run(summary_step, params)
        finished = utc_now()
        n_errors = backend.run(run_plan.COUNT_ERRORS, {**params, "fingerprint": run.fingerprint})[0]["n"]
        error_messages = error_summary(con, run.run_id, run.fingerprint, run.repeats) if n_errors else []
        backend.run(run_plan.FINISH_RUN, {"finished_at": finished, "n_cases": run.n_cases, "run_id": run.run_id,
                                          "n_model_calls": called.stats.called, "n_errors": n_errors})
    discard_journals(run.access.journal_dir, run.run_id)
    return EvalRun(run.run_id, run.model_spec["name"], run.fingerprint, run.versions, run.config_hash,
                   run.metrics_hash, run.commit, run.started.isoformat(), finished.isoformat(), called.stats,
                   [_plain(r) for r in summary],
                   {name: default_aggregate(spec) for name, spec in run.cfg["metrics"].items()}, reports,
                   error_messages, backend_choice.provenance(backend))


_STOPPED = {
    True: statement("runs:aborted", "UPDATE runs SET status = 'aborted', aborted_at = $at WHERE run_id = $run_id "
                    "AND status = 'running'", "a run stopped by Ctrl-C"),
    False: statement("runs:failed", "UPDATE runs SET status = 'failed', finished_at = $at WHERE run_id = $run_id "
                     "AND status = 'running'", "a run stopped by an error"),
}


def _mark_stopped(access: StoreAccess, run_id: str, interrupted: bool) -> None:
    """A run that stopped on an error is marked failed, on Ctrl-C aborted (best effort: the store may be busy).
    The calls it paid for stay in its journal, which the next run recovers once this process has exited."""
    try:
        with access.open() as store:
            execute(store.con, _STOPPED[interrupted], {"at": utc_now(), "run_id": run_id})
    except Exception:
        pass


def _plain(row: dict) -> dict:
    return {k: (float(v) if isinstance(v, (int, float)) and k not in ("n",) and v is not None else v)
            for k, v in row.items()}


def store_path(cfg: dict, project: Project) -> Path:
    p = Path(cfg["store"]["path"]).expanduser()
    return p if p.is_absolute() else project.dir / p
