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


@rewrite("spark")
def json_string_list(tree: exp.Expression) -> exp.Expression:
    """`TRY_CAST(json_extract(j, path) AS VARCHAR[])` (a list of strings kept in a JSON document, e.g. a trace's
    retrieved context): Spark's `from_json(get_json_object(j, path), 'array<string>')` reads the same list, NULL
    where DuckDB's cast fails. Runs before the refusal of other JSON extraction (engine/dialects/spark_lists.py)."""
    def swap(node: exp.Expression) -> exp.Expression:
        if (isinstance(node, exp.TryCast) and isinstance(node.this, exp.JSONExtract)
                and not isinstance(node.this, exp.JSONExtractScalar)
                and node.to.is_type(exp.DataType.Type.ARRAY) and node.to.expressions
                and node.to.expressions[0].is_type(*exp.DataType.TEXT_TYPES)):
            extract = node.this
            path = extract.expression
            text = exp.Anonymous(this="get_json_object", expressions=[
                extract.this.copy(), path.copy() if not isinstance(path, exp.JSONPath) else
                exp.Literal.string(path.sql(dialect="duckdb").strip("'"))])
            return exp.Anonymous(this="from_json", expressions=[text, exp.Literal.string("array<string>")])
        return node
    return tree.transform(swap)
