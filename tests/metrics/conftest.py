"""Score metric specs on hand-written rows with the real compiler, store schema and DuckDB.

`score(spec, rows)` puts each row (a case plus the model's output for it) into an in-memory store exactly as
`flywheel evaluate` would leave it, runs the metric's prepare step and the compiled statements of
`compile_evaluate({"m": spec})`, and returns what landed in `scores` plus the dataset-level reports.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from engine.compiler import compile_evaluate
from engine.config import Project
from engine.datasets import expected_answers, input_text
from engine.executor import execute
from engine.metrics.base import PrepareContext, prepare_metrics
from engine.provenance import canonical_json, utc_now
from engine.store import Store

FIXTURE_PROJECT = Path(__file__).resolve().parent.parent / "fixtures" / "project"


@dataclass
class Scored:
    rows: list[dict]  # one per scored (case, repeat), in input order: case_id, value, passed, detail
    reports: dict[str, list[dict]] = field(default_factory=dict)  # statement name -> rows
    summary: list[dict] = field(default_factory=list)
    store: Any = None

    @property
    def values(self) -> list[float | None]:
        return [r["value"] for r in self.rows]

    @property
    def passed(self) -> list[bool]:
        return [r["passed"] for r in self.rows]

    @property
    def details(self) -> list[str | None]:
        return [r["detail"] for r in self.rows]

    def by_case(self, case_id: str) -> dict:
        return next(r for r in self.rows if r["case_id"] == case_id)


def _insert(store: Store, rows: list[dict]) -> None:
    import polars as pl

    con = store.con
    now = utc_now()
    con.execute("INSERT INTO runs (run_id, command, model_name, model_fingerprint, config_hash, metrics_hash, "
                "dataset_versions, started_at, status, config) VALUES ('run', 'evaluate', 'm', 'fp', '', '', "
                "'{}', ?, 'running', '{}')", [now])
    cases, outputs, seen = [], [], set()
    for i, row in enumerate(rows):
        case_id = row.get("case_id", f"c{i + 1:02d}")
        dataset = row.get("dataset", "d")
        if case_id not in seen:
            seen.add(case_id)
            cases.append({
                "dataset": dataset, "dataset_version": f"{dataset}-v1", "case_id": case_id, "position": i + 1,
                "input": canonical_json(row.get("input", "q")), "input_text": input_text(row.get("input", "q")),
                "expected": canonical_json(row.get("expected")),
                "expected_answers": list(expected_answers(row.get("expected"))),
                "context": list(row.get("context", [])), "tags": list(row.get("tags", [])),
                "metadata": canonical_json(row.get("metadata", {})), "input_hash": f"h-{case_id}"})
        outputs.append({"input_hash": f"h-{case_id}", "repeat": row.get("repeat", 0), "output_text": row.get("output"),
                        "error": row.get("error"), "latency_ms": row.get("latency_ms"),
                        "prompt_tokens": row.get("prompt_tokens"), "completion_tokens": row.get("completion_tokens"),
                        "cost": row.get("cost")})
    text_list = pl.List(pl.String)
    con.register("new_cases", pl.DataFrame(cases, schema_overrides={
        "expected_answers": text_list, "context": text_list, "tags": text_list}, infer_schema_length=None))
    con.register("new_outputs", pl.DataFrame(outputs, schema_overrides={
        "output_text": pl.String, "error": pl.String, "latency_ms": pl.Float64, "prompt_tokens": pl.Int64,
        "completion_tokens": pl.Int64, "cost": pl.Float64}, infer_schema_length=None))
    con.execute("INSERT INTO cases SELECT dataset_version, case_id, position, input::JSON, input_text, "
                "expected::JSON, expected_answers, context, tags, metadata::JSON, input_hash FROM new_cases")
    con.execute("INSERT INTO run_cases SELECT 'run', dataset, dataset_version, case_id, input_hash, input_hash FROM new_cases")
    con.execute("INSERT INTO outputs SELECT 'fp', input_hash, repeat, output_text, error, latency_ms, prompt_tokens, "
                "completion_tokens, cost, NULL, 'run', ? FROM new_outputs", [now])
    con.unregister("new_cases")
    con.unregister("new_outputs")


def score_rows(spec: dict, rows: list[dict], project_dir: Path = FIXTURE_PROJECT, repeats: int = 1,
               store: Store | None = None, prepare: bool = True) -> Scored:
    store = store or Store(duckdb.connect(":memory:"), Path(":memory:"))
    store.migrate()
    _insert(store, rows)
    metrics = {"m": spec}
    plan = compile_evaluate(metrics)
    params = {"run_id": "run", "repeats": repeats}
    if prepare:
        prepare_metrics(PrepareContext(store, "run", repeats, Project(project_dir, None)), metrics)
    reports = {}
    for statement in plan.statements:
        result = execute(store.con, statement, params)
        if not statement.name.startswith("score:"):
            reports[statement.name] = result
    order = {row.get("case_id", f"c{i + 1:02d}"): i for i, row in enumerate(rows)}
    scored = store.con.execute("SELECT case_id, repeat, value, passed, detail FROM scores ORDER BY repeat").fetchall()
    out = [dict(zip(("case_id", "repeat", "value", "passed", "detail"), r)) for r in scored]
    out.sort(key=lambda r: (order[r["case_id"]], r["repeat"]))
    return Scored(out, reports, reports.pop("summary", []), store)


@pytest.fixture
def score():
    """score(spec, rows) -> Scored; rows are dicts: input, expected, context, tags, metadata, output, error,
    latency_ms, prompt_tokens, completion_tokens, cost, case_id, dataset, repeat (all optional)."""
    return score_rows
