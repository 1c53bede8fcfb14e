"""User-written SQL expressions (custom metrics, monitor features, KPI aggregates): parse and police them.

The text is parsed by sqlglot and must be a single expression over an allowlist of columns: no statements,
subqueries, table references, parameters, window or set-returning functions, and no function that reads files
or settings. Aggregates are allowed only where the caller says so (KPIs). The parsed tree (never the text) is
placed into compiled statements.
"""
from __future__ import annotations

import sqlglot
from sqlglot import exp

from engine.sql import DIALECT, render

USER_SQL_META = "user_sql"  # key in an expression's sqlglot meta: the user's text

_STATEMENTS = (exp.Query, exp.DDL, exp.DML, exp.Create, exp.Drop, exp.Alter, exp.Insert, exp.Update, exp.Delete,
               exp.Merge, exp.Command, exp.Set, exp.Pragma, exp.Use, exp.Transaction, exp.Commit, exp.Rollback,
               exp.Copy, exp.Describe, exp.Attach, exp.Detach, exp.Install, exp.Summarize, exp.Cache, exp.Kill)
_FORBIDDEN = (
    ((exp.Subquery, exp.Query), "subqueries"),
    ((exp.Table, exp.From, exp.Join, exp.Lateral), "table references"),
    ((exp.Placeholder, exp.Parameter, exp.SessionParameter), "parameters"),
    ((exp.Star, exp.Columns), "*"),
    ((exp.Window,), "window functions{per_row}"),
    ((exp.Explode, exp.Unnest), "set-returning functions"),
)
# Functions that reach outside the row: files, settings, the catalog, sequences.
_FORBIDDEN_FUNCTIONS = {"getenv", "current_setting", "query", "query_table", "glob", "load_extension",
                        "nextval", "currval", "setseed", "checkpoint", "force_checkpoint", "sql_auto_complete",
                        "which_secret", "sniff_csv", "current_database", "current_schema", "current_schemas"}
_FORBIDDEN_PREFIXES = ("read_", "parquet_", "duckdb_", "pragma_", "iceberg_", "delta_", "sqlite_", "postgres_",
                       "mysql_", "json_execute_serialized_sql", "from_")


def parse_expression(text: str, columns: tuple[str, ...], *, aggregates: bool = False,
                     what: str = "expression", per_row: str = "the expression is per row",
                     hint: str = "") -> tuple[exp.Expression | None, list[str]]:
    """The parsed expression and the problems found (empty when it is acceptable).

    `what` names the expression in messages ("metric expression"), `per_row` says why aggregates and windows
    are refused, `hint` is appended to the message about qualified columns."""
    try:
        trees = [t for t in sqlglot.parse(text, dialect=DIALECT) if t is not None]
    except sqlglot.errors.SqlglotError as e:
        return None, [f"not a valid SQL expression: {str(e).splitlines()[0]}"]
    if len(trees) != 1:
        return None, [f"must be a single SQL expression, got {len(trees)} statements"]
    tree = trees[0]
    if isinstance(tree, _STATEMENTS):
        return None, [f"must be a scalar expression, not a statement ({tree.key.upper()})"]
    allowed = {c.lower() for c in columns}
    problems: list[str] = []
    for node in tree.walk():
        if aggregates and isinstance(node, exp.Star) and isinstance(node.parent, exp.Count):
            continue  # count(*) in a KPI aggregate
        for classes, name in _FORBIDDEN:
            if isinstance(node, classes):
                name = name.format(per_row=f" ({per_row})")
                problems.append(f"{name} are not allowed" if name != "*" else "* is not allowed")
        if not aggregates and isinstance(node, exp.AggFunc):
            problems.append(f"aggregate functions ({per_row}) are not allowed")
        if isinstance(node, exp.Column):
            if node.table:
                problems.append(f"column '{render(node)}' must be unqualified{hint}")
            elif node.name.lower() not in allowed:
                problems.append(f"unknown column '{node.name}'; allowed: {', '.join(columns)}")
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in _FORBIDDEN_FUNCTIONS or name.startswith(_FORBIDDEN_PREFIXES):
                problems.append(f"function {name}() is not allowed in a {what}")
    # Mark the tree as the user's: a DuckDB error while running a statement that holds it is the user's SQL
    # failing on the data (exit 2, naming the expression), not a Flywheel bug (engine/executor.py).
    tree.meta[USER_SQL_META] = text
    return tree, list(dict.fromkeys(problems))
