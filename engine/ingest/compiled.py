"""Compiled ingest SQL: compiling a kind's statements from its schema takes about a second, so each is rendered
once per process and kept in the store (`ingest_sql_cache`), keyed by a hash of what it is compiled from: the
kind's schema file, the compiler's source and the options that shape the SQL (never the salt: it is a
parameter). A schema or compiler change makes a new key; the old rows are simply not read again."""
from __future__ import annotations

import hashlib
import json
import threading
from functools import lru_cache
from pathlib import Path

import duckdb

from engine.ingest.options import Options
from engine.ingest.records import KINDS, RecordKind
from engine.ingest.schema_sql import _e
from engine.ingest.statements import KindSQL, detect_sql, quarantine_undetected
from engine.paths import schemas_dir
from engine.sql import Statement, literal

_COMPILING = threading.Lock()  # one compilation at a time: a caller waits for one under way instead of redoing it
# The modules whose code shapes the compiled SQL: a change to any of them is a new cache key.
_COMPILER = ("checks.py", "statements.py", "schema_sql.py", "timestamps.py", "privacy.py", "strict.py", "records.py",
             "compiled.py", "../sql.py")
# Statements read from the store for this process: (kind, options) -> {statement name: (sql, parameter names)}.
_STORED: dict[tuple[str, Options], dict[str, tuple[str, tuple[str, ...]]]] = {}
# Statements compiled in this process, to be stored: same shape.
_COMPILED: dict[tuple[str, Options], dict[str, tuple[str, tuple[str, ...]]]] = {}


@lru_cache(maxsize=None)
def cache_key(kind: str, options: Options) -> str:
    """sha256 of the kind's schema, the compiler's source and the options (the salt only as set / not set)."""
    digest = hashlib.sha256()
    digest.update((schemas_dir() / f"{KINDS[kind].schema}.schema.json").read_bytes())
    here = Path(__file__).resolve().parent
    for name in _COMPILER:
        digest.update((here / name).read_bytes())
    shape = {**options.__dict__, "salt": bool(options.salt), "kind": kind}
    digest.update(json.dumps(shape, sort_keys=True, default=list).encode())
    return digest.hexdigest()


def _cached(kind: str, options: Options, name: str, compile_one) -> tuple[str, tuple[str, ...]]:
    stored = _STORED.get((kind, options), {}).get(name)
    if stored is not None:
        return stored
    with _COMPILING:
        compiled = _COMPILED.setdefault((kind, options), {})
        if name not in compiled:
            compiled[name] = compile_one()
        return compiled[name]


def insert_sql(kind: str, options: Options, only_that_kind: bool) -> str:
    """The rendered insert_accepted statement."""
    def compile_one() -> tuple[str, tuple[str, ...]]:
        where = _e("kind = __k__", k=literal(kind)) if only_that_kind else None
        st = kind_sql(KINDS[kind], options).insert_accepted(where=where)
        return st.sql(), st.params

    return _cached(kind, options, "insert_of_kind" if only_that_kind else "insert", compile_one)[0]


def validate_sql(kind: str, options: Options) -> str:
    """The rendered validate statement."""
    def compile_one() -> tuple[str, tuple[str, ...]]:
        st = kind_sql(KINDS[kind], options).validate()
        return st.sql(), st.params

    return _cached(kind, options, "validate", compile_one)[0]


_BATCH = ("rejected_counts", "quarantine_rejected", "settle", "settled_counts", "drop_settled",
          "quarantine_conflicts", "conflicting_batches")


def batch_sql(kind: str, options: Options) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The other statements of a batch, rendered, with their parameters: {KindSQL method: (sql, params)}."""
    def compile_one(name: str):
        def run() -> tuple[str, tuple[str, ...]]:
            st = getattr(kind_sql(KINDS[kind], options), name)()
            return st.sql(), st.params
        return run

    return {name: _cached(kind, options, name, compile_one(name)) for name in _BATCH}


def load_stored(con: duckdb.DuckDBPyConnection, kinds: list[str], options: Options) -> bool:
    """Read the kinds' statements stored by an earlier ingest; True when every kind has some."""
    found = True
    for kind in kinds:
        rows = con.execute("SELECT statement, sql, params FROM ingest_sql_cache WHERE cache_key = ?",
                           [cache_key(kind, options)]).fetchall()
        if rows:
            _STORED[(kind, options)] = {name: (sql, tuple(json.loads(params))) for name, sql, params in rows}
        found = found and bool(rows)
    return found


def save_compiled(con: duckdb.DuckDBPyConnection, kinds: list[str], options: Options) -> int:
    """Store the statements this process compiled for `kinds` (in the caller's transaction); how many."""
    n = 0
    with _COMPILING:
        for kind in kinds:
            for name, (sql, params) in _COMPILED.get((kind, options), {}).items():
                con.execute("INSERT INTO ingest_sql_cache VALUES (?, ?, ?, ?, ?, now()) ON CONFLICT DO NOTHING",
                            [cache_key(kind, options), kind, name, sql, json.dumps(list(params))])
                n += 1
    return n


def compile_ahead(kinds: tuple[str, ...], options: Options) -> None:
    """The statements a batch will most likely run (kind=auto: those of a file of one kind), compiled ahead."""
    for name in kinds:
        insert_sql(name, options, False)
    for name in kinds:
        batch_sql(name, options)
    if len(kinds) == 1:
        validate_sql(kinds[0], options)


def kind_sql(kind: RecordKind, options: Options) -> KindSQL:
    return KindSQL(kind, options)


def compile_plan(options: Options) -> list[Statement]:
    """Every statement an ingest with these options runs, in order (for `flywheel compile ingest`)."""
    statements: list[Statement] = []
    kinds = list(KINDS) if options.kind == "auto" else [options.kind]
    if options.kind == "auto":
        statements += [detect_sql(), quarantine_undetected(options)]
    for name in kinds:
        ks = kind_sql(KINDS[name], options)
        rejected = f"when {name} records were rejected"
        duplicated = f"when {name} records repeat a stored key (duplicates or conflicts)"
        statements += [ks.create_stage(), ks.insert_accepted(), ks.validate().conditional(rejected),
                       ks.quarantine_rejected().conditional(rejected), ks.settle(),
                       ks.drop_settled().conditional(duplicated), ks.quarantine_conflicts().conditional(duplicated)]
    return statements
