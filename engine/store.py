"""The DuckDB store: long fact tables, a recorded schema version and forward migrations.

A new metric, rule or feature never changes the schema: results are rows keyed by name. A later feature
that needs a new table appends a migration to MIGRATIONS (engine/migrations.py); opening an older store applies the missing ones
in one transaction, so a store is never left half-migrated.
"""
from __future__ import annotations

import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import duckdb

from engine import journal
from engine.errors import OperationalError, StoreBusy, UserError
from engine.migrations import MIGRATIONS, SCHEMA_VERSION  # noqa: F401  (re-exported: the store's schema)

T = TypeVar("T")


class Store:
    """An open connection to the store file. Use `with Store.open(path) as store:`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path):
        self.con = con
        self.path = path
        self._depth = 0  # open transaction blocks

    @classmethod
    def in_memory(cls) -> "Store":
        """A private store in memory, migrated, in UTC: a scratch copy of what a step needs (close its `con`)."""
        store = cls(duckdb.connect(":memory:"), Path(":memory:"))
        store.con.execute("SET TimeZone = 'UTC'")
        store.migrate()
        return store

    @classmethod
    @contextmanager
    def open(cls, path: Path, read_only: bool = False, lock_wait_s: float | None = None) -> Iterator["Store"]:
        """Open the store, waiting up to `lock_wait_s` (default: the configured `store.lock_wait_s`) while another
        process holds it. A writable open marks runs whose process is gone as aborted; a run of this process
        that is still `running` when the block exits with an exception is marked failed (aborted on Ctrl-C)."""
        path = Path(path)
        if read_only and not path.exists():
            raise UserError(f"no store at {path}: run `flywheel evaluate` first (or set store.path)")
        path.parent.mkdir(parents=True, exist_ok=True)
        wait = lock_wait if lock_wait_s is None else lock_wait_s
        con = retry_while_locked(lambda: duckdb.connect(str(path), read_only=read_only), path, wait)
        if journal.current() is not None:  # the command records what it runs (run_results.json)
            con = journal.RecordingConnection(con, journal.current())
        store = cls(con, path)
        try:
            with journal.phase("connect"):
                con.execute("SET TimeZone = 'UTC'")  # windows (date_trunc) and reports are in UTC everywhere
                if not read_only:
                    from engine import abandoned_runs

                    with journal.phase("migrate"):
                        store.migrate()
                    abandoned_runs.stamp_owner(store)
                    abandoned_runs.mark_abandoned(store)
            try:
                yield store
            except BaseException as e:
                if not read_only and not isinstance(e, GeneratorExit):
                    from engine import abandoned_runs

                    with journal.phase("close"):  # the store's bookkeeping after a failure, not the command's
                        abandoned_runs.close_own_runs(store, interrupted=isinstance(e, KeyboardInterrupt))
                raise
        finally:
            con.close()

    def schema_version(self) -> int:
        exists = self.con.execute(
            # duckdb_tables(), not information_schema.tables: ~1 ms instead of ~8 on every store open
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_migrations' "
            "AND database_name = current_database()").fetchall()[0][0]
        if not exists:
            return 0
        return self.con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()[0][0]

    def migrate(self) -> None:
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise UserError(f"the store {self.path} has schema version {current}, newer than this flywheel "
                            f"({SCHEMA_VERSION}); upgrade flywheel")
        # Versions are applied by set difference, not `> current`: features land out of order, so a store
        # may hold 1, 3 and 4 and still need 2.
        applied = set()
        if current:
            applied = {v for (v,) in self.con.execute("SELECT version FROM schema_migrations").fetchall()}
        pending = sorted((m for m in MIGRATIONS if m[0] not in applied), key=lambda m: m[0])
        if not pending:
            return
        with self.transaction():
            self.con.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMPTZ DEFAULT now())""")
            for version, description, statements in pending:
                for statement in statements:
                    self.con.execute(statement)
                self.con.execute("INSERT INTO schema_migrations (version, description) VALUES (?, ?)",
                                 [version, description])

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction; a nested block joins the outer one (DuckDB has no nested transactions), so a
        step that is atomic on its own stays atomic inside a larger unit of work."""
        if self._depth:
            self._depth += 1
            try:
                yield self.con
            finally:
                self._depth -= 1
            return
        with journal.phase("transaction"):
            self.con.execute("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield self.con
        except BaseException:
            with journal.phase("transaction"):
                self.con.execute("ROLLBACK")
            raise
        else:
            with journal.phase("transaction"):
                self.con.execute("COMMIT")
        finally:
            self._depth = 0


# How long a command waits for another process to release the store (`store.lock_wait_s`); the CLI sets it
# from the composed config before a command runs.
DEFAULT_LOCK_WAIT_S = 30.0
lock_wait = DEFAULT_LOCK_WAIT_S


def set_lock_wait(seconds: float) -> None:
    global lock_wait
    lock_wait = float(seconds)


_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


def _is_lock_conflict(e: duckdb.Error) -> bool:
    return isinstance(e, duckdb.IOException) and "conflicting lock" in str(e).lower()


def retry_while_locked(open_fn: Callable[[], T], path: Path, wait_s: float) -> T:
    """Call `open_fn` (a connect or ATTACH of the store) until no other process holds the store's lock, for at
    most `wait_s` seconds; say once that we wait, and raise StoreBusy (exit 3) when the wait is over."""
    from engine.console import err_console

    deadline = None
    while True:
        try:
            return open_fn()
        except duckdb.Error as e:
            if not _is_lock_conflict(e):
                if "no space left" in str(e).lower():
                    raise OperationalError(f"cannot open the store {path}: the disk is full") from e
                raise UserError(f"cannot open the store {path}: {e}") from e
            m = _HOLDER.search(str(e))
            holder = f"process {m['pid']}" if m else "another process"
            now = time.monotonic()
            if deadline is None:
                deadline = now + wait_s
                if wait_s > 0:
                    err_console.print(f"the store {path} is in use by {holder} (DuckDB allows one writer); "
                                      f"waiting up to {wait_s:g} s for it (store.lock_wait_s)", highlight=False)
            if now >= deadline:
                raise StoreBusy(f"the store {path} is still in use by {holder} after waiting {wait_s:g} s "
                                f"(store.lock_wait_s); run again when it has finished") from e
            time.sleep(min(0.2, deadline - now))
