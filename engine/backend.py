"""The backend interface: what running a plan needs from a SQL engine.

A backend has a dialect (plans render their sqlglot trees in it), runs a plan statement with bound parameters,
reads a result as Arrow, writes an Arrow table to a store table (append, or upsert on the table's key) and
groups work in one transaction. The DuckDB store is the first implementation; another engine (Spark) implements
the same five methods, and the plans do not change.

    backend = DuckDBBackend(store)
    with backend.transaction():
        backend.write("outputs", frame, mode="upsert")
        rows = run_plan(backend, plan, {"run_id": run_id})
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Literal, Mapping, Protocol

import pyarrow as pa

from engine import bulk, executor, journal
from engine.sql import DIALECT, Plan, Statement, Write

WriteMode = Literal["append", "upsert"]


class Backend(Protocol):
    dialect: str

    def run(self, statement: Statement, params: Mapping[str, Any]) -> list[dict]:
        """Execute one plan statement, binding the parameters it uses; its rows (none for a write)."""

    def read_arrow(self, statement: Statement, params: Mapping[str, Any]) -> pa.Table:
        """A statement's result as an Arrow table (bulk reads: no Python row objects)."""

    def write(self, table: str, frame: pa.Table, mode: WriteMode = "append") -> int:
        """Write every row of `frame` (columns by name) into a store table; returns the rows written."""

    def transaction(self) -> AbstractContextManager:
        """One transaction; nested blocks join the outer one."""


class DuckDBBackend:
    """The store's DuckDB connection as a backend (statements journaled: engine/journal.py)."""

    dialect = DIALECT

    def __init__(self, store):
        self.store = store

    def run(self, statement: Statement, params: Mapping[str, Any]) -> list[dict]:
        return executor.execute(self.store.con, statement, dict(params))

    def read_arrow(self, statement: Statement, params: Mapping[str, Any]) -> pa.Table:
        return executor.execute_arrow(self.store.con, statement, dict(params))

    def write(self, table: str, frame: pa.Table, mode: WriteMode = "append") -> int:
        if mode not in ("append", "upsert"):
            raise ValueError(f"write mode must be append or upsert, not {mode!r}")
        return bulk.write_arrow(self.store.con, table, frame, replace=mode == "upsert")

    def write_step(self, step: Write, frame: pa.Table) -> int:
        """A plan's Write step: its statements are recorded under the step's name."""
        with journal.step(step.name):
            return self.write(step.table, frame, step.mode)  # type: ignore[arg-type]

    def transaction(self) -> AbstractContextManager:
        return self.store.transaction()


def run_on(target, statement: Statement, params: Mapping[str, Any]) -> list[dict]:
    """Run a statement on a backend (DuckDB, or Spark for production data) or, as tests and library callers
    do, directly on a DuckDB connection."""
    if hasattr(target, "dialect"):
        return target.run(statement, params)
    return executor.execute(target, statement, dict(params))


def run_plan(backend: Backend, plan: Plan, params: Mapping[str, Any]) -> dict[str, list[dict]]:
    """Every SQL statement of a plan, in order, on one backend: each statement's rows by its name."""
    return {st.name: backend.run(st, params) for st in plan.statements if isinstance(st, Statement)}
