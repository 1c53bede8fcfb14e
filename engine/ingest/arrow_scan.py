"""Running a statement over an Arrow table without registering it.

`con.register(name, table)` creates a view in the catalog. Inside a transaction, dropping it again
(`unregister`) leaves the old catalog entry, and the table it holds, alive until the transaction ends: an
ingest, one transaction over every chunk of every file, would keep every chunk it read in memory (peak RSS grew
with the input: 2 GiB for 2M traces). DuckDB's replacement scan instead finds the table as a local variable of
the calling frame, for the one statement only.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import duckdb
import pyarrow as pa

from engine import journal

TABLE = "fw_chunk"  # the name statements read the Arrow table by


def over(con: duckdb.DuckDBPyConnection, sql: str, params: Any, fw_chunk: pa.Table,
         fetch: Callable[[duckdb.DuckDBPyConnection], Any] = lambda result: result.fetchall()) -> Any:
    """Run `sql` (which reads the table as `fw_chunk`) and fetch its result while the table is in scope: DuckDB
    resolves `fw_chunk` to this function's argument (a replacement scan of this frame's locals)."""
    assert isinstance(fw_chunk, pa.Table)
    started = time.perf_counter()
    result = journal.unwrapped(con).execute(sql, params)  # from this frame, which holds fw_chunk
    journal.note(con, sql, started, params=params)
    return fetch(result)


def to_arrow(con: duckdb.DuckDBPyConnection, sql: str, fw_chunk: pa.Table) -> pa.Table:
    """The result of `sql` (no parameters) over the table `fw_chunk`, as Arrow (a relation: no extra copy)."""
    assert isinstance(fw_chunk, pa.Table)
    started = time.perf_counter()
    table = journal.unwrapped(con).sql(sql).to_arrow_table()
    journal.note(con, sql, started)
    return table
