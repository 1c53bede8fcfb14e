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

from engine.ingest.options import Options
from engine.ingest.records import KINDS, RecordKind
from engine.ingest.schema_sql import _e
from engine.ingest.statements import KindSQL
from engine.paths import schemas_dir
from engine.sql import Statement, literal

_COMPILING = threading.Lock()  # one compilation at a time: a caller waits for one under way instead of redoing it
# The modules whose code shapes the compiled SQL: a change to any of them is a new cache key.
_COMPILER = ("checks.py", "statements.py", "schema_sql.py", "timestamps.py", "privacy.py", "strict.py", "records.py",
             "compiled.py", "../sql.py")
# Statements read from the store for this process: (kind, options) -> {statement: (sql, parameter names, description)}.
_STORED: dict[tuple[str, Options], dict[str, tuple[str, tuple[str, ...], str]]] = {}
# Statements compiled in this process, to be stored: same shape.
_COMPILED: dict[tuple[str, Options], dict[str, tuple[str, tuple[str, ...], str]]] = {}


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


@lru_cache(maxsize=None)
def _compiler(kind: str, options: Options) -> KindSQL:
    """One KindSQL per kind and options while compiling: its checks (compiled from the schema, a third of the
    time a statement takes) are built once for the insert, the insert of a mixed chunk and validate."""
    return kind_sql(KINDS[kind], options)


def _compile(kind: str, options: Options, name: str) -> tuple[str, tuple[str, ...], str]:
    ks = _compiler(kind, options)
    if name == "insert_of_kind":
        st = ks.insert_accepted(where=_e("kind = __k__", k=literal(kind)))
    else:
        st = getattr(ks, "insert_accepted" if name == "insert" else name)()
    return st.text, st.params, st.description  # printed by `flywheel compile ingest` as it runs


def kind_statement(kind: str, options: Options, name: str) -> Statement:
    """One of a kind's compiled statements (`KIND_STATEMENTS`), as text: read from the store by `load_stored`,
    compiled by this process before, or compiled now (waiting for a compilation under way)."""
    found = _STORED.get((kind, options), {}).get(name)
    if found is None:
        with _COMPILING:
            compiled = _COMPILED.setdefault((kind, options), {})
            if name not in compiled:
                compiled[name] = _compile(kind, options, name)
            found = compiled[name]
    sql, params, description = found
    return Statement(f"{name}_{kind}", None, params, description, rendered=sql)


# A kind's statements whose SQL is compiled from its schema (the others are cheap to build: engine/ingest/plan.py).
# insert_of_kind: the insert for a chunk of several kinds (kind=auto), reading only the kind's records.
KIND_STATEMENTS = ("insert", "insert_of_kind", "validate", "rejected_counts", "quarantine_rejected", "settle",
                   "settled_counts", "conflicting_batches", "drop_settled", "quarantine_conflicts")


def remember(kind: str, options: Options, rows: list[tuple]) -> bool:
    """Keep a kind's statements read from the store (engine/ingest/plan.py LOAD_COMPILED rows: statement, sql,
    meta); True when they are all there."""
    if rows:
        _STORED[(kind, options)] = {name: (sql, tuple(json.loads(meta)["params"]), json.loads(meta)["description"])
                                    for name, sql, meta in rows}
    return set(KIND_STATEMENTS) <= set(_STORED.get((kind, options), {}))


def to_save(kinds: list[str], options: Options) -> list[dict]:
    """The statements this process compiled for `kinds`, as parameters of plan.py's SAVE_COMPILED."""
    with _COMPILING:
        return [{"cache_key": cache_key(kind, options), "kind": kind, "statement": name, "sql": sql,
                 "params": json.dumps({"params": list(params), "description": description})}
                for kind in kinds for name, (sql, params, description) in _COMPILED.get((kind, options), {}).items()]


def compile_ahead(kinds: tuple[str, ...], options: Options) -> None:
    """Every compiled statement of the kinds, the most needed first (a batch waits for those it runs)."""
    for name in KIND_STATEMENTS:
        for kind in kinds:
            kind_statement(kind, options, name)


def kind_sql(kind: RecordKind, options: Options) -> KindSQL:
    return KindSQL(kind, options)
