"""A what-if plan statement and the tables it touches: a replay runs the same rule queries for every stored decision
(rendered once: engine/sql.py Statement.text), through the executor, so each run is journaled under its name."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from engine.executor import execute
from engine.sql import Statement


@dataclass(frozen=True)
class Prepared:
    statement: Statement
    tables: frozenset[str]  # the tables it reads or writes (lower case)

    @classmethod
    def of(cls, name: str, tree: exp.Expression, description: str = "", only_when: str = "") -> "Prepared":
        params = tuple(sorted({p.name for p in tree.find_all(exp.Placeholder)}))
        tables = frozenset(t.name.lower() for t in tree.find_all(exp.Table))
        return cls(Statement(name, tree, params, description, only_when), tables)

    @property
    def name(self) -> str:
        return self.statement.name

    def rows(self, con, values: dict[str, Any]) -> list[dict]:
        return execute(con, self.statement, values)
