"""Spark rewrites found by running `flywheel monitor`'s compiled statements on Spark (engine/dialects/)."""
from __future__ import annotations

from sqlglot import exp

from engine.dialects.rewrites import rewrite


@rewrite("spark")
def md5_number_buckets(tree: exp.Expression) -> exp.Expression:
    """`md5_number(s) % n`, the sampling hash's bucket: DuckDB's md5_number is the 128-bit little-endian integer
    of the MD5 digest, which Spark cannot hold (no 128-bit integers). Its remainder is computed exactly from the
    digest's 16 bytes instead: sum(byte_i * (256^i mod n)) mod n, every term within a BIGINT. A bare md5_number
    (not reduced modulo a constant) is not portable."""
    def swap(node: exp.Expression) -> exp.Expression:
        if (isinstance(node, exp.Mod) and _is_md5_number(node.this)
                and isinstance(node.expression, exp.Literal) and node.expression.is_int):
            return _md5_mod(node.this.expressions[0], int(node.expression.this))
        if _is_md5_number(node):
            from engine.dialects.rewrites import NotPortable

            raise NotPortable("md5_number(...) is a 128-bit integer Spark cannot hold; only md5_number(...) % n "
                              "(a bucket) is portable")
        return node
    return tree.transform(swap)


def _is_md5_number(node: exp.Expression) -> bool:
    return isinstance(node, exp.Anonymous) and node.name.lower() == "md5_number"


def _md5_mod(value: exp.Expression, n: int) -> exp.Expression:
    digest = exp.Anonymous(this="md5", expressions=[value.copy()])
    terms = []
    for i in range(16):
        byte = exp.Anonymous(this="conv", expressions=[
            exp.Substring(this=digest.copy(), start=exp.Literal.number(2 * i + 1), length=exp.Literal.number(2)),
            exp.Literal.number(16), exp.Literal.number(10)])
        terms.append(exp.Mul(this=exp.cast(byte, "BIGINT"), expression=exp.Literal.number(pow(256, i, n))))
    total = terms[0]
    for term in terms[1:]:
        total = exp.Add(this=total, expression=term)
    return exp.Mod(this=exp.Paren(this=total), expression=exp.Literal.number(n))


@rewrite("spark")
def hoisted_ctes(tree: exp.Expression) -> exp.Expression:
    """Spark has no WITH inside a subquery, and sqlglot moves nested CTEs to the top: a relation used twice
    (feedback with its trace ids resolved, engine/monitor/sources.py, read by two aggregates of one KPI) then
    defines the same CTE name twice, which Spark refuses. Nested CTEs are hoisted here, each distinct definition
    once; two different definitions under one name are renamed apart."""
    if not isinstance(tree, exp.Query) and not isinstance(tree, (exp.Create, exp.Insert)):
        return tree
    top = tree if isinstance(tree, exp.Query) else tree.expression
    if not isinstance(top, exp.Query):
        return tree
    seen: dict[str, exp.Expression] = {}  # name -> its body (sqlglot trees compare by structure)
    hoisted: list[exp.CTE] = []
    for with_ in list(top.find_all(exp.With)):
        if with_.parent is top:
            continue
        scope = with_.parent
        for cte in list(with_.expressions):
            name, body = cte.alias, cte.this
            if name in seen and seen[name] != body:
                new = f"{name}_{len(hoisted)}"
                _rename_tables(scope, name, new)
                cte.set("alias", exp.TableAlias(this=exp.to_identifier(new)))
                name = new
            if name not in seen:
                seen[name] = body
                hoisted.append(cte)
        with_.pop()
    if hoisted:
        outer = top.args.get("with_")
        existing = list(outer.expressions) if outer is not None else []
        top.set("with_", exp.With(expressions=hoisted + existing))
    return tree


def _rename_tables(scope: exp.Expression, old: str, new: str) -> None:
    for table in scope.find_all(exp.Table):
        if not table.db and table.name == old:
            table.set("this", exp.to_identifier(new))


# DuckDB types Spark lacks -> the Spark type that holds every value exactly
_TYPES = {exp.DataType.Type.UBIGINT: "DECIMAL(20, 0)", exp.DataType.Type.UINT: "BIGINT",
          exp.DataType.Type.USMALLINT: "INT", exp.DataType.Type.UTINYINT: "SMALLINT",
          exp.DataType.Type.INT128: "DECIMAL(38, 0)", exp.DataType.Type.UINT128: "DECIMAL(38, 0)"}


@rewrite("spark")
def portable_types(tree: exp.Expression) -> exp.Expression:
    """Casts to DuckDB types Spark has no equivalent for. Unsigned and 128-bit integers (a record's UBIGINT hash)
    become DECIMALs wide enough for every value (sqlglot would write UBIGINT, which Spark does not know, and a
    BIGINT would overflow). A cast to JSON keeps the JSON text as a STRING: sqlglot writes TO_JSON(x), which
    Spark reads as "serialise this struct" and refuses for a string."""
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.DataType) and node.this in _TYPES:
            return exp.DataType.build(_TYPES[node.this], dialect="spark")
        if isinstance(node, (exp.Cast, exp.TryCast)) and node.to.is_type(exp.DataType.Type.JSON):
            return exp.cast(node.this.copy(), "STRING")
        return node
    return tree.transform(swap)
