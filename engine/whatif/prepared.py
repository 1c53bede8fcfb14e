"""A statement rendered once and run many times with different bound values: a replay runs the same rule
queries for every stored decision, and rendering an AST (sqlglot) costs more than running a small query."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from engine.sql import render


@dataclass(frozen=True)
class Prepared:
    name: str
    sql: str
    params: tuple[str, ...]  # the `$name` parameters it binds
    tables: frozenset[str]  # the tables it reads or writes (lower case)

    @classmethod
    def of(cls, name: str, tree: exp.Expression) -> "Prepared":
        params = tuple(sorted({p.name for p in tree.find_all(exp.Placeholder)}))
        tables = frozenset(t.name.lower() for t in tree.find_all(exp.Table))
        return cls(name, render(tree), params, tables)

    def rows(self, con, values: dict[str, Any]) -> list[dict]:
        cursor = con.execute(self.sql, {p: values[p] for p in self.params})
        if cursor.description is None:
            return []
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]
