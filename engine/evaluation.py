"""One model over the selected datasets: load data, call the model through the cache, score in SQL.

The store is held only for short steps, never while a model is called (an API model can take hours, and
DuckDB allows one writer): (1) read what the run needs -- new dataset versions and the run's row are written
here, in one short transaction -- and which outputs are cached; (2) call the model with the store closed,
journaling each batch (engine/runner.py); (3) run the metrics' Python steps (judges, encoders) on a private
in-memory copy of the run, with the store opened only for short reads of cached answers; (4) write outputs,
cases of the run, prepared rows and scores in one short transaction.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pyarrow as pa

from engine import datasets as ds
from engine.config import Project
from engine.provenance import canonical_json, content_hash, git_commit, new_run_id, utc_now
from engine.runner import CallStats
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
            "aggregates": self.aggregates,
            "summary": self.summary,
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
        head = ds.follow_head(store, d, cfg["dataset"].get(d.name, {}), project.dir)
        if head is not d:
            added = len(head.cases) - len(d.cases)
            console.print(f"[magenta]{d.name}[/]: using the bridge's version {head.version} "
                          f"({len(head.cases)} cases, {added:+d} from production since {d.version})")
            ds.store_version(store, head)
        out.append(head)
    return out


def metrics_hash(metrics: dict) -> str:
    return content_hash(metrics)


def load_datasets(cfg: dict, project: Project) -> list[ds.DatasetVersion]:
    return [ds.load(name, spec, project.dir) for name, spec in cfg["dataset"].items()]


def run_cases_table(run_id: str, datasets: list[ds.DatasetVersion], identity: str) -> pa.Table:
    """The run's cases with the key of the output each one reads (engine/output_identity.py)."""
    from engine.output_identity import output_keys

    n = sum(len(d.cases) for d in datasets)
    case_ids = pa.array([c.case_id for d in datasets for c in d.cases], pa.string())
    input_hashes = pa.array([c.input_hash for d in datasets for c in d.cases], pa.string())
    names = pa.array([d.name for d in datasets for _ in d.cases], pa.string()).dictionary_encode()
    versions = pa.array([d.version for d in datasets for _ in d.cases], pa.string()).dictionary_encode()
    return pa.table({"run_id": pa.repeat(pa.scalar(run_id), n), "dataset": names.cast(pa.string()),
                     "dataset_version": versions.cast(pa.string()), "case_id": case_ids,
                     "input_hash": input_hashes, "output_key": output_keys(identity, input_hashes, case_ids)})


def evaluate_model(access: StoreAccess, model_spec: dict, datasets: list[ds.DatasetVersion], cfg: dict,
                   project: Project, command: str = "evaluate") -> EvalRun:
    from engine.bulk import write_arrow
    from engine.compiler import compile_evaluate, default_aggregate
    from engine.metrics.base import has_prepare_step
    from engine.models import build_adapter, fingerprint
    from engine.runner import Journal, call_model, discard_journals, missing, needed_table, recover_journals

    adapter = build_adapter(model_spec, project.dir)
    fp = fingerprint(adapter)
    plan = compile_evaluate(cfg["metrics"])
    run_cfg = cfg.get("run", {})
    repeats = int(model_spec.get("repeats", 1))
    run_id, started, commit = new_run_id(command), utc_now(), git_commit(project.dir)
    config_hash, m_hash = content_hash(cfg), metrics_hash(cfg["metrics"])
    prepared = has_prepare_step(cfg["metrics"])

    # 1. What the run needs and what the cache holds (one short write: dataset versions, the run's row).
    with access.open() as store, store.transaction() as con:
        recover_journals(store, access.journal_dir)
        for dataset in datasets:
            ds.store_version(store, dataset)
        datasets = follow_bridge_heads(store, datasets, cfg, project)
        run_cases = run_cases_table(run_id, datasets, adapter.output_identity)
        todo, distinct = missing(con, fp, needed_table(run_cases.column("output_key"), run_cases.column("case_id"),
                                                       run_cases.column("dataset_version")), repeats)
        versions = {d.name: d.version for d in datasets}
        con.execute("INSERT INTO runs (run_id, command, model_name, model_fingerprint, config_hash, metrics_hash, "
                    "dataset_versions, git_commit, started_at, status, config) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [run_id, command, model_spec["name"], fp, config_hash, m_hash, canonical_json(versions), commit,
                     started, "running", canonical_json(cfg)])
        scratch_rows = _scratch_rows(con, fp, run_cases, repeats, run_id) if prepared else None

    # 2. Call the model for what is missing, store closed.
    all_cases = [c for d in datasets for c in d.cases]
    called = call_model(adapter, fp, todo, distinct, all_cases, run_id, repeats=repeats,
                        batch_size=int(model_spec.get("batch_size") or run_cfg.get("batch_size", 32)),
                        show_progress=run_cfg.get("progress", True), journal=Journal(access.journal_dir, run_id))

    # 3. The metrics' Python steps (judges, encoders) on a private copy of the run, store closed.
    writes: list = []
    if prepared:
        _prepare_on_scratch(scratch_rows, run_cases, called.outputs, access, run_id, repeats, project, run_cfg,
                            cfg["metrics"], writes)

    # 4. Everything the run produced, in one short transaction.
    reports: dict[str, dict[str, list[dict]]] = {}
    params = {"run_id": run_id, "repeats": repeats}
    from engine.executor import execute
    with access.open() as store, store.transaction() as con:
        write_arrow(con, "run_cases", run_cases)
        write_arrow(con, "outputs", called.outputs, replace=True)  # a new answer replaces a stored error
        for write in writes:
            write.apply(con)
        for statement in plan.statements[:-1]:
            rows = execute(con, statement, params)
            section, _, metric = statement.name.partition(":")
            if section != "score":
                reports.setdefault(section, {})[metric] = rows
        summary = execute(con, plan.statements[-1], params)
        finished = utc_now()
        n_errors = con.execute("SELECT count(*) FROM run_cases AS rc JOIN outputs AS o ON o.output_key = rc.output_key "
                               "WHERE rc.run_id = ? AND o.model_fingerprint = ? AND o.error IS NOT NULL "
                               "AND o.repeat < ?", [run_id, fp, repeats]).fetchall()[0][0]
        con.execute("UPDATE runs SET status = 'ok', finished_at = ?, n_cases = ?, n_model_calls = ?, n_errors = ? "
                    "WHERE run_id = ?", [finished, len(run_cases), called.stats.called, n_errors, run_id])
    discard_journals(access.journal_dir, run_id)
    return EvalRun(run_id, model_spec["name"], fp, versions, config_hash, m_hash, commit, started.isoformat(),
                   finished.isoformat(), called.stats, [_plain(r) for r in summary],
                   {name: default_aggregate(spec) for name, spec in cfg["metrics"].items()}, reports)


def _scratch_rows(con, fingerprint: str, run_cases: pa.Table, repeats: int, run_id: str) -> dict[str, pa.Table]:
    """What a private copy of the run needs from the store: its runs row, its cases and its cached outputs."""
    con.register("flywheel_run_cases", run_cases)
    try:
        return {
            "runs": con.sql("SELECT * FROM runs WHERE run_id = ?", params=[run_id]).to_arrow_table(),
            "cases": con.sql("SELECT c.* FROM cases AS c WHERE c.dataset_version IN "
                             "(SELECT DISTINCT dataset_version FROM flywheel_run_cases)").to_arrow_table(),
            "outputs": con.sql("SELECT o.* FROM outputs AS o WHERE o.model_fingerprint = ? AND o.repeat < ? "
                               "AND o.output_key IN (SELECT output_key FROM flywheel_run_cases)",
                               params=[fingerprint, repeats]).to_arrow_table(),
        }
    finally:
        con.unregister("flywheel_run_cases")


def _prepare_on_scratch(rows: dict[str, pa.Table], run_cases: pa.Table, new_outputs: pa.Table, access: StoreAccess,
                        run_id: str, repeats: int, project: Project, run_cfg: dict, metrics: dict,
                        writes: list) -> None:
    import duckdb

    from engine.bulk import write_arrow
    from engine.metrics.base import PrepareContext, prepare_metrics

    scratch = Store(duckdb.connect(":memory:"), Path(":memory:"))
    try:
        scratch.migrate()
        con = scratch.con
        con.execute("SET TimeZone = 'UTC'")
        for name in ("runs", "cases"):
            con.register("flywheel_scratch", rows[name])
            con.execute(f"INSERT INTO {name} SELECT * FROM flywheel_scratch")  # names from this function
            con.unregister("flywheel_scratch")
        write_arrow(con, "run_cases", run_cases)
        write_arrow(con, "outputs", rows["outputs"])
        write_arrow(con, "outputs", new_outputs, replace=True)
        ctx = PrepareContext(scratch, run_id, repeats, project, run_cfg.get("progress", True),
                             int(run_cfg.get("batch_size", 32)), cache=access.read, writes=writes,
                             journal_dir=access.journal_dir)
        prepare_metrics(ctx, metrics)
    finally:
        scratch.con.close()


def _plain(row: dict) -> dict:
    return {k: (float(v) if isinstance(v, (int, float)) and k not in ("n",) and v is not None else v)
            for k, v in row.items()}


def store_path(cfg: dict, project: Project) -> Path:
    p = Path(cfg["store"]["path"]).expanduser()
    return p if p.is_absolute() else project.dir / p
