"""Executing one ingest batch: chunks from the readers -> checks and typing in SQL -> the kinds' tables and the
quarantine, settled for duplicates and conflicts at the end (see engine/ingest/load.py for the whole story)."""
from __future__ import annotations

import gc
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import duckdb
import numpy as np
import pyarrow as pa

from engine import executor, journal
from engine.ingest import compiled, readers, strict
from engine.ingest.compiled import kind_sql
from engine.ingest.options import Options
from engine.ingest import plan
from engine.ingest.plan import LOAD_COMPILED, RESOLVE, SAVE_COMPILED, fixed, of_kind
from engine.ingest.quarantine import mark_resolved
from engine.ingest.records import KINDS, RecordKind
from engine.schemas import load_schema

SCAN_BATCH_ROWS = 16_384


@dataclass
class FileCounts:
    path: str
    format: str
    sha256: str | None = None
    bytes: int = 0
    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    skipped: int = 0  # left out by the reader (Chunk.skipped): not read, but counted in the quarantine share
    unreadable: str | None = None
    previously_ingested_in: list[str] = field(default_factory=list)
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    otlp: dict | None = None  # OTLP files: spans per layout, traces, skipped spans (engine/ingest/otel.py)

    @property
    def accepted(self) -> int:
        return self.inserted + self.duplicates

    def add(self, kind: str, what: str, n: int) -> None:
        counts = self.by_kind.setdefault(kind, {"read": 0, "accepted": 0, "inserted": 0, "duplicates": 0,
                                                "quarantined": 0})
        counts[what] += n
        if what in ("inserted", "duplicates"):
            counts["accepted"] += n

    def to_json(self) -> dict:
        return {"path": self.path, "format": self.format, "sha256": self.sha256, "bytes": self.bytes,
                "read": self.read, "accepted": self.accepted, "inserted": self.inserted,
                "duplicates": self.duplicates, "quarantined": self.quarantined, "skipped": self.skipped,
                "unreadable": self.unreadable,
                "previously_ingested_in": self.previously_ingested_in, "by_kind": self.by_kind,
                **({"otlp": self.otlp} if self.otlp is not None else {})}


class Batch:
    """One `flywheel ingest`: every file in one transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection, options: Options, batch_id: str, now: Any,
                 on_chunk: Callable[[readers.SourceFile, int, int], None] | None = None):
        self.con = con
        self.options = options
        self.batch_id = batch_id
        self.now = now
        self.on_chunk = on_chunk or (lambda source, n_records, bytes_done: None)
        self.kinds = list(KINDS) if options.kind == "auto" else [options.kind]
        # Python's full garbage collections walk every object of the process (the imported engine, sqlglot,
        # DuckDB, Arrow): ~0.1 CPU s a batch, while the statements compile. The objects that exist now are left
        # out of them until the batch ends (`run`); new garbage is collected as before.
        gc.freeze()
        # Compiling the statements takes a while: done in a thread while the first chunk is read and checked.
        if not self._load_compiled():  # compiled by an earlier ingest: read from the store
            threading.Thread(target=compiled.compile_ahead, args=(tuple(self.kinds), options),
                             name="flywheel-ingest-compile", daemon=True).start()
        self.files: list[FileCounts] = []
        self.sources: dict[int, readers.SourceFile] = {}
        self.accepted: dict[tuple[int, str], int] = {}  # (file id, kind) -> records that went straight in
        self.quarantine_reasons: dict[str, int] = {}
        self.conflicts_with: dict[str, int] = {}  # earlier batch -> records of this batch conflicting with its records
        self.resolved: dict[str, int] = {}  # quarantined records of earlier batches this batch resolved, by how

    def params(self, **extra: Any) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "now": self.now, "salt": self.options.salt, **extra}

    def named(self, name: str, **params: Any) -> list[tuple]:
        """Run one of the plan's fixed statements (engine/ingest/plan.py); its rows."""
        return [tuple(r.values()) for r in executor.execute(self.con, fixed()[name], self.params(**params))]

    def _load_compiled(self) -> bool:
        """Read the kinds' statements stored by an earlier ingest; True when every kind has them all."""
        found = True
        for kind in self.kinds:
            rows = self.named(LOAD_COMPILED, cache_key=compiled.cache_key(kind, self.options))
            found = compiled.remember(kind, self.options, rows) and found
        return found

    def run(self, sources: list[readers.SourceFile]) -> list[FileCounts]:
        """Load `sources` (in the caller's transaction) within the memory budget: chunks of at most
        `chunk_bytes` and DuckDB's memory limited to `memory_mb` (it spills to disk beyond), so that peak memory
        does not grow with the input."""
        self.named("memory_limit", limit=f"{int(self.options.memory_mb)}MB")
        try:
            return self._run_files(sources)
        finally:
            gc.unfreeze()
            try:  # back to DuckDB's default (Flywheel sets no other limit; current_setting would round it)
                self.named("reset_memory_limit")
            except duckdb.Error:  # an aborted transaction: the original error is the one to report
                pass

    def _run_files(self, sources: list[readers.SourceFile]) -> list[FileCounts]:
        self.named("timezone")
        self.named("files_table")
        for name in self.kinds:  # needs no compiled checks
            executor.execute(self.con, kind_sql(KINDS[name], self.options).create_stage(), {})
        self.named("pending_table")
        for file_id, source in enumerate(sources, start=1):
            counts = FileCounts(source.shown, source.format, bytes=source.size)
            self.files.append(counts)
            self.sources[file_id] = source
            self.named("add_file", file_id=file_id, path=source.shown)
            try:
                for chunk in self._chunks(source):
                    counts.read += chunk.table.num_rows
                    counts.skipped += chunk.skipped
                    self._load_chunk(chunk.table, file_id, source, counts)
                    self.on_chunk(source, counts.read, chunk.bytes_done)
            except readers.UnreadableFile as e:
                if self.options.on_unreadable_file != "quarantine":
                    raise readers.UnreadableFile(f"{source.shown}: {e}") from e
                counts.unreadable = str(e)
                counts.read += 1
                counts.quarantined += 1
                self.named("quarantine_unreadable", path=source.shown, reason=f"unreadable file: {e}",
                             kind=None if self.options.kind == "auto" else self.options.kind)
            counts.sha256 = source.sha256
            counts.otlp = source.otlp
        self._finalize()
        return self.files

    def _chunks(self, source: readers.SourceFile):
        o = self.options
        # Every chunk is checked for strict JSON (engine/ingest/strict.py) in the reader thread.
        if source.format == "jsonl":
            return readers.prefetched(strict.checked(readers.read_jsonl(source, o.chunk_bytes)))
        if source.format == "otlp":
            return readers.prefetched(strict.checked(readers.read_otlp(source, o.chunk_bytes)))
        if source.format == "csv":
            types = {name: _field_types(KINDS[name]) for name in KINDS}
            return readers.prefetched(strict.checked(readers.read_csv(source, o.chunk_rows, types,
                                                                      None if o.kind == "auto" else o.kind)))
        if source.format == "parquet":
            return strict.checked(readers.read_parquet(source, o.chunk_rows, self.con))
        raise ValueError(source.format)

    def _load_chunk(self, table: pa.Table, file_id: int, source: readers.SourceFile, counts: FileCounts) -> None:
        if table.num_rows == 0:
            return
        # DuckDB scans an Arrow table one record batch per thread: slices (zero copy) let every thread work.
        table = pa.Table.from_batches(table.to_batches(max_chunksize=SCAN_BATCH_ROWS), table.schema)
        if self.options.kind != "auto":
            if table.column("kind").null_count == table.num_rows:
                self._validate(self.options.kind, table, file_id, source, only_that_kind=False)
            else:  # OTLP: spans and their feedback events; only the declared kind is wanted
                self._route(table, file_id, source, counts, only=self.options.kind)
            return
        self._route(table, file_id, source, counts)

    def _route(self, table: pa.Table, file_id: int, source: readers.SourceFile, counts: FileCounts,
               only: str | None = None) -> None:
        """kind=auto (or an OTLP chunk of spans and feedback events): each record is validated as its kind.

        A chunk holding one kind (the usual case: a file of traces) is validated as that kind as a whole,
        so a broken line in a traces file is a rejected trace. A mixed chunk is split by kind; a record whose
        kind cannot be told is quarantined with kind NULL."""
        con = self.con
        if only is None and table.column("kind").null_count == table.num_rows:
            found = [k for (k,) in executor.execute_over(con, fixed()["chunk_kinds"], {}, table)]
            named = [k for k in found if k is not None]
            if len(named) <= 1:
                kind = named[0] if named else None
                if kind is not None:
                    self._validate(kind, table, file_id, source, only_that_kind=False)
                    return
        detected = executor.execute_over(con, fixed()["detect"], {}, table, _arrow, relation=True)
        if only is not None:  # records of another kind than the declared one are not this ingest's business
            import pyarrow.compute as pc
            mask = pc.fill_null(pc.equal(detected.column("kind"), only), False)
            counts.read -= table.num_rows - pc.sum(mask).as_py() if table.num_rows else 0
            detected = detected.filter(mask)
        kinds = set(detected.column("kind").drop_null().to_pylist())
        n = executor.execute_over(con, plan.undetected(self.options), self.params(path=source.shown), detected)
        undetected = n[0][0] if n else 0
        if undetected:
            counts.quarantined += undetected
            counts.add("unknown", "read", undetected)
            counts.add("unknown", "quarantined", undetected)
        for name in sorted(kinds & set(self.kinds)):
            self._validate(name, detected, file_id, source, only_that_kind=True)

    def _validate(self, name: str, table: pa.Table, file_id: int, source: readers.SourceFile,
                  only_that_kind: bool) -> None:
        """The records of kind `name` in the chunk `table`: those that pass the checks go
        straight into the kind's table; the others (usually few) are set aside in the pending table, for
        `validate` to explain at the end of the batch."""
        con = self.con
        insert = of_kind(name, self.options, "insert_of_kind" if only_that_kind else "insert")
        got = executor.execute_over(con, insert, self.params(file_id=file_id, path=source.shown), table,
                                    lambda result: result.fetchnumpy())
        n_got = len(got["source_line"])
        self.accepted[(file_id, name)] = self.accepted.get((file_id, name), 0) + n_got
        if only_that_kind:
            import pyarrow.compute as pc
            candidates = pc.fill_null(pc.equal(table.column("kind"), name), False).to_numpy(zero_copy_only=False)
        else:
            candidates = np.ones(table.num_rows, dtype=bool)
        if n_got == int(candidates.sum()):
            return
        read = _positions(table.column("line").to_numpy(), table.column("item").fill_null(-1).to_numpy())
        went_in = _positions(np.asarray(got["source_line"]), np.ma.filled(got["source_item"], -1))
        rest = table.filter(pa.array(candidates & ~np.isin(read, went_in)))  # filter, unlike take, keeps chunks
        executor.execute_over(con, fixed()["set_aside"], {"file_id": file_id, "kind": name}, rest)

    def _finalize(self) -> None:
        con = self.con
        by_id = {i: f for i, f in enumerate(self.files, start=1)}
        for (file_id, name), n in self.accepted.items():
            by_id[file_id].add(name, "read", n)
        pending = dict(self.named("pending_counts"))
        settled_kinds: list[str] = []
        for name in self.kinds:
            if pending.get(name):
                self._run(name, "validate")
            rejected_total = 0
            for file_id, rejected, staged in self._run(name, "rejected_counts"):
                if rejected != staged:  # insert_accepted and validate apply the same checks: a bug if they differ
                    raise AssertionError(f"{name}: {staged - rejected} record(s) passed the checks on the second try")
                f = by_id[file_id]
                f.add(name, "read", staged)
                f.add(name, "quarantined", rejected)
                f.quarantined += rejected
                rejected_total += rejected
            if rejected_total:
                self._run(name, "quarantine_rejected")
            if not any(n for (_, kind), n in self.accepted.items() if kind == name):
                continue
            self._run(name, "settle")
            settled_kinds.append(name)
            settled: dict[int, dict[str, int]] = {}
            for file_id, outcome, n in self._run(name, "settled_counts"):
                settled.setdefault(file_id, {})[outcome] = n
            for (file_id, kind), n in self.accepted.items():
                if kind != name:
                    continue
                f = by_id[file_id]
                duplicates = settled.get(file_id, {}).get("duplicate", 0)
                conflicts = settled.get(file_id, {}).get("conflict", 0)
                f.inserted += n - duplicates - conflicts
                f.add(name, "inserted", n - duplicates - conflicts)
                f.duplicates += duplicates
                f.add(name, "duplicates", duplicates)
                f.quarantined += conflicts
                f.add(name, "quarantined", conflicts)
            if any(o.get("conflict") for o in settled.values()):
                for batch, n in self._run(name, "conflicting_batches"):
                    self.conflicts_with[batch] = self.conflicts_with.get(batch, 0) + n
            if settled:
                self._run(name, "drop_settled")
            for file_id in sorted(i for i, outcomes in settled.items() if outcomes.get("conflict")):
                self._quarantine_conflicts(name, file_id)
        with journal.step(RESOLVE.name):
            self.resolved = mark_resolved(con, self.batch_id, self.now, self.kinds, settled_kinds)
        compiled.compile_ahead(tuple(self.kinds), self.options)  # the whole plan: waits for the thread's work
        for row in compiled.to_save(self.kinds, self.options):  # the next ingest reads them instead of compiling
            self.named(SAVE_COMPILED, **row)
        for f in self.files:
            if f.read != f.accepted + f.quarantined:  # the counting rule is the contract: a bug if broken
                raise AssertionError(f"{f.path}: read {f.read} != accepted {f.accepted} + quarantined {f.quarantined}")
        self.quarantine_reasons = {r: n for r, n in self.named("quarantine_reasons")}

    def _run(self, kind: str, statement: str, **extra: Any) -> list[tuple]:
        return [tuple(r.values()) for r in executor.execute(self.con, of_kind(kind, self.options, statement),
                                                            self.params(**extra))]

    def _quarantine_conflicts(self, kind: str, file_id: int) -> None:
        """Conflicting records are quarantined as read: the file is read again for their raw text (the batch
        keeps no copy of accepted records). A file that changed meanwhile fails the batch."""
        source = self.sources[file_id]
        first_read = source.sha256
        for chunk in self._chunks(source):
            if chunk.table.num_rows == 0:
                continue
            executor.execute_over(self.con, of_kind(kind, self.options, "quarantine_conflicts"),
                                  self.params(path=source.shown, file_id=file_id), chunk.table)
        if source.sha256 != first_read:
            raise readers.UnreadableFile(f"{source.shown}: the file changed while it was being ingested")

def _arrow(relation) -> pa.Table:
    return relation.to_arrow_table()


def _positions(lines: np.ndarray, items: np.ndarray) -> np.ndarray:
    """(line, item) pairs (item -1 when there is none) as one int64 each, to compare sets of records."""
    lines = lines.astype(np.int64)
    items = items.astype(np.int64) + 1
    if len(items) and (items.max() >= 1 << 24 or lines.max() >= 1 << 39):
        raise AssertionError("a line or item number beyond what a record position can hold")
    return lines << 24 | items


def _field_types(kind: RecordKind) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name, sub in load_schema(kind.schema).get("properties", {}).items():
        t = sub.get("type", [])
        out[name] = set([t] if isinstance(t, str) else t)
    return out
