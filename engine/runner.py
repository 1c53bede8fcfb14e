"""Calling a model for the outputs a run lacks, with the store closed.

Outputs are keyed by (model fingerprint, output key, repeat); the output key says what identifies an output
for its adapter (engine/output_identity.py). A run reads which keys are stored (`missing`, store open),
calls the model for the rest with the store closed (`call_model`, which returns the new outputs as one Arrow
table), and writes them with everything else in one short transaction. An errored output is retried on the
next run.

While calls are under way, each finished batch is also appended to a journal file beside the store, so an
interrupted run keeps the calls it paid for: the next run that opens the store recovers the journals of
processes that are gone (`recover_journals`).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from engine.datasets import Case
from engine.executor import execute, execute_arrow
from engine.models.base import ModelAdapter, ModelRequest, ModelResponse
from engine.provenance import canonical_json, utc_now
from engine.sql import statement
from engine.process_identity import pid_alive

# The `outputs` table's columns, in order: every bulk write of outputs goes through this schema.
OUTPUT_SCHEMA = pa.schema([
    ("model_fingerprint", pa.string()), ("output_key", pa.string()), ("repeat", pa.int32()),
    ("output_text", pa.string()), ("error", pa.string()), ("latency_ms", pa.float64()),
    ("prompt_tokens", pa.int32()), ("completion_tokens", pa.int32()), ("cost", pa.float64()),
    ("raw", pa.string()), ("run_id", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")),
])
# What an adapter's columnar `predict_table(case_ids)` returns, one row per id in order.
PREDICTION_COLUMNS = ("output_text", "error", "latency_ms", "prompt_tokens", "completion_tokens", "cost")


@dataclass(frozen=True)
class CallStats:
    needed: int  # (output key, repeat) pairs the run needs
    cached: int
    called: int
    errors: int  # errored responses among the calls made now


@dataclass(frozen=True)
class CallResult:
    outputs: pa.Table  # OUTPUT_SCHEMA: the outputs of the calls made now
    stats: CallStats


def needed_table(keys: pa.Array, case_ids: pa.Array, dataset_versions: pa.Array | None = None) -> pa.Table:
    """The outputs a run needs, one row per case (keys may repeat): `position` indexes the caller's case list."""
    n = len(keys)
    versions = dataset_versions if dataset_versions is not None else pa.nulls(n, pa.string())
    return pa.table({"output_key": keys, "dataset_version": versions, "case_id": case_ids,
                     "position": pa.array(range(n), pa.int64())})



def missing(con, fingerprint: str, needed: pa.Table | str, repeats: int) -> tuple[pa.Table, int]:
    """(the (key, repeat) pairs with no successful stored output, one case each, in case order; the number of
    distinct keys). `needed`: an Arrow table from `needed_table`, or the name of a relation of the same
    columns on `con`. Runs on an open store connection."""
    from engine.evaluate_plan import NEEDED, distinct_keys, missing_outputs

    relation = needed if isinstance(needed, str) else NEEDED
    if not isinstance(needed, str):
        con.register(relation, needed)
    from engine.executor import execute, execute_arrow

    try:
        distinct = execute(con, distinct_keys(relation), {})[0]["n"]
        todo = execute_arrow(con, missing_outputs(relation), {"repeats": repeats, "fingerprint": fingerprint})
    finally:
        if not isinstance(needed, str):
            con.unregister(relation)
    return todo, distinct


def call_model(adapter: ModelAdapter, fingerprint: str, todo: pa.Table, distinct_keys: int, cases: Sequence[Case],
               run_id: str, repeats: int = 1, batch_size: int = 32, show_progress: bool = True,
               journal: "Journal | None" = None) -> CallResult:
    """Call the adapter for every row of `todo` (from `missing`); `cases[position]` is the case a row asks about.

    An adapter with a columnar `predict_table(case_ids)` (replay) answers all rows at once; any other is
    sent `batch_size` requests at a time, each batch journaled as it completes."""
    from engine.progress import progress_bar

    needed = distinct_keys * repeats
    now = utc_now()
    if len(todo) and hasattr(adapter, "predict_table"):
        outputs = _frame(fingerprint, todo, adapter.predict_table(todo.column("case_id")), run_id, now)
    else:
        parts = []
        positions = todo.column("position").to_pylist()
        with progress_bar(f"{adapter.name}: calling model", total=len(todo), enabled=show_progress) as advance:
            for start in range(0, len(todo), batch_size):
                batch = [cases[p] for p in positions[start:start + batch_size]]
                repeats_of = todo.column("repeat").slice(start, len(batch)).to_pylist()
                responses = adapter.predict_batch([ModelRequest(
                    case_id=c.case_id, input=c.input, input_text=c.input_text, context=c.context,
                    metadata=c.metadata, messages=c.messages, repeat=r) for c, r in zip(batch, repeats_of)])
                part = _frame(fingerprint, todo.slice(start, len(batch)), _responses(responses), run_id, utc_now())
                if journal is not None:
                    journal.append(part)
                parts.append(part)
                advance(len(batch))
        if journal is not None:
            journal.close()
        outputs = pa.concat_tables(parts) if parts else OUTPUT_SCHEMA.empty_table()
    errors = len(outputs) - outputs.column("error").null_count
    return CallResult(outputs, CallStats(needed=needed, cached=needed - len(todo), called=len(todo), errors=errors))


def _responses(responses: list[ModelResponse]) -> pa.Table:
    return pa.table({
        "output_text": pa.array([r.output_text for r in responses], pa.string()),
        "error": pa.array([r.error for r in responses], pa.string()),
        "latency_ms": pa.array([r.latency_ms for r in responses], pa.float64()),
        "prompt_tokens": pa.array([r.prompt_tokens for r in responses], pa.int32()),
        "completion_tokens": pa.array([r.completion_tokens for r in responses], pa.int32()),
        "cost": pa.array([r.cost for r in responses], pa.float64()),
        "raw": pa.array([canonical_json(r.raw) if r.raw is not None else None for r in responses], pa.string()),
    })


def _frame(fingerprint: str, todo: pa.Table, predictions: pa.Table, run_id: str, now) -> pa.Table:
    n = len(todo)
    raw = predictions.column("raw") if "raw" in predictions.column_names else pa.nulls(n, pa.string())
    columns = {
        "model_fingerprint": pa.repeat(pa.scalar(fingerprint), n),
        "output_key": todo.column("output_key"), "repeat": todo.column("repeat").cast(pa.int32()),
        **{c: predictions.column(c).cast(OUTPUT_SCHEMA.field(c).type) for c in PREDICTION_COLUMNS},
        "raw": raw, "run_id": pa.repeat(pa.scalar(run_id), n),
        "created_at": pa.repeat(pa.scalar(now, OUTPUT_SCHEMA.field("created_at").type), n),
    }
    return pa.Table.from_pydict(columns, schema=OUTPUT_SCHEMA)


class Journal:
    """The outputs a run has paid for, appended batch by batch to an Arrow stream file (flushed each time)."""

    def __init__(self, directory: Path, run_id: str, label: str = "model"):
        self.path = Path(directory) / f"{run_id}.{label}.{os.getpid()}.arrow"
        self._sink = None
        self._writer = None

    def append(self, table: pa.Table) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._sink = open(self.path, "wb")
            self._writer = pa.ipc.new_stream(self._sink, OUTPUT_SCHEMA)
        self._writer.write_table(table)
        self._sink.flush()
        os.fsync(self._sink.fileno())

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = self._sink = None


def discard_journals(directory: Path, run_id: str) -> None:
    """The run's outputs are committed to the store: its journals are no longer needed."""
    if Path(directory).is_dir():
        for path in Path(directory).glob(f"{run_id}.*.{os.getpid()}.arrow"):
            path.unlink(missing_ok=True)


    return True


def _read_journal(path: Path) -> pa.Table:
    """Every complete batch of a journal (a batch cut short by a kill is dropped)."""
    batches = []
    try:
        with pa.OSFile(str(path), "rb") as f:
            reader = pa.ipc.open_stream(f)
            while True:
                try:
                    batches.append(reader.read_next_batch())
                except StopIteration:
                    break
    except (pa.ArrowInvalid, OSError):
        pass
    return pa.Table.from_batches(batches, OUTPUT_SCHEMA)


# a journaled success replaces a stored error for the same key; a stored success is kept
_RECOVERABLE = statement("journal:recoverable", "SELECT j.* FROM flywheel_journal AS j WHERE j.error IS NULL AND "
                         "NOT EXISTS (SELECT 1 FROM outputs AS o WHERE o.model_fingerprint = j.model_fingerprint AND "
                         "o.output_key = j.output_key AND o.repeat = j.repeat AND o.error IS NULL)",
                         "the outputs a killed run paid for and the store lacks")
_RECOVER = statement("journal:recover", "INSERT OR REPLACE INTO outputs SELECT * FROM flywheel_recovered",
                     "those outputs stored")


def recover_journals(store, directory: Path) -> int:
    """Store the successful outputs journaled by runs whose process is gone (a stored output is kept) and delete
    their journals. Returns the number of outputs recovered. Call inside the caller's write transaction."""
    recovered = 0
    for path in sorted(Path(directory).glob("*.arrow")) if Path(directory).is_dir() else []:
        try:
            pid = int(path.name.rsplit(".", 2)[-2])
        except ValueError:
            continue
        if pid == os.getpid() or pid_alive(pid):
            continue
        table = _read_journal(path)
        if len(table):
            con = store.con
            con.register("flywheel_journal", table)
            try:
                rows = execute_arrow(con, _RECOVERABLE, {})
                con.register("flywheel_recovered", rows)
                execute(con, _RECOVER, {})
                con.unregister("flywheel_recovered")
                recovered += len(rows)
            finally:
                con.unregister("flywheel_journal")
        path.unlink(missing_ok=True)
    return recovered
