"""What a command really ran: every SQL statement the store executed, in order, with its time and status.

A command runs inside `recording()`; `Store.open` then hands out a `RecordingConnection`, which forwards
everything to DuckDB and notes each `execute`/`executemany`/`sql` call. The executor names the statements it
runs from a compiled plan (`Journal.name_last`), so `run_results.json` (engine/run_artifacts.py) tells a
plan step from the store's own bookkeeping, and a test can hold `flywheel compile` to what runs. Statements run on
Spark (`backend=spark`) are journaled too (`record_on`), with the engine that ran them.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Iterator


@dataclass
class Executed:
    sql: str
    ms: float
    status: str  # "ok" | "error"
    name: str | None = None  # the plan statement it ran, when the executor ran it
    rows: int | None = None  # rows the executor read back (None: not read through the executor)
    params: tuple[str, ...] = ()  # the names of the bound parameters
    phase: str | None = None  # the store's own work around a command: "migrate", "connect", "transaction"
    step: str | None = None  # the plan's Python step that issued it (engine/sql.py PythonStep)
    engine: str = "duckdb"  # where it ran: "duckdb" (the store) or "spark" (backend=spark: engine/spark/backend.py)


@dataclass
class Journal:
    entries: list[Executed] = field(default_factory=list)
    steps_run: list[str] = field(default_factory=list)  # Python steps entered, in order
    plan: Any = None  # the compiled plan the command ran (engine/sql.py Plan), handed over by `running_plan`

    def record(self, sql: str, ms: float, status: str, params: Any = None) -> None:
        names = tuple(sorted(params)) if isinstance(params, dict) else ()
        self.entries.append(Executed(sql, round(ms, 3), status, params=names, phase=_phase.get(), step=_step.get()))

    def name_last(self, name: str, rows: int | None) -> None:
        if self.entries:
            self.entries[-1].name, self.entries[-1].rows = name, rows


_current: ContextVar[Journal | None] = ContextVar("flywheel_journal", default=None)
_phase: ContextVar[str | None] = ContextVar("flywheel_journal_phase", default=None)
_step: ContextVar[str | None] = ContextVar("flywheel_journal_step", default=None)


@contextmanager
def step(name: str) -> Iterator[None]:
    """Run a plan's Python step: the statements issued inside are recorded under its name."""
    if _current.get() is not None:
        _current.get().steps_run.append(name)
    token = _step.set(name)
    try:
        yield
    finally:
        _step.reset(token)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Statements run inside are the store's own work (migrations, opening, transactions), not the command's."""
    token = _phase.set(name)
    try:
        yield
    finally:
        _phase.reset(token)


def running_plan(plan):
    """Note the plan a command is about to run, so its run artifacts show that very plan (not one compiled again
    at the end) even when the run fails part-way; returns the plan."""
    if _current.get() is not None:
        _current.get().plan = plan
    return plan


def current() -> Journal | None:
    return _current.get()


@contextmanager
def recording() -> Iterator[Journal]:
    journal = Journal()
    token = _current.set(journal)
    try:
        yield journal
    finally:
        _current.reset(token)


class RecordingConnection:
    """A DuckDB connection that notes what it executes in a journal; everything else is forwarded."""

    def __init__(self, con, journal: Journal):
        self._con = con
        self._journal = journal

    def _timed(self, method, query, parameters):
        started = time.perf_counter()
        try:
            result = method(query) if parameters is None else method(query, parameters)
        except BaseException:
            self._journal.record(str(query), (time.perf_counter() - started) * 1000, "error", parameters)
            raise
        self._journal.record(str(query), (time.perf_counter() - started) * 1000, "ok", parameters)
        # DuckDB's execute returns the connection itself; keep handing out the recording one
        return self if result is self._con else result

    def execute(self, query, parameters=None):
        return self._timed(self._con.execute, query, parameters)

    def executemany(self, query, parameters=None):
        return self._timed(self._con.executemany, query, parameters)

    def sql(self, query, *args, **kwargs):
        return self._timed(lambda q: self._con.sql(q, *args, **kwargs), query, None)

    def __getattr__(self, name: str):
        return getattr(self._con, name)


def record_on(engine: str, name: str, sql: str, started: float, status: str = "ok", rows: int | None = None,
              params: Any = None) -> None:
    """Journal a plan statement another engine ran (Spark: engine/spark/execute.py), named, `started` being its
    time.perf_counter() start: run_results.json then shows every statement of a run, wherever it ran."""
    journal = _current.get()
    if journal is not None:
        journal.record(sql, (time.perf_counter() - started) * 1000, status, params)
        journal.entries[-1].name, journal.entries[-1].rows, journal.entries[-1].engine = name, rows, engine


def name_statement(con, name: str, rows: int | None) -> None:
    """Name the statement just run on `con` after the plan statement it was. Only a recording connection's:
    a statement run elsewhere (a metric's private in-memory copy of a run) was never journaled, and naming
    the last entry would mislabel another statement."""
    if isinstance(con, RecordingConnection):
        con._journal.name_last(name, rows)


def unwrapped(con):
    """The DuckDB connection itself, for a statement that must be issued from its caller's frame (a replacement
    scan of an Arrow table in the caller's locals: engine/ingest/arrow_scan.py); record it with `note`."""
    return con._con if isinstance(con, RecordingConnection) else con


def note(con, sql: str, started: float, status: str = "ok", params: Any = None) -> None:
    """Journal a statement run on `unwrapped(con)`, `started` being its time.perf_counter() start."""
    if isinstance(con, RecordingConnection):
        con._journal.record(sql, (time.perf_counter() - started) * 1000, status, params)
