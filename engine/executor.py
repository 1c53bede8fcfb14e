"""Runs compiled statements on DuckDB. It only executes: what to run is decided by the compiler."""
from __future__ import annotations

from typing import Any

import duckdb
from sqlglot import exp

from engine.sql import Plan, Statement


def execute(con: duckdb.DuckDBPyConnection, statement: Statement, params: dict[str, Any]) -> list[dict]:
    # Bind exactly the parameters the statement uses (DuckDB rejects extra ones).
    used = {p.name for p in statement.tree.find_all(exp.Placeholder)}
    bound = {name: params[name] for name in used}
    cursor = con.execute(statement.sql(), bound)
    if cursor.description is None:
        return []
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


def execute_plan(con: duckdb.DuckDBPyConnection, plan: Plan, params: dict[str, Any]) -> dict[str, list[dict]]:
    return {st.name: execute(con, st, params) for st in plan.statements}
