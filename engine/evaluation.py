"""One model over the selected datasets: load data, call the model through the cache, score in SQL."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine import datasets as ds
from engine.compiler import compile_evaluate, default_aggregate
from engine.config import Project
from engine.executor import execute
from engine.metrics.base import PrepareContext, prepare_metrics
from engine.models import build_adapter, fingerprint
from engine.models.errors import error_summary
from engine.provenance import canonical_json, content_hash, git_commit, new_run_id, stored_config, utc_now
from engine.provenance import config_hash as provenance_hash
from engine.runner import CallStats, call_model
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
            **self.reports,
        }


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


def evaluate_model(store: Store, model_spec: dict, datasets: list[ds.DatasetVersion], cfg: dict,
                   project: Project, command: str = "evaluate") -> EvalRun:
    adapter = build_adapter(model_spec, project.dir)
    fp = fingerprint(adapter)
    plan = compile_evaluate(cfg["metrics"])
    for dataset in datasets:
        ds.store_version(store, dataset)
    datasets = follow_bridge_heads(store, datasets, cfg, project)
    run_id = new_run_id(command)
    started = utc_now()
    commit = git_commit(project.dir)
    versions = {d.name: d.version for d in datasets}
    config_hash = provenance_hash(cfg)
    m_hash = metrics_hash(cfg["metrics"])
    repeats = int(model_spec.get("repeats", 1))
    with store.transaction() as con:
        con.execute("INSERT INTO runs (run_id, command, model_name, model_fingerprint, config_hash, metrics_hash, "
                    "dataset_versions, git_commit, started_at, status, config) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [run_id, command, model_spec["name"], fp, config_hash, m_hash, canonical_json(versions), commit,
                     started, "running", stored_config(cfg)])
        con.executemany("INSERT INTO run_cases VALUES (?, ?, ?, ?, ?)",
                        [(run_id, d.name, d.version, c.case_id, c.input_hash) for d in datasets for c in d.cases])
    all_cases = [c for d in datasets for c in d.cases]
    stats = call_model(store, adapter, fp, all_cases, run_id, repeats=repeats,
                       batch_size=int(model_spec.get("batch_size") or cfg.get("run", {}).get("batch_size", 32)),
                       show_progress=cfg.get("run", {}).get("progress", True))
    params = {"run_id": run_id, "repeats": repeats}
    prepare_metrics(PrepareContext(store, run_id, repeats, project, cfg.get("run", {}).get("progress", True),
                                   int(cfg.get("run", {}).get("batch_size", 32))), cfg["metrics"])
    reports: dict[str, dict[str, list[dict]]] = {}
    with store.transaction() as con:
        for statement in plan.statements[:-1]:
            rows = execute(con, statement, params)
            section, _, metric = statement.name.partition(":")
            if section != "score":
                reports.setdefault(section, {})[metric] = rows
        summary = execute(con, plan.statements[-1], params)
        finished = utc_now()
        n_errors = con.execute("SELECT count(*) FROM outputs o JOIN run_cases rc ON o.input_hash = rc.input_hash "
                               "WHERE rc.run_id = ? AND o.model_fingerprint = ? AND o.error IS NOT NULL "
                               "AND o.repeat < ?", [run_id, fp, repeats]).fetchall()[0][0]
        error_messages = error_summary(con, run_id, fp, repeats) if n_errors else []
        con.execute("UPDATE runs SET status = 'ok', finished_at = ?, n_cases = ?, n_model_calls = ?, n_errors = ? "
                    "WHERE run_id = ?", [finished, len(all_cases), stats.called, n_errors, run_id])
    return EvalRun(run_id, model_spec["name"], fp, versions, config_hash, m_hash, commit, started.isoformat(),
                   finished.isoformat(), stats, [_plain(r) for r in summary],
                   {name: default_aggregate(spec) for name, spec in cfg["metrics"].items()}, reports, error_messages)


def _plain(row: dict) -> dict:
    return {k: (float(v) if isinstance(v, (int, float)) and k not in ("n",) and v is not None else v)
            for k, v in row.items()}


def store_path(cfg: dict, project: Project) -> Path:
    p = Path(cfg["store"]["path"]).expanduser()
    return p if p.is_absolute() else project.dir / p
