"""The statements of one drift rule in the monitor plan: profile, binning and statistic, all in SQL.

A rule compares the materialised samples `fw_drift_current` / `fw_drift_reference` (columns `window_start`, `x`;
engine/monitor/drift_rules.py). What `flywheel compile monitor` prints for a rule named r:

* `drift.r.reference_rows`, `drift.r.stored_profile`: the reference profile stored for this exact reference
  (its key hashes the row count); when there is none, `drift.r.reference_summary` (sizes, mean, std, distinct
  values), `drift.r.cut_points` (quantile binning: numpy.quantile's linear method over the ranked sample, bitwise)
  and `drift.r.reference_bins` (count per bin or category) fit it and `drift.r.store_profile` stores it;
* `drift.r.current_bins`: the current sample's count per (window, bin) in a temporary table (NULL bin: missing),
  read by `drift.r.distribution` (the whole period, for reports) and, for binned tests, by `drift.r.statistic`;
* `drift.r.statistic`: one row per window. Binned tests (psi, kl, jensen_shannon, hellinger, chi_square,
  share_change) aggregate the bin table of `queries.bin_table_query` with the reference bins as parameters;
  ks / wasserstein aggregate the merged ECDF of the two samples (`queries.ecdf_query`, window functions), or
  `drift.r.statistic_counted` when the reference profile says values repeat a lot (the same numbers, faster);
* `drift.r.p_value` (ks and chi_square only): the Python step, scipy p-values from the statistic's rows.

Data-dependent values are bound parameters (`$cuts`, `$ref_keys`, `$ref_labels`, `$ref_counts`, `$profile_key`,
the periods), so the compiled text is the executed text. With reference kind `previous` the reference is the
window before (`$previous_window`), fitted per pair of windows and never stored; with a `sigma` threshold the
same statistic also runs on the reference's own windows (`drift.r.reference_window_bins`,
`drift.r.reference_windows`).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from engine.monitor import queries as q
from engine.monitor.spec import DriftSpec
from engine.monitor.stattests import TESTS, TestSQL
from engine.sql import PythonStep, Statement, param, parse, parse_expression, temp_table

CURRENT_TABLE, REFERENCE_TABLE = "fw_drift_current", "fw_drift_reference"
CURRENT_BINS, REFERENCE_BINS = "fw_drift_current_bins", "fw_drift_reference_bins"
WINDOW = "window_start"
P_VALUE_TESTS = ("ks", "chi_square")
FIT = "when the reference profile is not stored yet"
PAIR = "once per pair of consecutive windows (reference kind previous)"
COUNTED = "when the reference has at most one distinct value in ten (integer or rounded data)"


@dataclass(frozen=True)
class RulePlan:
    """A rule's statements by role (see the module docstring) and how the statistic's columns become results."""

    name: str
    spec: DriftSpec
    statements: dict[str, Statement]  # role -> statement, in plan order
    test: tuple[str, int, DriftSpec, TestSQL]  # for drift_plan.finish: (statement role, prefix index, spec, sql)
    p_value: PythonStep | None

    @property
    def quantile_cuts(self) -> bool:
        return "cut_points" in self.statements

    def steps(self) -> list[Statement | PythonStep]:
        return [*self.statements.values(), *([self.p_value] if self.p_value else [])]


def table(name: str) -> exp.Expression:
    return exp.select("*").from_(exp.to_table(name))


def compile_rule(name: str, spec: DriftSpec, reference_kind: str = "first_days", sigma: bool = False) -> RulePlan:
    """Pure: the statements of drift rule `name` (test `spec`) over the two materialised samples."""
    prefix = f"drift.{name}"
    sql = TESTS[spec.test].build(spec)
    columns = {f"t0__{f}": e for f, e in sql.columns.items()}
    binned = TESTS[spec.test].method == "binned"
    previous = reference_kind == "previous"
    if previous:
        def in_window(p: str) -> exp.Expression:
            return table(CURRENT_TABLE).where(exp.column(WINDOW).eq(param(p)))
        current, reference = in_window("window"), in_window("previous_window")
    else:
        current, reference = table(CURRENT_TABLE), table(REFERENCE_TABLE)
    fit_when = PAIR if previous else FIT

    def st(role: str, tree: exp.Expression, description: str, when: str = "") -> tuple[str, Statement]:
        params = tuple(sorted({p.name for p in tree.find_all(exp.Placeholder)}))
        return role, Statement(f"{prefix}.{role}", tree, params, description, when)

    out: list[tuple[str, Statement]] = []
    if previous:
        out.append(st("windows", parse(f"SELECT DISTINCT {WINDOW} AS w FROM {CURRENT_TABLE} ORDER BY w"),
                      "the current windows, each compared with the one before"))
    else:
        out.append(st("reference_rows", exp.select("count(*) AS n_rows").from_(REFERENCE_TABLE),
                      "reference rows (part of the stored profile's key)"))
        out.append(st("stored_profile", parse("SELECT profile FROM reference_profiles WHERE profile_key = "
                                              "$profile_key"), "the reference profile fitted earlier, if any"))
    out.append(st("reference_summary", summary_query(reference, spec.kind), "reference sizes, mean, std", fit_when))
    if spec.kind == "numeric" and spec.binning.method == "quantile" and spec.binning.n_bins > 1:
        out.append(st("cut_points", cut_points_query(reference, spec.binning.n_bins),
                      f"the reference's {spec.binning.n_bins}-quantiles (numpy.quantile, linear), distinct", fit_when))
    out.append(st("reference_bins", reference_bins_query(reference, spec.kind), "reference count per bin", fit_when))
    if not previous:
        out.append(st("store_profile", parse("INSERT INTO reference_profiles VALUES ($profile_key, $feature, "
                                             "$profile, $created_at)"), "store the fitted profile", FIT))
    window = None if previous else WINDOW
    out.append(st("current_bins", temp_table(CURRENT_BINS, bins_query(current, spec.kind, window)),
                  "current count per window and bin (NULL bin: missing values)", PAIR if previous else ""))
    if not previous:
        out.append(st("distribution", parse(f"SELECT bin_key, CAST(sum(o) AS BIGINT) AS c FROM {CURRENT_BINS} "
                                            "WHERE bin_key IS NOT NULL GROUP BY bin_key"),
                      "the whole current period in the reference's bins (for reports)"))

    def statistic(bins_table: str, sample: exp.Expression, win: str | None) -> exp.Expression:
        if binned:
            return q.bin_table_query(bins_table, spec.epsilon, columns, win)
        return q.ecdf_query(sample, reference, columns, "x", win)

    description = f"{spec.test} per window"
    if binned:
        out.append(st("statistic", statistic(CURRENT_BINS, current, window), description + " over the bins",
                      PAIR if previous else ""))
    else:  # the same numbers; counting equal values first is much faster when values repeat a lot
        out.append(st("statistic", statistic(CURRENT_BINS, current, window), description + " over the merged ECDF",
                      (PAIR + ", " if previous else "") + "when the reference has more than one distinct value in "
                      "ten"))
        out.append(st("statistic_counted", q.ecdf_query(current, reference, columns, "x", window, value_counts=True),
                      description + " over the merged ECDF of (value, count) pairs",
                      (PAIR + ", " if previous else "") + COUNTED))
    if sigma and not previous:
        if binned:
            out.append(st("reference_window_bins", temp_table(REFERENCE_BINS, bins_query(reference, spec.kind,
                                                                                          WINDOW)),
                          "reference count per window and bin (for the sigma bound)"))
        out.append(st("reference_windows", statistic(REFERENCE_BINS, reference, WINDOW),
                      f"{spec.test} of each reference window against the whole reference (the sigma bound)"))
    p_value = None
    if spec.test in P_VALUE_TESTS:
        p_value = PythonStep(f"{prefix}.p_value", f"{spec.test} p-values from the statistic's rows (scipy)",
                             PAIR if previous else "")
    return RulePlan(name, spec, dict(out), ("statistic", 0, spec, sql), p_value)


# ---- the queries -----------------------------------------------------------------------------------------------
def summary_query(reference: exp.Expression, kind: str) -> exp.Expression:
    """n_rows, n (non-missing) and, for numeric features, mean, population std and the distinct values."""
    src = q.source(reference, kind, "x", None).subquery("src")
    if kind == "categorical":
        return exp.select("count(*) AS n_rows", "count(v) AS n").from_(src)
    return exp.select("count(*) AS n_rows", "count(v) AS n", "avg(v) AS mean", "stddev_pop(v) AS std",
                      "count(DISTINCT v) AS n_distinct").from_(src)


def cut_points_query(reference: exp.Expression, n_bins: int) -> exp.Expression:
    """The distinct j/n_bins-quantiles (j = 1 .. n_bins - 1) of the non-missing values, ascending: numpy.quantile's
    linear method step for step (virtual index (n - 1) q, its floor and the next rank, both clipped to the sample;
    numpy's two-sided lerp), so the cut points are bitwise those of the numpy path (`binning.quantiles`)."""
    return parse_expression(
        "WITH ref AS (SELECT v FROM __src__ AS s WHERE v IS NOT NULL), "
        "size AS (SELECT count(*) AS n FROM ref), "
        "pos AS (SELECT s.n, CAST(s.n - 1 AS DOUBLE) * (CAST(t.j AS DOUBLE) / __bins__) AS virtual "
        "FROM range(1, __bins__) AS t(j) CROSS JOIN size AS s WHERE s.n > 0), "
        "idx AS (SELECT CASE WHEN virtual >= n - 1 THEN n - 1 ELSE CAST(floor(virtual) AS BIGINT) END AS lo, "
        "CASE WHEN virtual >= n - 1 THEN n - 1 ELSE CAST(floor(virtual) AS BIGINT) + 1 END AS hi, "
        "CASE WHEN virtual >= n - 1 THEN virtual + 1 ELSE virtual - floor(virtual) END AS gamma FROM pos), "
        "ranked AS (SELECT v, row_number() OVER (ORDER BY v) - 1 AS k FROM ref), "
        "qs AS (SELECT CASE WHEN i.gamma >= 0.5 THEN b.v - (b.v - a.v) * (1 - i.gamma) "
        "ELSE a.v + (b.v - a.v) * i.gamma END AS cut "
        "FROM idx AS i JOIN ranked AS a ON a.k = i.lo JOIN ranked AS b ON b.k = i.hi) "
        "SELECT DISTINCT cut FROM qs ORDER BY cut",
        src=q.source(reference, "numeric", "x", None).subquery("src"), bins=exp.Literal.number(n_bins))


def bin_key(kind: str) -> exp.Expression:
    """A value's bin: the category, or the number of cut points <= v (numpy.digitize(v, $cuts)); NULL if missing."""
    if kind == "categorical":
        return exp.column("v")
    return parse("CASE WHEN v IS NULL THEN NULL "
                 "ELSE array_length(list_filter(CAST($cuts AS DOUBLE[]), lambda c: c <= v)) END")


def reference_bins_query(reference: exp.Expression, kind: str) -> exp.Expression:
    """The reference's count per bin key (non-empty bins only)."""
    return (exp.select(exp.alias_(bin_key(kind), "bin_key"), "count(*) AS c")
            .from_(q.source(reference, kind, "x", None).subquery("src"))
            .where("v IS NOT NULL").group_by(exp.Literal.number(1)).order_by(exp.Literal.number(1)))


def bins_query(sample: exp.Expression, kind: str, window: str | None) -> exp.Expression:
    """Count o per (window w, bin_key) of a sample; missing values count under bin_key NULL."""
    return (exp.select("w", exp.alias_(bin_key(kind), "bin_key"), "count(*) AS o")
            .from_(q.source(sample, kind, "x", window).subquery("src"))
            .group_by(exp.Literal.number(1), exp.Literal.number(2)))
