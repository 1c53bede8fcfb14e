"""Spark rewrites of arithmetic: DuckDB's `/` and `//` read differently by Spark (one function per difference,
each run on both engines by tests/parity/test_metric_kinds.py)."""
from __future__ import annotations

from sqlglot import exp

from engine.dialects.rewrites import NotPortable, bottom_up, rewrite

_INTEGER_COLUMNS = {"prompt_tokens", "completion_tokens", "repeat"}  # the scored row's integer columns


def _double(node: exp.Expression) -> exp.Expression:
    return exp.cast(exp.paren(node.copy()), "DOUBLE")


@rewrite("spark")
def ieee_division(tree: exp.Expression) -> exp.Expression:
    """a / b: DuckDB divides as DOUBLE (also integers and decimals) with IEEE results for a zero divisor (inf,
    -inf, NaN); Spark divides decimals as DECIMAL (rounded to 6 places) and fails on a zero divisor in ANSI
    mode. Spelled as a DOUBLE division with the zero divisor handled. (A divisor of -0.0 gives inf, not -inf.)"""
    def swap(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Div):
            return node
        a, b = _double(node.this), _double(node.expression)
        zero = exp.Literal.number(0)
        ieee = exp.Case(ifs=[
            exp.If(this=a.copy().is_(exp.null()), true=exp.null()),
            exp.If(this=exp.GT(this=a.copy(), expression=zero.copy()), true=exp.cast(exp.Literal.string("Infinity"), "DOUBLE")),
            exp.If(this=exp.LT(this=a.copy(), expression=zero.copy()), true=exp.cast(exp.Literal.string("-Infinity"), "DOUBLE"))],
            default=exp.cast(exp.Literal.string("NaN"), "DOUBLE"))
        return exp.Case(ifs=[exp.If(this=exp.EQ(this=b.copy(), expression=zero), true=ieee)],
                        default=exp.Div(this=a, expression=b))
    return bottom_up(tree, swap)


def _integer(node: exp.Expression) -> bool:
    if isinstance(node, exp.Paren):
        return _integer(node.this)
    if isinstance(node, exp.Literal):
        return not node.is_string and node.name.lstrip("-").isdigit()
    if isinstance(node, exp.Column):
        return node.name in _INTEGER_COLUMNS
    if isinstance(node, exp.Cast):
        return node.to.this in exp.DataType.INTEGER_TYPES
    if isinstance(node, (exp.Nullif, exp.Coalesce)):
        return _integer(node.this)
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Mod)):
        return _integer(node.this) and _integer(node.expression)
    return isinstance(node, exp.Length)


@rewrite("spark")
def integer_division(tree: exp.Expression) -> exp.Expression:
    """a // b: on integers both engines truncate toward zero (and fail on a zero divisor); on DOUBLEs DuckDB's //
    divides exactly (7.5 // 2 = 3.75) while Spark's DIV truncates. Kept where both operands are integers,
    refused otherwise."""
    for node in tree.find_all(exp.IntDiv):
        if not (_integer(node.this) and _integer(node.expression)):
            raise NotPortable(f"{node.sql(dialect='duckdb')}: // of non-integers divides exactly on DuckDB and truncates "
                              "on Spark; write / or cast both sides to an integer")
    return tree


@rewrite("spark")
def byte_length(tree: exp.Expression) -> exp.Expression:
    """strlen(s): DuckDB's byte length of the UTF-8 text; Spark calls it octet_length."""
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.lower() == "strlen":
            return exp.Anonymous(this="octet_length", expressions=node.expressions)
        return node
    return bottom_up(tree, swap)


_DOUBLE_COLUMNS = {"value", "latency_ms", "cost"}  # DOUBLE columns of the scored row that details print


@rewrite("spark")
def double_text(tree: exp.Expression) -> exp.Expression:
    """CAST(double AS VARCHAR): DuckDB prints the shortest form in positional notation below 1e16
    ('12345678.0'), Spark (Java) switches to exponents at 1e7 ('1.2345678E7'). Integral values below 1e15 are
    printed as DuckDB does; others still differ (README, "SQL on Spark")."""
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Cast) and node.to.this in (exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT) \
                and isinstance(node.this, exp.Column) and node.this.name in _DOUBLE_COLUMNS:
            x = node.this
            integral = exp.and_(exp.EQ(this=x.copy(), expression=exp.func("floor", x.copy())),
                                exp.LT(this=exp.func("abs", x.copy()), expression=exp.Literal.number("1e15")))
            fixed = exp.DPipe(this=exp.cast(exp.cast(x.copy(), "BIGINT"), "VARCHAR"),
                              expression=exp.Literal.string(".0"))
            return exp.Case(ifs=[exp.If(this=integral, true=fixed)], default=node)
        return node
    return bottom_up(tree, swap)


@rewrite("spark")
def double_average(tree: exp.Expression) -> exp.Expression:
    """avg(x): DuckDB averages every numeric type as DOUBLE; Spark averages a DECIMAL (a literal such as
    `CASE WHEN ok THEN 1.0 ELSE 0.0 END`) as a DECIMAL rounded to 4 more places (1/3 -> 0.33333, returned as
    a Decimal). Spelled avg(CAST(x AS DOUBLE)), as DuckDB computes it."""
    def swap(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Avg):
            return node
        arg = node.this
        if isinstance(arg, exp.Distinct):  # avg(DISTINCT x): distinct values first, as DuckDB does
            arg = exp.Distinct(expressions=[_double(e) for e in arg.expressions])
        elif not (isinstance(arg, exp.Cast) and arg.to.this == exp.DataType.Type.DOUBLE):
            arg = _double(arg)
        return exp.Avg(this=arg)
    return bottom_up(tree, swap)
