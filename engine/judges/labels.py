"""Human labels as data: read a labels file (or a completed bridge label queue), resolve each label to the exact
answer the person judged, and store it with its provenance.

Two layouts are read, line by line, with the strict JSON Lines reader:
* a label record (schemas/judge_label.schema.json): metric, case_id + dataset + output|run_id, or trace_id;
  verdict and/or score; labeller;
* a label-queue row written by `flywheel bridge` (id, input, metadata.trace_id, reject, ...) that a person
  completed with a verdict and/or score, a labeller and (unless its sampling policy names the judge) a metric.

Every problem in the file is reported at once (file:line: what is wrong) and nothing is stored then; a valid file
is stored in one transaction. Importing the same file again changes nothing (a label is keyed by metric, answer
and labeller); a changed verdict on the same answer by the same person replaces the old one and is counted.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from engine import datasets as ds, journal, jsonlines
from engine.config import Project
from engine.dataset_carry import follow_head
from engine.errors import UserError
from engine.executor import execute
from engine.judges.judging import output_hash
from engine.paths import resolve_data_path
from engine.provenance import content_hash, utc_now
from engine.schemas import all_errors, dotted, validator
from engine.sql import PythonStep, statement
from engine.store import Store

MAX_PROBLEMS = 30

DATASETS = PythonStep("labels:datasets", "each dataset a label names: its file's version stored, the bridge's head "
                      "followed (engine/dataset_carry.py)", "when a label is about a golden case")
RUN_OUTPUT = statement("labels:run_output", """
    SELECT o.output_text, o.error FROM runs AS r
    JOIN run_cases AS rc ON rc.run_id = r.run_id
    JOIN outputs AS o ON o.model_fingerprint = r.model_fingerprint AND o.output_key = rc.output_key AND o.repeat = 0
    WHERE r.run_id = $run_id AND rc.dataset_version = $version AND rc.case_id = $case_id""",
                       "the answer a label names by run id", "for each label that names a run_id")
TRACE_OUTPUT = statement("labels:trace_output", "SELECT output FROM traces WHERE trace_id = $trace_id",
                         "the answer of a labelled trace", "for each label about a trace")
EXISTING = statement("labels:existing", "SELECT label_key, verdict, score, note FROM judge_labels "
                     "WHERE list_contains($keys, label_key)", "the file's labels stored before")
INSERT_LABELS = statement("labels:insert", """
    INSERT OR REPLACE INTO judge_labels
    SELECT label_key, metric, item_kind, dataset, dataset_version, item_id, output_text, output_hash, output_source,
           verdict, score, labeller, labelled_at::TIMESTAMPTZ, note, $batch_id, $path, source_line, $now
    FROM new_labels""", "new and changed labels (new_labels: an Arrow table of them)", "when a label is new or changed")
LABEL_BATCH = statement("labels:batch", "INSERT INTO judge_label_batches VALUES ($batch_id, $path, $sha256, $n_read, "
                        "$inserted, $updated, $unchanged, $pending, $now)", "the import, with its counts")
IMPORT_STATEMENTS = (DATASETS, RUN_OUTPUT, TRACE_OUTPUT, EXISTING, INSERT_LABELS, LABEL_BATCH)


@dataclass(frozen=True)
class Label:
    metric: str
    item_kind: str  # case | trace
    dataset: str | None
    dataset_version: str | None
    item_id: str
    output_text: str
    output_source: str
    verdict: str | None
    score: float | None
    labeller: str
    labelled_at: datetime | None
    note: str | None
    line: int

    @property
    def output_hash(self) -> str:
        return output_hash(self.output_text)

    @property
    def key(self) -> str:
        return content_hash({"metric": self.metric, "kind": self.item_kind, "dataset": self.dataset,
                             "item": self.item_id, "output": self.output_hash, "labeller": self.labeller}, length=24)


class _Resolver:
    """Finds the answer a label is about: a golden case (of a selected dataset) or a stored trace."""

    def __init__(self, store: Store, cfg: dict, project: Project):
        self.store, self.cfg, self.project = store, cfg, project
        self._datasets: dict[str, ds.DatasetVersion] = {}

    def dataset(self, name: str) -> ds.DatasetVersion:
        if name not in self._datasets:
            specs = self.cfg.get("dataset") or {}
            if name not in specs:
                raise LookupError(f"dataset '{name}' is not selected (selected: {', '.join(specs) or 'none'})")
            with journal.step(DATASETS.name):
                version = ds.load(name, specs[name], self.project.dir)
                ds.store_version(self.store, version)
                version = follow_head(self.store, version, specs[name], self.project.dir)
                ds.store_version(self.store, version)
            self._datasets[name] = version
        return self._datasets[name]

    def case(self, dataset: str, case_id: str) -> ds.DatasetVersion:
        version = self.dataset(dataset)
        if not any(c.case_id == case_id for c in version.cases):
            raise LookupError(f"no case '{case_id}' in dataset '{dataset}' (version {version.version})")
        return version

    def run_output(self, run_id: str, version: str, case_id: str) -> str:
        rows = execute(self.store.con, RUN_OUTPUT, {"run_id": run_id, "version": version, "case_id": case_id})
        if not rows:
            raise LookupError(f"run '{run_id}' has no stored output for case '{case_id}' (dataset version {version})")
        if rows[0]["output_text"] is None:
            raise LookupError(f"run '{run_id}' errored on case '{case_id}' ({rows[0]['error']}): there is no answer "
                              f"to judge")
        return rows[0]["output_text"]

    def trace_output(self, trace_id: str) -> str:
        rows = execute(self.store.con, TRACE_OUTPUT, {"trace_id": trace_id})
        if not rows:
            raise LookupError(f"no stored trace '{trace_id}' (ingest the traces first)")
        if rows[0]["output"] is None:
            raise LookupError(f"trace '{trace_id}' has no output: there is no answer to judge")
        return rows[0]["output"]


_QUEUE_KEYS = {"id", "input", "expected", "context", "tags", "metadata", "reject"}
_QUEUE_LABEL_KEYS = {"metric", "verdict", "score", "labeller", "labelled_at", "note"}


def _is_queue_row(row: dict) -> bool:
    return "case_id" not in row and "trace_id" not in row and isinstance(row.get("metadata"), dict) and "input" in row


def _policy_judges(cfg: dict) -> dict[str, str]:
    """Bridge policies of kind judge_disagreement -> their judge metric (a queue row's default metric)."""
    policies = ((cfg.get("bridge") or {}).get("policies") or {})
    return {name: p["judge"] for name, p in policies.items()
            if isinstance(p, dict) and p.get("kind") == "judge_disagreement" and p.get("judge")}


def _labelled_at(value) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise LookupError(f"labelled_at {value!r} is not an ISO date-time") from None


def _check_label_fields(row: dict) -> None:
    if row.get("verdict") is None and row.get("score") is None:
        raise LookupError("give `verdict` (pass | fail) and/or `score`")
    if row.get("verdict") is not None and row["verdict"] not in ("pass", "fail"):
        raise LookupError(f"verdict {row['verdict']!r} is not pass or fail")
    if row.get("score") is not None and (isinstance(row["score"], bool) or not isinstance(row["score"], (int, float))):
        raise LookupError(f"score {row['score']!r} is not a number")
    if not isinstance(row.get("labeller"), str) or not row["labeller"].strip():
        raise LookupError("`labeller` is required: who gave this verdict")


def _from_record(row: dict, line: int, resolver: _Resolver) -> Label:
    has_case, has_trace = "case_id" in row, "trace_id" in row
    if has_case == has_trace:
        raise LookupError("give exactly one of case_id (a golden case) or trace_id (a production trace)")
    if has_case and "dataset" not in row:
        raise LookupError("a case label needs `dataset` (the golden dataset of case_id)")
    if has_case and ("output" in row) == ("run_id" in row):
        raise LookupError("a case label needs exactly one of `output` (the answer read) or `run_id` (whose stored "
                          "output was read)")
    if has_trace and any(k in row for k in ("output", "run_id", "dataset")):
        raise LookupError("a trace label takes the trace's stored output: drop output, run_id and dataset")
    _check_label_fields(row)
    problems = all_errors(validator("judge_label"), row)
    if problems:
        path, message = problems[0]
        raise LookupError(message if message.startswith("unknown key") else f"{dotted(path)}: {message}")
    if has_case:
        version = resolver.case(row["dataset"], row["case_id"])
        if "output" in row:
            output, source = row["output"], "label"
        else:
            output, source = resolver.run_output(row["run_id"], version.version, row["case_id"]), f"run:{row['run_id']}"
        return Label(row["metric"], "case", row["dataset"], version.version, row["case_id"], output, source,
                     row.get("verdict"), _score(row), row["labeller"].strip(), _labelled_at(row.get("labelled_at")),
                     row.get("note"), line)
    return Label(row["metric"], "trace", None, None, row["trace_id"], resolver.trace_output(row["trace_id"]), "trace",
                 row.get("verdict"), _score(row), row["labeller"].strip(), _labelled_at(row.get("labelled_at")),
                 row.get("note"), line)


def _score(row: dict) -> float | None:
    return None if row.get("score") is None else float(row["score"])


def _from_queue_row(row: dict, line: int, resolver: _Resolver, judges: dict[str, str]) -> Label | None:
    """A completed label-queue row, or None when it is still pending (no verdict, no score) or rejected."""
    unknown = sorted(set(row) - _QUEUE_KEYS - _QUEUE_LABEL_KEYS)
    if unknown:
        raise LookupError(f"unknown key '{unknown[0]}' in a label-queue row; a person adds only: "
                          + ", ".join(sorted(_QUEUE_LABEL_KEYS)))
    if row.get("reject") or (row.get("verdict") is None and row.get("score") is None):
        return None
    trace_id = row["metadata"].get("trace_id")
    if not isinstance(trace_id, str):
        raise LookupError("a label-queue row needs metadata.trace_id")
    metric = row.get("metric") or judges.get(str(row["metadata"].get("policy")))
    if not metric:
        raise LookupError(f"no metric: add `metric` (the policy '{row['metadata'].get('policy')}' names no judge)")
    record = {"metric": metric, "trace_id": trace_id,
              **{k: row[k] for k in ("verdict", "score", "labeller", "labelled_at", "note") if k in row}}
    return _from_record(record, line, resolver)


def read_labels(path: Path, shown: str, store: Store, cfg: dict, project: Project) -> tuple[list[Label], int, int]:
    """(labels, records read, pending rows) of a file; UserError listing every bad line."""
    resolver = _Resolver(store, cfg, project)
    judges = _policy_judges(cfg)
    labels, problems, n_read, pending = [], [], 0, 0
    try:
        records = list(jsonlines.iter_records(path))
    except UnicodeDecodeError as e:
        raise UserError(f"{shown} is not UTF-8 text ({e.reason} at byte {e.start})") from e
    for line, _raw, row in records:
        n_read += 1
        try:
            if isinstance(row, jsonlines.StrictJSONError):
                raise LookupError(row.reason)
            if not isinstance(row, dict):
                raise LookupError("a label is a JSON object")
            label = _from_queue_row(row, line, resolver, judges) if _is_queue_row(row) else _from_record(row, line, resolver)
        except LookupError as e:
            problems.append(f"{shown}:{line}: {e.args[0]}")
            continue
        if label is None:
            pending += 1
        else:
            labels.append(label)
    if problems:
        more = f"\n  ... and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
        raise UserError(f"{len(problems)} bad label record(s); nothing was imported:\n  "
                        + "\n  ".join(problems[:MAX_PROBLEMS]) + more)
    return labels, n_read, pending


def import_labels(store: Store, path_text: str, cfg: dict, project: Project) -> dict:
    """Read, resolve and store one labels file; returns the batch's counts (a schemas/judges_result entry)."""
    path = resolve_data_path(path_text, project.dir)
    if not path.is_file():
        raise UserError(f"labels file not found: {path_text} ({path})")
    labels, n_read, pending = read_labels(path, path_text, store, cfg, project)
    by_key: dict[str, Label] = {}
    for label in labels:
        by_key[label.key] = label  # the same person on the same answer twice in one file: the later line wins
    existing = {r["label_key"]: (r["verdict"], r["score"], r["note"])
                for r in execute(store.con, EXISTING, {"keys": list(by_key)})}
    inserted = [lb for k, lb in by_key.items() if k not in existing]
    updated = [lb for k, lb in by_key.items() if k in existing and existing[k] != (lb.verdict, lb.score, lb.note)]
    unchanged = len(by_key) - len(inserted) - len(updated) + (len(labels) - len(by_key))
    batch_id = f"labels-{utc_now().strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    now = utc_now()
    changed = inserted + updated
    frame = pl.DataFrame({
        "label_key": [lb.key for lb in changed], "metric": [lb.metric for lb in changed],
        "item_kind": [lb.item_kind for lb in changed], "dataset": [lb.dataset for lb in changed],
        "dataset_version": [lb.dataset_version for lb in changed], "item_id": [lb.item_id for lb in changed],
        "output_text": [lb.output_text for lb in changed], "output_hash": [lb.output_hash for lb in changed],
        "output_source": [lb.output_source for lb in changed], "verdict": [lb.verdict for lb in changed],
        "score": [lb.score for lb in changed], "labeller": [lb.labeller for lb in changed],
        "labelled_at": [lb.labelled_at.isoformat() if lb.labelled_at else None for lb in changed],
        "note": [lb.note for lb in changed], "source_line": [lb.line for lb in changed]},
        schema_overrides={"dataset": pl.String, "dataset_version": pl.String, "verdict": pl.String,
                          "score": pl.Float64, "labelled_at": pl.String, "note": pl.String,
                          "source_line": pl.Int64})
    with store.transaction() as con:
        if changed:
            con.register("new_labels", frame)
            try:
                execute(con, INSERT_LABELS, {"batch_id": batch_id, "path": str(path), "now": now})
            finally:
                con.unregister("new_labels")
        execute(con, LABEL_BATCH, {"batch_id": batch_id, "path": str(path),
                                   "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "n_read": n_read,
                                   "inserted": len(inserted), "updated": len(updated), "unchanged": unchanged,
                                   "pending": pending, "now": now})
    metrics = sorted({lb.metric for lb in labels})
    return {"batch_id": batch_id, "path": str(path), "read": n_read, "inserted": len(inserted),
            "updated": len(updated), "unchanged": unchanged, "pending": pending, "metrics": metrics}
