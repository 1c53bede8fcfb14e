"""`flywheel ingest ... to=parquet:PATH`: the accepted records of a batch into a Hive-partitioned Parquet lake.

The batch runs exactly as a store ingest does (the same checks, typing, privacy hashing and redaction, the same
quarantine in the store, the same counting) with one difference: the kinds' tables it writes are private TEMP
tables with the store tables' columns and names, which shadow the store's `traces`/`feedback`/`events` for the
length of the batch. Duplicates are therefore settled within the batch only (a lake has no key across batches;
the source view deduplicates across batches: engine/lake.py). Then, still inside the store's transaction:

    PATH/<kind>/_staging-<batch>-<host>-<pid>/day=<YYYY-MM-DD>/part-00000.parquet   written and fsynced
    os.rename(staging, PATH/<kind>/ingest_batch=<batch>)                             one rename per kind
    PATH/_batches/<batch>.json                                                       the manifest (tmp + rename)

and only then the store's transaction (quarantine, the batch record) commits. The batch id is a hash of the
input files' contents and the options that shape the rows, so the same input gives the same batch: published
already (manifest present, recorded in this store) -> nothing is written again. Readers globbing
`PATH/<kind>/ingest_batch=*/day=*/*.parquet` (or skipping `_`/`.` names as Spark and Hadoop do) never see a
staging directory; a killed ingest leaves only one, which the next ingest into the lake removes.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from sqlglot import exp

from engine import executor
from engine.errors import UserError
from engine.ingest.records import KINDS
from engine.sql import Statement, literal, parse, temp_table
from engine.process_identity import pid_alive

SCHEME = "parquet:"
STAGING = "_staging-"
MANIFESTS = "_batches"
LAYOUT_VERSION = 1  # part of the batch id: a new layout is a new batch


@dataclass(frozen=True)
class LakeTarget:
    """Where `to=parquet:PATH` publishes: the lake's root directory."""

    root: Path
    given: str  # the `to=` value as written, for messages

    def kind_dir(self, kind: str) -> Path:
        return self.root / kind

    def batch_dir(self, kind: str, batch: str) -> Path:
        return self.kind_dir(kind) / f"ingest_batch={batch}"

    def manifest(self, batch: str) -> Path:
        return self.root / MANIFESTS / f"{batch}.json"


def scheme_problem(value: object) -> str | None:
    """Why `to=` is not a destination Flywheel knows (None when it is one): checked with the config."""
    if value is None or value == "store":
        return None
    if not isinstance(value, str) or not value.startswith(SCHEME):
        return (f"unknown destination {value!r}; use to=parquet:PATH (a directory: a Hive-partitioned Parquet "
                f"lake) or leave `to` unset (or to=store) to ingest into the store")
    if not value[len(SCHEME):].strip():
        return "to=parquet: needs a directory, e.g. to=parquet:lake"
    return None


def target(value: object, project_dir: Path) -> LakeTarget | None:
    """The lake `to=` names (None: the store), checked to be a writable directory before any work (exit 2)."""
    problem = scheme_problem(value)
    if problem:
        raise UserError(f"to: {problem}")
    if value is None or value == "store":
        return None
    raw = str(value)[len(SCHEME):].strip()
    root = Path(raw).expanduser()
    root = root if root.is_absolute() else project_dir / root
    if root.exists() and not root.is_dir():
        raise UserError(f"to={value}: {root} is a file; a Parquet lake is a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"to={value}: cannot create the lake directory {root}: {e.strerror or e}") from e
    if not os.access(root, os.W_OK | os.X_OK):
        raise UserError(f"to={value}: the lake directory {root} is not writable")
    return LakeTarget(root, str(value))


def batch_id(files: list[tuple[str, str]], settings: dict) -> str:
    """The lake batch of these input files ((name as shown, sha256) in order) read with these settings: the same
    input gives the same id (what makes a re-ingest idempotent)."""
    text = json.dumps({"layout": LAYOUT_VERSION, "files": files, "settings": settings}, sort_keys=True)
    return "b" + hashlib.sha256(text.encode()).hexdigest()[:24]


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def read_manifest(lake: LakeTarget, batch: str) -> dict | None:
    try:
        return json.loads(lake.manifest(batch).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def clean_staging(lake: LakeTarget) -> list[Path]:
    """Remove staging directories left by killed ingests (this host's processes that are gone); a live ingest's
    staging directory, or another host's, stays. Returns what was removed."""
    removed = []
    host = _host()
    for kind in KINDS:
        d = lake.kind_dir(kind)
        if not d.is_dir():
            continue
        for child in d.iterdir():
            parts = child.name[len(STAGING):].split("-") if child.name.startswith(STAGING) else []
            if len(parts) != 3 or parts[1] != host:
                continue
            pid = int(parts[2]) if parts[2].isdigit() else -1
            if pid != os.getpid() and pid_alive(pid):  # a running ingest's
                continue
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    manifests = lake.root / MANIFESTS
    for leftover in manifests.glob(".*.tmp") if manifests.is_dir() else ():
        pid = _pid_of(leftover.name)
        if pid == os.getpid() or not pid_alive(pid):
            leftover.unlink(missing_ok=True)
    return removed


def _host() -> str:
    return "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40] or "host"


def _pid_of(name: str) -> int:
    tail = name[: -len(".tmp")].rpartition("-")[2]
    return int(tail) if tail.isdigit() else -1


    return True


# --- the kinds' tables of the batch: TEMP tables shadowing the store's --------------------------------------------
def _shadow(table: str) -> Statement:
    return Statement(f"lake:shadow:{table}", temp_table(table, parse("SELECT * FROM x LIMIT 0").from_(table),
                                                       replace=False),
                     (), "the batch's accepted records: a private table with the store table's columns")


def _unshadow(table: str) -> Statement:
    drop = parse("DROP TABLE IF EXISTS temp.main.x")
    drop.set("tables", [exp.table_(table, db="main", catalog="temp")])
    return Statement(f"lake:unshadow:{table}", drop, (), "the store's table is visible again")


_COUNT = {k.table: Statement(f"lake:count:{k.table}", parse("SELECT count(*) AS n FROM x").from_(k.table), ())
          for k in KINDS.values()}


@contextmanager
def shadowing(con, kinds: list[str]) -> Iterator[None]:
    """The kinds' store tables shadowed by empty TEMP tables of the same columns (unqualified names resolve to
    the temp catalog first in DuckDB) until the block ends."""
    tables = [KINDS[k].table for k in kinds]
    for t in tables:
        executor.execute(con, _shadow(t), {})
    try:
        yield
    except BaseException:  # the transaction rolls back, and the temp tables with it
        raise
    for t in tables:
        executor.execute(con, _unshadow(t), {})


def _copy(table: str, batch: str, staging: Path) -> Statement:
    """The batch's rows of `table` (batch_id: the lake batch) as Parquet under `staging`, one directory per UTC
    day of the record's timestamp, rows in timestamp and source order."""
    rows = (parse("SELECT * REPLACE (CAST(NULL AS VARCHAR) AS batch_id), "
                  "strftime(timezone('UTC', \"timestamp\"), '%Y-%m-%d') AS day FROM x "
                  "ORDER BY \"timestamp\", source_file, source_line, source_item").from_(table))
    rows.find(exp.Null).replace(literal(batch))
    copy = parse("COPY (SELECT 1) TO 'x' (FORMAT parquet, PARTITION_BY (day), FILENAME_PATTERN 'part-{i}')")
    copy.set("this", rows.subquery())
    copy.set("files", [literal(str(staging))])
    return Statement(f"lake:write:{table}", copy, (), "the batch's accepted records into the staging directory")


@dataclass
class Staged:
    kind: str
    staging: Path | None  # None: nothing to publish (no rows, or published already)
    rows: int
    days: list[str]
    already: bool = False


def stage(con, lake: LakeTarget, batch: str, kinds: list[str]) -> list[Staged]:
    """Write each kind's rows of the batch into a hidden staging directory (fsynced); nothing is visible yet."""
    staged = []
    for kind in kinds:
        table = KINDS[kind].table
        n = executor.execute(con, _COUNT[table], {})[0]["n"]
        if lake.batch_dir(kind, batch).exists():
            staged.append(Staged(kind, None, n, _days(lake.batch_dir(kind, batch)), already=True))
            continue
        if not n:
            staged.append(Staged(kind, None, 0, []))
            continue
        lake.kind_dir(kind).mkdir(parents=True, exist_ok=True)
        staging = lake.kind_dir(kind) / f"{STAGING}{batch}-{_host()}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        executor.execute(con, _copy(table, batch, staging), {})
        for day_dir in sorted(p for p in staging.iterdir() if p.is_dir()):
            for i, f in enumerate(sorted(day_dir.glob("*.parquet"))):
                f.rename(day_dir / f"part-{i:05d}.parquet")
            for f in day_dir.iterdir():
                _fsync(f)
            _fsync(day_dir)
        _fsync(staging)
        staged.append(Staged(kind, staging, n, _days(staging)))
    return staged


def _days(d: Path) -> list[str]:
    return sorted(p.name.partition("=")[2] for p in d.iterdir() if p.is_dir() and p.name.startswith("day="))


def publish(lake: LakeTarget, batch: str, staged: list[Staged], manifest: dict) -> None:
    """Make the batch visible: one rename per kind, then the manifest (written to a temp name, then renamed)."""
    for s in staged:
        if s.staging is None:
            continue
        os.rename(s.staging, lake.batch_dir(s.kind, batch))
        _fsync(lake.kind_dir(s.kind))
    manifests = lake.root / MANIFESTS
    manifests.mkdir(exist_ok=True)
    tmp = manifests / f".{batch}-{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, lake.manifest(batch))
    _fsync(manifests)


def manifest_of(batch: str, store_batch: str, files: list[tuple[str, str]], settings: dict,
                staged: list[Staged]) -> dict:
    return {"batch_id": batch, "layout": LAYOUT_VERSION, "store_batch": store_batch,
            "published_at": datetime.now(timezone.utc).isoformat(),
            "files": [{"path": p, "sha256": h} for p, h in files], "settings": settings,
            "kinds": {s.kind: {"rows": s.rows, "days": s.days} for s in staged if s.rows or s.already}}


# Test seam (used only by tests/ingest/test_parquet_sink.py): FLYWHEEL_TEST_KILL_INGEST_AT=before_publish or
# after_publish makes the process SIGKILL itself there, to prove a killed ingest publishes all of a batch or none.
_KILL_AT_ENV = "FLYWHEEL_TEST_KILL_INGEST_AT"


def test_seam(point: str) -> None:
    if os.environ.get(_KILL_AT_ENV) == point:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


RECORDED = Statement("lake:recorded", parse(
    "SELECT count(*) AS n FROM ingest_batches WHERE json_extract_string(config, '$.lake.batch') = $lake_batch"),
    ("lake_batch",), "whether this store recorded the lake batch (its quarantine, its counts)")


def settings_of(options) -> dict:
    """The options that shape a batch's rows: part of the lake batch id."""
    return {"kind": options.kind, "format": options.format, "unknown_fields": options.unknown_fields,
            "on_unreadable_file": options.on_unreadable_file, "privacy": options.privacy_summary(),
            "redaction": options.redaction}


class Sink:
    """One ingest's publication into a lake: prepared before the batch, published inside its transaction."""

    def __init__(self, lake: LakeTarget, files: list[tuple[str, str]], settings: dict, store_batch: str,
                 manifest: dict | None, recorded: bool):
        self.lake = lake
        self.files = files
        self.settings = settings
        self.batch = batch_id(files, settings)
        self.store_batch = store_batch
        self.manifest = manifest
        self.recorded = recorded
        self.staged: list[Staged] = []
        self.cleaned: list[str] = []

    @classmethod
    def prepare(cls, lake: LakeTarget, store, sources, options, store_batch: str) -> "Sink":
        cleaned = clean_staging(lake)
        files = [(s.shown, file_sha256(s.path)) for s in sources]
        sink = cls(lake, files, settings_of(options), store_batch, None, False)
        sink.cleaned = [str(p) for p in cleaned]
        sink.manifest = read_manifest(lake, sink.batch)
        if sink.manifest is not None:
            sink.recorded = executor.execute(store.con, RECORDED, {"lake_batch": sink.batch})[0]["n"] > 0
        return sink

    @property
    def done(self) -> bool:
        """Published already and recorded in this store: nothing to do (a re-ingest of the same input)."""
        return self.manifest is not None and self.recorded

    def provenance(self) -> dict:
        return {"path": str(self.lake.root), "batch": self.batch}

    def publish(self, con, kinds: list[str], files) -> None:
        """Stage and publish the batch's records (inside the store's transaction, before it commits)."""
        for f, (shown, sha) in zip(files, self.files):
            if f.sha256 is not None and f.sha256 != sha:
                raise UserError(f"{shown}: the file changed while it was being ingested; nothing was published "
                                f"or stored")
        self.staged = stage(con, self.lake, self.batch, kinds)
        if self.manifest is not None:  # published by an ingest whose store transaction did not commit
            return
        test_seam("before_publish")
        self.manifest = manifest_of(self.batch, self.store_batch, self.files, self.settings, self.staged)
        publish(self.lake, self.batch, self.staged, self.manifest)
        test_seam("after_publish")

    def to_json(self) -> dict:
        kinds = ({s.kind: {"rows": s.rows, "days": len(s.days), "path": str(self.lake.batch_dir(s.kind, self.batch))}
                  for s in self.staged if s.rows or s.already} if self.staged else
                 {k: {"rows": v["rows"], "days": len(v["days"]), "path": str(self.lake.batch_dir(k, self.batch))}
                  for k, v in (self.manifest or {"kinds": {}})["kinds"].items()})
        return {"path": str(self.lake.root), "batch_id": self.batch,
                "already_published": self.done or any(s.already for s in self.staged),
                "kinds": kinds, "cleaned_staging": self.cleaned}

    def print_done(self) -> None:
        from engine.console import console

        console.print(summary(self.to_json()), highlight=False)


def summary(lake: dict) -> str:
    """The terminal line about a lake batch."""
    where = ", ".join(f"{k} {v['rows']:,} rows over {v['days']} day(s)" for k, v in lake["kinds"].items()) or "no rows"
    if lake["already_published"]:
        return (f"lake batch {lake['batch_id']} was published before in {lake['path']} ({where}): the same input "
                f"is the same batch; nothing written twice")
    return f"published lake batch {lake['batch_id']} to {lake['path']}: {where}"
