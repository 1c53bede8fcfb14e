"""Where the SQL engines differ, and nowhere else.

Plans build their sqlglot trees once, in DuckDB's dialect (the store's). `for_dialect(tree, "spark")` rewrites
a copy for another engine before sqlglot renders it: each rewrite is one function, registered for its dialect
with `@rewrite("spark")`, with a docstring saying what the engines read differently and a parity test
(tests/parity/) that runs the statement on both engines. A construct that cannot be made to mean the same on the
other engine raises `NotPortable` (naming the construct) rather than render something that runs and is wrong.
"""
from __future__ import annotations

from sqlglot import exp

from engine.dialects.rewrites import NotPortable, Rewrite, registered

__all__ = ["NotPortable", "for_dialect", "rewrites"]


def rewrites(dialect: str) -> tuple[Rewrite, ...]:
    _load(dialect)
    return registered(dialect)


def for_dialect(tree: exp.Expression, dialect: str) -> exp.Expression:
    """A copy of `tree` rewritten for `dialect` (the tree itself for DuckDB, which plans are written in)."""
    steps = rewrites(dialect)
    if not steps:
        return tree
    out = tree.copy()
    for step in steps:
        out = step(out)
    return out


def _load(dialect: str) -> None:
    """Import the dialect's rewrite modules (they register themselves)."""
    if dialect == "spark":
        from engine.dialects import spark_halves  # noqa: F401  (first: it undoes a DuckDB-only form)
        from engine.dialects import (spark, spark_drift, spark_lists, spark_math, spark_types,  # noqa: F401
                                     spark_sampling, spark_text)
