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

The batch path (`engine.monitor.drift.compute_drift_many`, several features over the same relations) reads
each relation with at most three statements and leaves the rest to small data:

* `values_query`: the numeric features' values (and the window), fetched through Arrow into numpy and sorted
  there (the KS / Wasserstein kernels, the exact quantile cut points and the bin counts all use the sorted
  sample);
* `grouped_counts_query`: value counts per (feature, window, value) of the categorical features, and of numeric
  features with few distinct values, for all those features in one statement (NULL counts the missing);
* `bin_stats_query`: the binned tests' aggregates over a small registered table of per-bin counts for every
  (feature, window), one statement for all features.

Internal column names are lower-case and distinct from each other, so DuckDB's case-insensitive identifiers
cannot collide; the caller's columns are only read through the quoted `value` and `window` names.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlglot import exp

from engine.sql import literal, parse, parse_expression, render, template


def as_query(source: exp.Expression | str) -> exp.Expression:
    """A query AST from an AST, a SQL query written by code, or a bare table name."""
    if isinstance(source, exp.Expression):
        return source
    return _parsed_query(source).copy()


@lru_cache(maxsize=256)
def _parsed_query(source: str) -> exp.Expression:
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
    return exp.Case(ifs=[exp.If(this=exp.func("isnan", exp.cast(column.copy(), "DOUBLE")), true=exp.Null())],
                    default=exp.cast(column, "DOUBLE"))


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
    return _bin_grid(columns, epsilon, exp.Literal.number(n_ref),
                     [("src", source(current, kind, value, window)), ("windows", windows_query(window)),
                      ("observed", observed), ("ref", ref)])


def _bin_grid(columns: dict[str, exp.Expression], epsilon: float, m: exp.Expression,
              ctes: list[tuple[str, exp.Expression]]) -> exp.Expression:
    """The bin table's aggregate per window, over the caller's CTEs `ctes`, which define `windows` (w, n_rows, n),
    `observed` (w, bin_key, o) and `ref` (bin_key, label, r): every bin of either side in every window, zeros
    included, smoothed (m: the reference size)."""
    smoothed = parse_expression(
        "SELECT g.*, __m__ AS m, (g.r / __m__ + __eps__) / (1 + g.k * __eps__) AS p, "
        "(g.o / NULLIF(g.n, 0) + __eps__) / (1 + g.k * __eps__) AS q, "
        "g.r / __m__ AS p_raw, g.o / NULLIF(g.n, 0) AS q_raw FROM grid AS g", m=m, eps=double(epsilon))
    final = parse("SELECT w, any_value(n) AS n, any_value(n_rows - n) AS n_missing, any_value(m) AS m, "
                  "count(*) AS bins FROM dist GROUP BY w ORDER BY w NULLS FIRST")
    final = final.select(*[exp.alias_(e, name) for name, e in columns.items()])
    for name, cte in ctes:
        final = final.with_(name, cte)
    return (final
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


def bin_table_query(bins_table: str, epsilon: float, columns: dict[str, exp.Expression],
                    window: str | None) -> exp.Expression:
    """`binned_query` over a table of counts per (w, bin_key) (bin_key NULL: missing values), with the reference
    bins as the parameters $ref_keys, $ref_labels, $ref_counts (aligned lists): the monitor plan's binned
    statistic. Without a window column there is exactly one window (0), even for an empty sample."""
    windows = ("SELECT 0 AS w, coalesce(sum(o), 0) AS n_rows, coalesce(sum(o) FILTER (WHERE bin_key IS NOT NULL), 0) "
               "AS n FROM __bins__")
    if window:
        windows = ("SELECT w, sum(o) AS n_rows, coalesce(sum(o) FILTER (WHERE bin_key IS NOT NULL), 0) AS n "
                   "FROM __bins__ GROUP BY w")
    bins = exp.to_table(bins_table)
    ref = parse("SELECT $ref_keys[t.i] AS bin_key, $ref_labels[t.i] AS label, $ref_counts[t.i] AS r "
                "FROM range(1, array_length($ref_counts) + 1) AS t(i)")
    observed = parse_expression("SELECT w, bin_key, o FROM __bins__ WHERE bin_key IS NOT NULL", bins=bins)
    return _bin_grid(columns, epsilon, parse("(SELECT sum(r) FROM ref)"),
                     [("windows", parse_expression(windows, bins=bins)), ("observed", observed), ("ref", ref)])


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


# ---- the batch path ------------------------------------------------------------------------------------------
BINS_RELATION = "__flywheel_drift_bins"  # the registered per-bin counts table that `bin_stats_query` reads


def _read(query: exp.Expression | str, cte: str = "s") -> exp.Expression:
    return as_query(query).subquery(cte)


def values_query(source_: exp.Expression | str, values: list[str], window: str | None) -> exp.Expression:
    """SELECT <window> AS w, CAST(<value_i> AS DOUBLE) AS v<i> ...: the numeric features' raw values (NULL and
    NaN are dropped in numpy after the Arrow fetch, where they cost nothing)."""
    w = exp.column(window, table="s", quoted=True) if window else exp.Literal.number(0)
    cols = [exp.alias_(w, "w")]
    cols += [exp.alias_(exp.cast(exp.column(v, table="s", quoted=True), "DOUBLE"), f"v{i}")
             for i, v in enumerate(values)]
    return exp.select(*cols, copy=False).from_(_read(source_), copy=False)


def grouped_counts_query(source_: exp.Expression | str, items: list[tuple[int, str]], kind: str,
                         window: str | None) -> exp.Expression:
    """Per (feature f, window w, value v): count c, for every (f, value column) in `items`, in one statement.

    `kind` "categorical" counts VARCHAR values, "numeric" DOUBLE values with NaN as NULL; v NULL is the missing.
    GROUP BY uses positions: the caller's relation may have columns named like the aliases. Without a window
    column w is the constant 0 and is left out of the key (a constant key column costs ~20 %)."""
    w = exp.column(window, table="s", quoted=True) if window else exp.Literal.number(0)
    branches = []
    for f, value in items:
        v = clean_value(kind, exp.column(value, table="s", quoted=True))
        branches.append(exp.select(exp.alias_(exp.Literal.number(f), "f"), exp.alias_(w.copy(), "w"),
                                   exp.alias_(v, "v"), exp.alias_(exp.Count(this=exp.Star()), "c"), copy=False)
                        .from_(_read(source_), copy=False)
                        .group_by(*([exp.Literal.number(2)] if window else []), exp.Literal.number(3), copy=False))
    query = branches[0]
    for b in branches[1:]:
        query = exp.union(query, b, distinct=False, copy=False)
    return query


def ordered_windows_query(source_: exp.Expression | str, window: str) -> exp.Expression:
    """The distinct windows of the current sample in result order (NULL first), with their row counts."""
    w = exp.column(window, table="s", quoted=True)
    return (exp.select(exp.alias_(w, "w"), "count(*) AS n_rows", copy=False).from_(_read(source_), copy=False)
            .group_by(exp.Literal.number(1), copy=False)
            .order_by(exp.Ordered(this=exp.Literal.number(1), nulls_first=True), copy=False))


def bin_stats_query(epsilon: float, columns: dict[str, exp.Expression],
                    relation: str = BINS_RELATION) -> exp.Expression:
    """Per (feature f, window wi): the number of bins and every requested aggregate over the bin table.

    `relation` holds one row per (f, wi, bin): label, current count o, reference count r, current size n and
    reference size m (all bins of a comparison present, zeros included), so the smoothing and the aggregates
    are exactly those of `binned_query`."""
    query = template(
        "WITH g AS (SELECT b.*, count(*) OVER (PARTITION BY b.f, b.wi) AS k FROM __rel__ AS b), "
        "dist AS (SELECT g.*, (g.r / g.m + __eps__) / (1 + g.k * __eps__) AS p, "
        "(g.o / NULLIF(g.n, 0) + __eps__) / (1 + g.k * __eps__) AS q, "
        "g.r / g.m AS p_raw, g.o / NULLIF(g.n, 0) AS q_raw FROM g) "
        "SELECT f, wi, count(*) AS bins FROM dist GROUP BY f, wi")
    eps = double(epsilon)

    def substitute(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name == "__eps__":
            return eps.copy()
        if isinstance(node, exp.Table) and node.name == "__rel__":
            return exp.to_table(relation, quoted=True).as_("b")
        return node

    query = query.transform(substitute, copy=False)
    return query.select(*[exp.alias_(e.copy(), name) for name, e in columns.items()], copy=False)


def fetch_arrow(con, query: exp.Expression):
    """Run one query and return its result as a pyarrow Table (zero-copy into numpy for numeric columns)."""
    import duckdb

    from engine.executor import user_sql_failure
    try:
        return con.sql(render(query)).to_arrow_table()
    except duckdb.Error as e:  # a feature expression failing on the data is the user's error (exit 2)
        failure = user_sql_failure(e, query, "a monitor feature")
        if failure is not None:
            raise failure from e
        raise


def fetch(con, query: exp.Expression) -> list[dict[str, Any]]:
    """Run one query and return its rows as dicts (the only execution in this package)."""
    cur = con.execute(render(query))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]

