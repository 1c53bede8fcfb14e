"""SQL (as sqlglot ASTs) for the drift statistics. Nothing here touches DuckDB except `fetch`.

Two query shapes cover every test, each computing its statistics for every window in one statement:

* the **bin table** (PSI, KL, Jensen-Shannon, Hellinger, chi-square, share change): per window and bin, the
  current count `o`, the reference count `r` (from the stored profile, inlined as literals), the smoothed
  proportions `p` (reference) and `q` (current) and the raw shares `p_raw`, `q_raw`; a test is an aggregate
  over its window's rows.
* the **merged ECDF** (Kolmogorov-Smirnov, Wasserstein): the reference sample and each window's sample sorted
  together; `f_ref` and `f_cur` are the two empirical CDFs at each value (ties included: a RANGE frame counts
  every equal value) and `gap` is the distance to the next value, so sup |F_ref - F_cur| and the integral of
  |F_ref - F_cur| are a max and a sum.

Internal column names are lower-case and distinct from each other, so DuckDB's case-insensitive identifiers
cannot collide; the caller's columns are only read through the quoted `value` and `window` names.
"""
from __future__ import annotations

from typing import Any

from sqlglot import exp

from engine.sql import literal, parse, parse_expression, render


def as_query(source: exp.Expression | str) -> exp.Expression:
    """A query AST from an AST, a SQL query written by code, or a bare table name."""
    if isinstance(source, exp.Expression):
        return source
    tree = parse(source)
    if isinstance(tree, exp.Column) and not tree.table:
        return exp.select("*").from_(exp.to_table(tree.name, quoted=True))
    return tree


def double(value: float) -> exp.Expression:
    """A DOUBLE literal that round-trips exactly (the shortest repr, parsed by DuckDB as a string)."""
    return exp.cast(exp.Literal.string(repr(float(value))), "DOUBLE")


def clean_value(kind: str, column: exp.Expression) -> exp.Expression:
    """The compared value: DOUBLE with NaN turned into NULL (numeric), or VARCHAR (categorical)."""
    if kind == "categorical":
        return exp.cast(column, "VARCHAR")
    return parse_expression("CASE WHEN isnan(CAST(__x__ AS DOUBLE)) THEN NULL ELSE CAST(__x__ AS DOUBLE) END",
                            x=column)


def source(query: exp.Expression, kind: str, value: str, window: str | None) -> exp.Expression:
    """SELECT <window> AS w, <clean value> AS v FROM (query): the one place the caller's columns are read."""
    col = exp.column(value, table="s", quoted=True)
    w = exp.column(window, table="s", quoted=True) if window else exp.Literal.number(0)
    return exp.select(exp.alias_(w, "w"), exp.alias_(clean_value(kind, col), "v")).from_(
        as_query(query).subquery("s"))


def windows_query(window: str | None) -> exp.Expression:
    """Sizes per window; without a window column there is exactly one window (0), even for an empty sample."""
    if window:
        return parse("SELECT w, count(*) AS n_rows, count(v) AS n FROM src GROUP BY w")
    return parse("SELECT 0 AS w, count(*) AS n_rows, count(v) AS n FROM src")


def bin_index(v: exp.Expression, cuts: tuple[float, ...], lo: int = 0, hi: int | None = None) -> exp.Expression:
    """The number of cut points <= v (numpy.digitize(v, cuts)), as a balanced CASE tree of depth log2(bins)."""
    hi = len(cuts) if hi is None else hi
    if lo == hi:
        return exp.Literal.number(lo)
    mid = (lo + hi) // 2
    below = exp.LT(this=v.copy(), expression=double(cuts[mid]))
    return exp.Case(ifs=[exp.If(this=below, true=bin_index(v, cuts, lo, mid))],
                    default=bin_index(v, cuts, mid + 1, hi))


def binned_query(current: exp.Expression, kind: str, keys: tuple, labels: tuple[str, ...], counts: tuple[int, ...],
                 cuts: tuple[float, ...], epsilon: float, columns: dict[str, exp.Expression],
                 value: str = "x", window: str | None = None) -> exp.Expression:
    """Per window: n, n_missing, the number of bins and every requested aggregate over the bin table."""
    n_ref = sum(counts)
    key = exp.column("v") if kind == "categorical" else bin_index(exp.column("v"), cuts)
    ref = exp.select(exp.alias_(exp.func("unnest", literal(list(keys))), "bin_key"),
                     exp.alias_(exp.func("unnest", literal(list(labels))), "label"),
                     exp.alias_(exp.func("unnest", literal(list(counts))), "r"))
    observed = (exp.select("w", exp.alias_(key, "bin_key"), "count(*) AS o").from_("src")
                .where("v IS NOT NULL").group_by("w", "bin_key"))
    smoothed = parse_expression(
        "SELECT g.*, __m__ AS m, (g.r / __m__ + __eps__) / (1 + g.k * __eps__) AS p, "
        "(g.o / NULLIF(g.n, 0) + __eps__) / (1 + g.k * __eps__) AS q, "
        "g.r / __m__ AS p_raw, g.o / NULLIF(g.n, 0) AS q_raw FROM grid AS g",
        m=exp.Literal.number(n_ref), eps=double(epsilon))
    final = parse("SELECT w, any_value(n) AS n, any_value(n_rows - n) AS n_missing, count(*) AS bins FROM dist "
                  "GROUP BY w ORDER BY w NULLS FIRST")
    final = final.select(*[exp.alias_(e, name) for name, e in columns.items()])
    return (final
            .with_("src", source(current, kind, value, window))
            .with_("windows", windows_query(window))
            .with_("observed", observed)
            .with_("ref", ref)
            .with_("bin_keys", parse("SELECT w.w, r.bin_key FROM windows AS w CROSS JOIN ref AS r "
                                     "UNION SELECT o.w, o.bin_key FROM observed AS o"))
            .with_("grid", parse(
                "SELECT k.w, k.bin_key, coalesce(r.label, CAST(k.bin_key AS VARCHAR)) AS label, "
                "coalesce(o.o, 0) AS o, coalesce(r.r, 0) AS r, w.n, w.n_rows, "
                "count(*) OVER (PARTITION BY k.w) AS k "
                "FROM bin_keys AS k JOIN windows AS w ON k.w IS NOT DISTINCT FROM w.w "
                "LEFT JOIN observed AS o ON k.w IS NOT DISTINCT FROM o.w AND k.bin_key = o.bin_key "
                "LEFT JOIN ref AS r ON k.bin_key = r.bin_key"))
            .with_("dist", smoothed))


def ecdf_query(current: exp.Expression, reference: exp.Expression, columns: dict[str, exp.Expression],
               value: str = "x", window: str | None = None, value_counts: bool = False) -> exp.Expression:
    """Per window: n, n_missing, the reference size m and std, and aggregates over the merged ECDF table.

    The reference rows are repeated for each non-empty window and sorted with it; the window function's
    RANGE frame gives each value the counts of all values <= it on both sides (F is right-continuous, so ties
    are handled). Partition totals stand in for n and m, so no join touches the sorted rows.
    `value_counts=True` first reduces the merged rows to (value, count per side): the same numbers, much
    faster when values repeat a lot (integers, rounded values), slower for continuous data."""
    partition = "PARTITION BY w" if window else ""  # no partition at all is faster for the single-window case
    if value_counts:
        rows, cur, ref, frame = "counted", "c_cur", "c_ref", "ROWS"
    else:
        rows, cur, ref, frame = "merged", "is_cur", "1 - is_cur", "RANGE"
    cdf = parse(
        f"SELECT w, sum({cur}) OVER upto / sum({cur}) OVER whole AS f_cur, "
        f"sum({ref}) OVER upto / sum({ref}) OVER whole AS f_ref FROM {rows} "
        f"WINDOW whole AS ({partition}), "
        f"upto AS ({partition} ORDER BY v {frame} BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)")
    if any(c.name == "gap" for e in columns.values() for c in e.find_all(exp.Column)):
        cdf = cdf.select(parse(f"SELECT lead(v) OVER ({partition} ORDER BY v) - v AS gap").expressions[0])
    agg = parse("SELECT w FROM cdf GROUP BY w").select(*[exp.alias_(e, name) for name, e in columns.items()])
    final = parse("SELECT w.w, w.n, w.n_rows - w.n AS n_missing, s.m, s.sd AS ref_std FROM windows AS w "
                  "CROSS JOIN ref_stats AS s LEFT JOIN agg AS a ON w.w IS NOT DISTINCT FROM a.w "
                  "ORDER BY w.w NULLS FIRST")
    final = final.select(*[exp.column(name, table="a") for name in columns])
    query = (final
             .with_("src", source(current, "numeric", value, window))
             .with_("ref", exp.select("v").from_(source(reference, "numeric", value, None).subquery("r"))
                    .where("v IS NOT NULL"))
             .with_("ref_stats", parse("SELECT count(*) AS m, stddev_pop(v) AS sd FROM ref"))
             .with_("windows", windows_query(window))
             .with_("merged", parse(
                 "SELECT w, v, 1 AS is_cur FROM src WHERE v IS NOT NULL "
                 "UNION ALL SELECT w.w, r.v, 0 AS is_cur FROM windows AS w CROSS JOIN ref AS r WHERE w.n > 0")))
    if value_counts:
        query = query.with_("counted", parse("SELECT w, v, sum(is_cur) AS c_cur, count(*) - sum(is_cur) AS c_ref "
                                             "FROM merged GROUP BY w, v"))
    return query.with_("cdf", cdf).with_("agg", agg)


def fetch(con, query: exp.Expression) -> list[dict[str, Any]]:
    """Run one query and return its rows as dicts (the only execution in this package)."""
    cur = con.execute(render(query))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]

