"""Runs compiled statements on DuckDB. It only executes: what to run is decided by the compiler."""
from __future__ import annotations

import time
from typing import Any, Callable

import duckdb
from sqlglot import exp

from engine import journal
from engine.errors import UserError
from engine.sql import Statement

# DuckDB errors that say nothing about the SQL: the store, memory, an interrupt. Never blamed on the user.
_NOT_ABOUT_THE_SQL = (duckdb.IOException, duckdb.OutOfMemoryException, duckdb.InterruptException,
                      duckdb.FatalException, duckdb.InternalException, duckdb.TransactionException,
                      duckdb.ConnectionException)
# Statement name prefixes (engine/compiler.py, engine/monitor/*) -> what the user calls the thing
_OWNERS = (("score:", "metric"), ("kpi.", "KPI"), ("drift.", "drift rule"), ("online.", "online metric"),
           ("parity.", "parity check"))


def bound_params(statement: Statement, params: dict[str, Any]) -> dict[str, Any]:
    """Exactly the parameters the statement uses (DuckDB and Spark reject extra ones)."""
    used = statement.placeholders
    missing = used - params.keys()
    if missing:  # a plan bug, not the user's: name it rather than let DuckDB guess
        raise KeyError(f"statement '{statement.name}' needs the parameters {sorted(missing)}")
    return {name: params[name] for name in used}


def _run(con, statement: Statement, params: dict[str, Any]):
    try:
        return con.execute(statement.text, bound_params(statement, params))
    except duckdb.Error as e:
        failure = user_sql_failure(e, statement.tree, owner_of(statement.name))
        if failure is not None:
            raise failure from e
        raise


def execute(con: duckdb.DuckDBPyConnection, statement: Statement, params: dict[str, Any]) -> list[dict]:
    """Run one plan statement; its rows as dicts (none for a statement without a result)."""
    cursor = _run(con, statement, params)
    rows: list[dict] = []
    if cursor.description is not None:
        columns = [d[0] for d in cursor.description]
        rows = [dict(zip(columns, row)) for row in cursor.fetchall()]
    journal.name_statement(con, statement.name, len(rows))
    return rows


def execute_arrow(con: duckdb.DuckDBPyConnection, statement: Statement, params: dict[str, Any]):
    """Run one plan statement; its result as an Arrow table.

    Through a relation (`con.sql`), not a cursor: DuckDB copies a cursor's rows once more to hand them out as
    Arrow (and warns about it). The relation is built on the connection itself and journaled by hand."""
    raw, bound = journal.unwrapped(con), bound_params(statement, params)
    started = time.perf_counter()
    try:
        relation = raw.sql(statement.text, params=bound or None)
        table = (getattr(relation, "to_arrow_table", None) or relation.arrow)()
    except duckdb.Error as e:
        journal.note(con, statement.text, started, "error", bound)
        failure = user_sql_failure(e, statement.tree, owner_of(statement.name))
        if failure is not None:
            raise failure from e
        raise
    journal.note(con, statement.text, started, "ok", bound)
    journal.name_statement(con, statement.name, table.num_rows)
    return table


def execute_over(con: duckdb.DuckDBPyConnection, statement: Statement, params: dict[str, Any], fw_chunk,
                 fetch: Callable[[Any], Any] = lambda result: result.fetchall(), relation: bool = False) -> Any:
    """Run one plan statement that reads an Arrow table by the name `fw_chunk` (DuckDB's replacement scan finds it
    among the locals of the frame that calls execute: this one; engine/ingest/arrow_scan.py says why not
    `register`), and fetch its result while the table is in scope. `relation`: run it as a relation (`con.sql`;
    its Arrow result then needs no extra copy)."""
    bound = bound_params(statement, params)
    started = time.perf_counter()
    raw = journal.unwrapped(con)
    try:
        # issued from this frame, which holds fw_chunk
        result = fetch(raw.sql(statement.text, params=bound or None) if relation
                       else raw.execute(statement.text, bound))
    except duckdb.Error:
        journal.note(con, statement.text, started, "error", bound)
        raise
    journal.note(con, statement.text, started, params=bound)
    journal.name_statement(con, statement.name, None)
    return result


def user_sql_failure(e: Exception, tree: exp.Expression, owner: str | None = None,
                     engine: str = "DuckDB") -> UserError | None:
    """The user's error (exit 2) when the engine failed on a query holding SQL written in the config, naming the
    thing it belongs to and the expressions; None when the failure is not about the user's SQL."""
    user_sql = _user_sql(tree) if tree is not None else []
    if not user_sql or isinstance(e, _NOT_ABOUT_THE_SQL):
        return None
    return UserError(f"{owner + ': ' if owner else ''}the SQL written in the config "
                     f"({'; '.join(f'`{t}`' for t in user_sql)}) failed when {engine} ran it on the data: "
                     f"{str(e).splitlines()[0]}")


def _user_sql(tree: exp.Expression) -> list[str]:
    """The user's expressions inside a compiled statement (marked by engine/usersql.py), in order, once each."""
    from engine.usersql import USER_SQL_META

    return list(dict.fromkeys(n.meta[USER_SQL_META] for n in tree.walk() if n._meta and USER_SQL_META in n.meta))


def owner_of(statement_name: str) -> str:
    for prefix, what in _OWNERS:
        if statement_name.startswith(prefix):
            return f"{what} '{statement_name[len(prefix):].split('.')[0]}'"
    return f"statement '{statement_name}'"
