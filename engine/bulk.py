"""Bulk writes through Arrow: a pyarrow table is registered with the connection and inserted by one
`INSERT ... SELECT` (DuckDB reads the Arrow buffers directly; `executemany` would bind row by row).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from sqlglot import exp

from engine.sql import render

# Tables written in bulk (identifiers come from this list, never from config).
WRITABLE = ("runs", "run_cases", "outputs", "scores", "judgements", "embeddings", "cases", "monitor_results",
            "bridge_exports")


def write_arrow(con, table: str, frame: pa.Table, replace: bool = False) -> int:
    """Insert every row of `frame` into `table` (columns by name). `replace`: INSERT OR REPLACE on the
    table's primary key. Returns the number of rows written."""
    if table not in WRITABLE:
        raise ValueError(f"not a bulk-writable table: {table}")
    if not len(frame):
        return 0
    source = f"flywheel_bulk_{table}"
    columns = list(frame.column_names)
    insert = exp.insert(exp.select(*[exp.column(c, quoted=True) for c in columns]).from_(source), table,
                        columns=[exp.to_identifier(c, quoted=True) for c in columns])
    if replace:
        insert.set("alternative", "REPLACE")
    con.register(source, frame)
    try:
        con.execute(render(insert))
    finally:
        con.unregister(source)
    return len(frame)


@dataclass(frozen=True)
class DeferredWrite:
    """A write prepared while the store was closed, applied in the run's write transaction: `frame` is
    registered as `name` while `statement` (code's own SQL, values as $parameters) runs."""

    name: str
    frame: pa.Table
    statement: str
    params: dict[str, Any] = field(default_factory=dict)

    def apply(self, con) -> None:
        con.register(self.name, self.frame)
        try:
            con.execute(self.statement, self.params or None)
        finally:
            con.unregister(self.name)
