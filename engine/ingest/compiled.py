"""Compiled ingest SQL, rendered once per process (compiling takes a while) and cached on disk."""
from __future__ import annotations

import threading
from functools import lru_cache

from engine.ingest.options import Options
from engine.ingest.records import KINDS, RecordKind
from engine.ingest.schema_sql import _e
from engine.ingest.statements import KindSQL, detect_sql, quarantine_undetected
from engine.sql import Statement, literal

_COMPILING = threading.Lock()  # one compilation at a time: a caller waits for one under way instead of redoing it


def insert_sql(kind: str, options: Options, only_that_kind: bool) -> str:
    """The rendered insert_accepted statement (compiling it takes a while: once per process)."""
    with _COMPILING:
        return _insert_sql(kind, options, only_that_kind)


@lru_cache(maxsize=None)
def _insert_sql(kind: str, options: Options, only_that_kind: bool) -> str:
    where = _e("kind = __k__", k=literal(kind)) if only_that_kind else None
    return kind_sql(KINDS[kind], options).insert_accepted(where=where).sql()


def validate_sql(kind: str, options: Options) -> str:
    """The rendered validate statement (once per process, as insert_sql)."""
    with _COMPILING:
        return _validate_sql(kind, options)


@lru_cache(maxsize=None)
def _validate_sql(kind: str, options: Options) -> str:
    return kind_sql(KINDS[kind], options).validate().sql()


def batch_sql(kind: str, options: Options) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The other statements of a batch, rendered, with their parameters: {KindSQL method: (sql, params)}."""
    with _COMPILING:
        return _batch_sql(kind, options)


@lru_cache(maxsize=None)
def _batch_sql(kind: str, options: Options) -> dict[str, tuple[str, tuple[str, ...]]]:
    ks = kind_sql(KINDS[kind], options)
    statements = {"rejected_counts": ks.rejected_counts(),
                  "quarantine_rejected": ks.quarantine_rejected(), "settle": ks.settle(),
                  "settled_counts": ks.settled_counts(), "drop_settled": ks.drop_settled(),
                  "quarantine_conflicts": ks.quarantine_conflicts(), "conflicting_batches": ks.conflicting_batches()}
    return {name: (st.sql(), st.params) for name, st in statements.items()}


def _compile_ahead(kinds: tuple[str, ...], options: Options) -> None:
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
        statements += [ks.create_stage(), ks.insert_accepted(), ks.validate(), ks.quarantine_rejected(),
                       ks.settle(), ks.drop_settled(), ks.quarantine_conflicts()]
    return statements

