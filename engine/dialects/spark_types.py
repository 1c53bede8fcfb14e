"""Spark rewrites of types: casts to DuckDB types Spark lacks (engine/dialects/)."""
from __future__ import annotations

from sqlglot import exp

from engine.dialects.rewrites import rewrite


# DuckDB types Spark lacks -> the Spark type that holds every value exactly
_TYPES = {exp.DataType.Type.UBIGINT: "DECIMAL(20, 0)", exp.DataType.Type.UINT: "BIGINT",
          exp.DataType.Type.USMALLINT: "INT", exp.DataType.Type.UTINYINT: "SMALLINT"}
# (HUGEINT is refused: engine/dialects/spark_lists.py; DECIMAL(38, 0) does not hold all its values)


@rewrite("spark")
def portable_types(tree: exp.Expression) -> exp.Expression:
    """Casts to DuckDB types Spark has no equivalent for. Unsigned integers (a record's UBIGINT hash)
    become types wide enough for every value (sqlglot would write UBIGINT, which Spark does not know, and a
    BIGINT would overflow). A cast to JSON keeps the JSON text as a STRING: sqlglot writes TO_JSON(x), which
    Spark reads as "serialise this struct" and refuses for a string."""
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.DataType) and node.this in _TYPES:
            return exp.DataType.build(_TYPES[node.this], dialect="spark")
        if isinstance(node, (exp.Cast, exp.TryCast)) and node.to.is_type(exp.DataType.Type.JSON):
            return exp.cast(node.this.copy(), "STRING")
        return node
    return tree.transform(swap)
