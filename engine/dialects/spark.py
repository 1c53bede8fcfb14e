"""Rewrites of DuckDB-dialect trees for Spark SQL (engine/dialects/__init__.py says how they are used); one function per
difference.

Each function is one difference between the engines, found by running every compiled statement on both
(tests/parity/). sqlglot's own DuckDB -> Spark transpilation handles the rest (1-based list indexing, lambdas,
STRUCT_PACK, EXCLUDE -> EXCEPT, casts)."""
from __future__ import annotations

from sqlglot import exp

from engine.dialects.rewrites import rewrite


@rewrite("spark")
def exact_percentiles(tree: exp.Expression) -> exp.Expression:
    """`percentile_cont(q) WITHIN GROUP (ORDER BY x)`: sqlglot renders it for Spark as PERCENTILE_APPROX, an
    approximation; Spark's `percentile(x, q)` is the exact, linearly interpolated quantile DuckDB computes."""
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.WithinGroup) and isinstance(node.this, exp.PercentileCont):
            order = node.expression
            column = order.expressions[0].this if isinstance(order, exp.Order) else order
            return exp.Anonymous(this="percentile", expressions=[column.copy(), node.this.this.copy()])
        return node
    return tree.transform(swap)
