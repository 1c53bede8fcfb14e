"""Rewrites of DuckDB-dialect trees for Spark SQL used by the drift statements (engine/monitor/rule_plan.py,
queries.py): integer ranges, list parameters read by position, and several UNNESTs in one SELECT. One function
per difference (engine/dialects/__init__.py says how they are used); each is run on both engines by
tests/parity/test_drift_parity.py."""
from __future__ import annotations

from sqlglot import exp

from engine.dialects.rewrites import NotPortable, rewrite


@rewrite("spark")
def range_tables(tree: exp.Expression) -> exp.Expression:
    """`FROM range(a, b) AS t(i)`: DuckDB's integer table function. sqlglot renders it for Spark as
    `EXPLODE(SEQUENCE(a, b - 1), _u(t))`, which Spark cannot resolve (and SEQUENCE counts down when b - 1 < a,
    where range is empty). Spark has the same table function, `range(start, end[, step])` (end exclusive, empty
    when end <= start), so the call is kept as it is. `generate_series` (end inclusive) becomes range(a, b + 1).
    Spark names range's column `id` and DuckDB `range`: without a column alias the DuckDB name is given."""
    def swap(node: exp.Expression) -> exp.Expression:
        if not (isinstance(node, exp.Table) and isinstance(node.this, exp.GenerateSeries)):
            return node
        series = node.this
        start, end, step = series.args.get("start"), series.args.get("end"), series.args.get("step")
        if not series.args.get("is_end_exclusive"):
            end = exp.Add(this=exp.paren(end.copy()), expression=exp.Literal.number(1))
        if start is None or end is None:
            raise NotPortable("range() without a start and an end")
        args = [start.copy(), end.copy()] + ([step.copy()] if step is not None else [])
        alias = node.args.get("alias")
        if alias is None:
            alias = exp.TableAlias(this=exp.to_identifier("range"), columns=[exp.to_identifier("range")])
        elif not alias.columns:
            alias = alias.copy()
            alias.set("columns", [exp.to_identifier("range")])
        return exp.Table(this=exp.Anonymous(this="range", expressions=args), alias=alias.copy())
    return tree.transform(swap)


@rewrite("spark")
def list_parameters_by_position(tree: exp.Expression) -> exp.Expression:
    """`$list[i]`: DuckDB lists are 1-based and an index out of range (or 0) reads NULL. sqlglot shifts the index
    to Spark's 0-based `arr[i]` only for arrays whose type it knows, never for a bound parameter, and Spark (ANSI)
    fails on an index out of range. `try_element_at(list, nullif(i, 0))` is 1-based, NULL out of range and
    NULL for 0, as DuckDB (negative indices count from the end in both)."""
    def swap(node: exp.Expression) -> exp.Expression:
        if not (isinstance(node, exp.Bracket) and isinstance(node.this, exp.Placeholder)):
            return node
        index = node.expressions
        if len(index) != 1 or isinstance(index[0], exp.Slice):
            raise NotPortable(f"list parameter ${node.this.name} read by a slice or several indices")
        position = exp.cast(exp.func("nullif", index[0].copy(), exp.Literal.number(0)), "INT")  # Spark wants INT
        return exp.Anonymous(this="try_element_at", expressions=[node.this.copy(), position])
    return tree.transform(swap)


def _list_of(node: exp.Expression) -> exp.Expression | None:
    """The list of `unnest(list)` in a select list (parsed as Explode; built in code as Unnest)."""
    if isinstance(node, exp.Explode):
        return node.this
    if isinstance(node, exp.Unnest) and len(node.expressions) == 1:
        return node.expressions[0]
    return None


def _unnested(projection: exp.Expression) -> tuple[exp.Expression, str] | None:
    if isinstance(projection, exp.Alias) and _list_of(projection.this) is not None:
        return _list_of(projection.this), projection.alias
    if _list_of(projection) is not None:  # exp.alias_ names an Unnest through its own alias
        alias = projection.args.get("alias") if isinstance(projection, exp.Unnest) else None
        return _list_of(projection), alias.name if alias is not None else ""
    return None


@rewrite("spark")
def zipped_unnests(tree: exp.Expression) -> exp.Expression:
    """Several `unnest(list)` in one SELECT: DuckDB zips them (row i holds the i-th element of every list, NULL
    past the end of a shorter one); Spark makes one generator the cross product of all (n x m rows), so every
    binned statistic over such a reference table would be wrong. One `inline(arrays_zip(l1, l2, ...)) AS (a1,
    a2, ...)` is DuckDB's zip (arrays_zip pads with NULL too; a NULL list is read as empty, as DuckDB does).
    The unnests must be named and next to each other in the select list (else NotPortable)."""
    def swap(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Select):
            return node
        found = [(i, _unnested(p)) for i, p in enumerate(node.expressions)]
        found = [(i, u) for i, u in found if u is not None]
        if len(found) < 2:
            return node
        positions = [i for i, _ in found]
        if positions != list(range(positions[0], positions[0] + len(positions))):
            raise NotPortable("several UNNESTs in one SELECT that are not next to each other")
        if any(not name for _, (_, name) in found):
            raise NotPortable("several UNNESTs in one SELECT, one without a name")
        lists = [exp.func("coalesce", e.copy(), exp.Array(expressions=[])) for _, (e, _) in found]
        zipped = exp.Aliases(this=exp.Anonymous(this="inline", expressions=[
            exp.Anonymous(this="arrays_zip", expressions=lists)]),
            expressions=[exp.to_identifier(name) for _, (_, name) in found])
        projections = list(node.expressions)
        projections[positions[0]:positions[-1] + 1] = [zipped]
        node.set("expressions", projections)
        return node
    return tree.transform(swap)
