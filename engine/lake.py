"""Production data sources (the `source` config group): the store's tables or a Parquet lake, read as the store.

Every monitor and bridge statement reads the unqualified tables `traces`, `feedback` and `events`. For a source
with a Parquet path, `reading` creates, on the command's connection and for its length, a TEMP view of that name
(DuckDB resolves unqualified names in the temp catalog first, so the view shadows the store's table) that reads
the files with the store table's columns, cast to its types:

    CREATE TEMP VIEW traces AS SELECT CAST(trace_id AS VARCHAR) AS trace_id, ... FROM read_parquet([files], ...)

The file list is fixed when the command starts (a batch published meanwhile is read by the next command) and
skips every file or directory whose name starts with `_` or `.` (staging directories, manifests), as Spark and
Hadoop do; DuckDB's own `**` glob would not. Paths travel as sqlglot string literals, never formatted into SQL.
"""
from __future__ import annotations

import copy
import glob
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb
from sqlglot import exp

from engine import executor
from engine.config import Composed
from engine.config_checks import checker
from engine.errors import UserError
from engine.ingest.records import KINDS
from engine.schemas import all_errors, dotted, load_schema, validator
from engine.sql import Statement, literal, parse

TABLES = ("traces", "feedback", "events")
KEYS = {k.table: k.key for k in KINDS.values()}  # traces: trace_id, feedback: feedback_id, events: event_id
# Provenance columns a team's own files may lack: filled from the file (its name, its batch directory).
PROVENANCE = ("record_hash", "batch_id", "source_file", "source_line", "source_item")


@dataclass(frozen=True)
class SourceSpec:
    table: str
    format: str  # store | parquet (resolved: null is parquet when a path is set)
    path: str | None
    partitioning: str  # hive | none
    dedupe: bool

    @classmethod
    def all_of(cls, cfg: dict) -> dict[str, "SourceSpec"]:
        block = cfg.get("source") or {}
        defaults = {k: v["default"] for k, v in load_schema("source")["$defs"]["source"]["properties"].items()}
        out = {}
        for table in TABLES:
            s = {**copy.deepcopy(defaults), **(block.get(table) or {})}
            fmt = s["format"] or ("parquet" if s["path"] else "store")
            out[table] = cls(table, fmt, s["path"], s["partitioning"], bool(s["dedupe"]))
        return out


@checker(section="source")
def _check_source(composed: Composed, add) -> None:
    block = composed.config.get("source")
    if block is None:
        return
    problems = all_errors(validator("source"), block)
    for path, message in problems:
        add(dotted(path, "source"), message)
    if problems or not isinstance(block, dict):
        return
    for table in TABLES:
        s = block.get(table) or {}
        if s.get("format") == "parquet" and not s.get("path"):
            add(f"source.{table}.path", "format parquet needs a path: the directory (or file, or glob) of the "
                                        f"Parquet files, e.g. source.{table}.path=lake/{table}")
        if s.get("format") == "store" and s.get("path"):
            add(f"source.{table}.format", f"is `store` but source.{table}.path is set; drop the path to read the "
                                          f"store, or set format parquet (or null) to read the files")


def files_of(spec: SourceSpec, project_dir: Path) -> list[Path]:
    """The Parquet files of a source, sorted; names starting with `_` or `.` below the given path are skipped."""
    given = Path(spec.path).expanduser()
    base = given if given.is_absolute() else Path(project_dir) / given
    key = f"source.{spec.table}.path"
    if glob.has_magic(str(base)):
        found = [Path(p) for p in glob.glob(str(base), recursive=True)]
        root = Path(str(base).split("*")[0].split("?")[0].split("[")[0]).parent
        files = [p for p in found if p.is_file() and not _hidden(p, root)]
    elif base.is_dir():
        files = []
        for d, dirs, names in os.walk(base):
            dirs[:] = [n for n in dirs if not n.startswith(("_", "."))]
            files += [Path(d) / n for n in names if n.endswith(".parquet") and not n.startswith(("_", "."))]
    elif base.is_file():
        files = [base]
    else:
        raise UserError(f"{key}: {spec.path} does not exist ({base})")
    if not files:
        raise UserError(f"{key}: {spec.path} holds no Parquet files (files and directories whose names start "
                        f"with _ or . are skipped: a batch still being written is not read)")
    return sorted(files)


def _hidden(path: Path, root: Path) -> bool:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = path.parts
    return any(p.startswith(("_", ".")) for p in parts)


def _publish_order(files: list[Path]) -> dict[str, int]:
    """ingest_batch -> its rank in publish order, from the lake's manifests (LAKE/_batches/<batch>.json beside
    LAKE/<kind>/ingest_batch=<batch>): what tells the earliest record of a key, as the store keeps the first."""
    manifests: dict[str, str] = {}
    for f in files:
        for parent in f.parents:
            if parent.name.startswith("ingest_batch="):
                batch = parent.name.partition("=")[2]
                m = parent.parent.parent / "_batches" / f"{batch}.json"
                if batch not in manifests and m.is_file():
                    published = json.loads(m.read_text(encoding="utf-8"))
                    manifests[batch] = str(published["published_at"]) if "published_at" in published else ""
                break
    return {b: i for i, b in enumerate(sorted(manifests, key=lambda b: (manifests[b], b)))}


def _read(spec: SourceSpec, files: list[Path]) -> exp.Expression:
    hive = spec.partitioning == "hive"
    return exp.func("read_parquet", literal([str(f) for f in files]),
                    exp.EQ(this=exp.column("hive_partitioning"), expression=exp.Boolean(this=hive)),
                    exp.EQ(this=exp.column("union_by_name"), expression=exp.Boolean(this=True)),
                    exp.EQ(this=exp.column("filename"), expression=literal("fw_file")))


def _columns_statement(table: str) -> Statement:
    return Statement(f"source:columns:{table}", parse(
        "SELECT column_name, data_type, is_nullable FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = $table ORDER BY column_index"), ("table",),
        "the store table's columns and types: the view has them too")


def _probe(spec: SourceSpec, files: list[Path]) -> Statement:
    return Statement(f"source:probe:{spec.table}", exp.select("*").from_(_read(spec, files)).limit(0), (),
                     "the columns the Parquet files hold")


def repeats_statement(spec: SourceSpec, files: list[Path]) -> Statement:
    """How many keys occur more than once in the files (one pass over the key column)."""
    key = exp.column(KEYS[spec.table], quoted=True)
    repeated = exp.select(key).from_(_read(spec, files)).group_by(key.copy()).having("count(*) > 1")
    return Statement(f"source:repeats:{spec.table}", exp.select("count(*) AS n").from_(repeated.subquery("r")), (),
                     f"{KEYS[spec.table]}s that occur more than once (none: the view reads the files as they are)")


def view_statement(spec: SourceSpec, files: list[Path], store_columns: list[tuple[str, str, bool]],
                   file_columns: set[str], no_repeats: bool = False) -> tuple[Statement, dict]:
    """CREATE TEMP VIEW <table> over the files, with the store table's columns and types; and what it did.

    `no_repeats`: no key occurs twice in the files (`repeats_statement` found none), so keeping one record per key
    keeps every record: the view reads the files without the per-key window, which would otherwise sort every
    row (all its columns) again in every statement that reads the table."""
    missing = [c for c, _, nullable in store_columns if c not in file_columns and not nullable and c not in PROVENANCE]
    if missing:
        raise UserError(f"source.{spec.table}.path: the Parquet files ({spec.path}) lack the column(s) "
                        f"{', '.join(missing)} of the store's `{spec.table}` table; write them (the lake of "
                        f"`flywheel ingest to=parquet:` has every column)")
    batch = exp.column("ingest_batch") if "ingest_batch" in file_columns else exp.Null()
    fill = {"batch_id": batch, "source_file": exp.column("fw_file")}
    select = []
    for name, dtype, _ in store_columns:
        value = exp.column(name, quoted=True) if name in file_columns else (fill[name] if name in fill else exp.Null())
        if name in file_columns and name in fill:
            value = exp.func("coalesce", value, fill[name])
        select.append(exp.alias_(exp.cast(value, exp.DataType.build(dtype, dialect="duckdb")), name, quoted=True))
    query = exp.select(*select).from_(_read(spec, files).as_("fw_lake"))
    ranks = _publish_order(files) if spec.partitioning == "hive" else {}
    batches = len({p.name for f in files for p in f.parents if p.name.startswith("ingest_batch=")})
    one_flywheel_batch = batches == 1 and len(ranks) == 1
    dedupe = spec.dedupe and not one_flywheel_batch and KEYS[spec.table] in file_columns
    if dedupe and not no_repeats:
        rank = (exp.Case(this=batch.copy(), ifs=[exp.If(this=literal(b), true=literal(i)) for b, i in ranks.items()],
                         default=literal(len(ranks))) if ranks else literal(0))
        order = [rank, batch.copy(), exp.column("fw_file")] + [
            exp.column(c) for c in ("source_line", "source_item") if c in file_columns]
        window = exp.Window(this=exp.RowNumber(), partition_by=[exp.column(KEYS[spec.table], quoted=True)],
                            order=exp.Order(expressions=[exp.Ordered(this=o, nulls_first=False) for o in order]))
        query = query.qualify(exp.EQ(this=window, expression=literal(1)))
    view = exp.Create(this=exp.to_table(spec.table), kind="VIEW", replace=True,
                      properties=exp.Properties(expressions=[exp.TemporaryProperty()]), expression=query)
    used = {"format": "parquet", "path": spec.path, "files": len(files), "partitioning": spec.partitioning,
            "dedupe": (f"one record per {KEYS[spec.table]} across {batches or 'the'} batch(es), earliest published"
                       + (f"; no {KEYS[spec.table]} repeats: read as is" if no_repeats else "")
                       if dedupe else "none" if not spec.dedupe else "not needed (one flywheel batch)")}
    return Statement(f"source:view:{spec.table}", view, (), f"{spec.table} read from Parquet"), used


def _drop(table: str) -> Statement:
    drop = parse("DROP VIEW IF EXISTS temp.main.x")
    drop.set("tables", [exp.table_(table, db="main", catalog="temp")])
    return Statement(f"source:drop:{table}", drop, (), "the store's table is visible again")


def describe(cfg: dict) -> dict:
    """The sources a command reads, for its result (before the files are listed)."""
    return {t: ({"format": "store"} if s.format == "store" else {"format": "parquet", "path": s.path})
            for t, s in SourceSpec.all_of(cfg).items()}


@contextmanager
def reading(con, cfg: dict, project_dir: Path) -> Iterator[dict]:
    """The configured sources shadowing the store's tables on `con` until the block ends; yields what each table
    is read from (for the command's result and provenance)."""
    used: dict[str, dict] = {}
    made: list[str] = []
    for table, spec in SourceSpec.all_of(cfg).items():
        if spec.format == "store":
            used[table] = {"format": "store"}
            continue
        files = files_of(spec, project_dir)
        columns = [(r["column_name"], r["data_type"], r["is_nullable"])
                   for r in executor.execute(con, _columns_statement(table), {"table": table})]
        try:
            probe = executor.execute_arrow(con, _probe(spec, files), {})
        except duckdb.Error as e:  # not Parquet, or files whose columns cannot be unified
            raise UserError(f"source.{table}.path: cannot read {spec.path} as Parquet: "
                            f"{str(e).splitlines()[0]}") from e
        statement, used[table] = view_statement(spec, files, columns, set(probe.schema.names))
        if statement.tree.find(exp.Qualify) is not None:  # deduplicating: needless when no key repeats
            if executor.execute(con, repeats_statement(spec, files), {})[0]["n"] == 0:
                statement, used[table] = view_statement(spec, files, columns, set(probe.schema.names), True)
        executor.execute(con, statement, {})
        made.append(table)
    try:
        yield used
    except BaseException:  # the command failed: its connection closes and the views with it
        raise
    for table in made:
        executor.execute(con, _drop(table), {})
