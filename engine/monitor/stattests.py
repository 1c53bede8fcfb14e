"""Drift test kinds, registered as ("drift_test", name). A test is an aggregate query; its threshold is config.

Binned tests aggregate over the bin table of `queries.binned_query` (per window and bin: smoothed proportions
p = reference, q = current; raw shares p_raw, q_raw; counts o = current, r = reference; n = current size).
ECDF tests aggregate over the merged ECDF of `queries.ecdf_query` (f_ref, f_cur, gap). Each kind returns its
SQL aggregates and a `finish` step that turns the aggregated row into the result (p-values are computed there,
in Python, because DuckDB has no chi-square or Kolmogorov distribution function).

Conventions for zero proportions (only reachable with epsilon = 0): 0 * log 0 = 0; a term p log(p / 0) with
p > 0 is +infinity, as in scipy.stats.entropy.

Whole-sample tests (ks, wasserstein) also carry a numpy `kernel` over two sorted `Sample`s; `compute_drift` uses
it, and the SQL aggregate is the portable plan (`compile_drift`, and the monitor's `rule_plan`). Why numpy here
(DESIGN principle 8: Python only where SQL is slow, and then vectorised): an exact KS or Wasserstein needs both samples
sorted. DuckDB's merged-ECDF window query sorts the union (~0.5 s of CPU per 1M + 1M continuous values), while
the samples cross to numpy zero-copy through Arrow (~4 ms per 1M doubles) and numpy sorts them with its
SIMD sort (~8 ms per 1M). The KS kernel then evaluates |F_ref - F_cur| exactly where it can exceed the best
value found so far (bounds on a coarse grid of checkpoints), not at all 2M points. Both kernels use the
definitions of scipy.stats.ks_2samp and scipy.stats.wasserstein_distance (F right-continuous, ties included)
and give bitwise the same D as scipy.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlglot import exp

from engine import registry
from engine.monitor.pvalues import chi2_sf, ks_2samp_pvalue
from engine.monitor.queries import double
from engine.monitor.spec import BINNING, DEFINITION, EPSILON, KINDS, TEST_TRAITS, DriftSpec, log_base
from engine.sql import parse_expression

LOG_BASE = log_base("e")
COMMON = {"test": {"type": "string"}, "kind": DEFINITION["properties"]["kind"]}
INF = exp.cast(exp.Literal.string("inf"), "DOUBLE")


class Sample:
    """One sample of a numeric feature, sorted ascending, without missing values (NULL / NaN).

    Either the raw values (`counts` None; equal values repeat) or the distinct values with their counts (from
    a SQL GROUP BY, for integer or rounded data). `count_le(t)` / `count_lt(t)` count the values <= t / < t for
    an array of thresholds t (vectorised binary search), so F(t) = count_le(t) / n with ties included."""

    __slots__ = ("_cum", "_moments", "counts", "n", "x")

    def __init__(self, x: np.ndarray, counts: np.ndarray | None = None):
        self.x = np.asarray(x, dtype=np.float64)
        self.counts = None if counts is None else np.asarray(counts, dtype=np.int64)
        self._moments: tuple[float | None, float | None] | None = None
        if self.counts is None:
            self._cum = None
            self.n = int(self.x.size)
        else:
            self._cum = np.concatenate([np.zeros(1, np.int64), np.cumsum(self.counts)])
            self.n = int(self._cum[-1])

    def _count(self, index: np.ndarray) -> np.ndarray:
        return index if self._cum is None else self._cum[index]

    def count_le(self, t: np.ndarray) -> np.ndarray:
        return self._count(np.searchsorted(self.x, t, "right"))

    def count_lt(self, t: np.ndarray) -> np.ndarray:
        return self._count(np.searchsorted(self.x, t, "left"))

    def order_statistics(self, k: np.ndarray) -> np.ndarray:
        """The values at 0-based positions `k` of the fully sorted sample (ties expanded)."""
        k = np.asarray(k, dtype=np.int64)
        return self.x[k] if self._cum is None else self.x[np.searchsorted(self._cum[1:], k, "right")]

    def weights(self) -> np.ndarray:
        return np.ones(self.x.size, np.int64) if self.counts is None else self.counts

    def n_distinct(self) -> int:
        if self.x.size == 0:
            return 0
        return 1 + int(np.count_nonzero(self.x[1:] != self.x[:-1]))

    def mean_std(self) -> tuple[float | None, float | None]:
        """Mean and population standard deviation (ddof = 0); None for an empty sample. Computed once."""
        if self._moments is None:
            if not self.n:
                self._moments = (None, None)
            elif self.counts is None:
                mean = float(np.mean(self.x))
                squares = 0.0
                for start in range(0, self.n, _BLOCK):  # blocks: no 8 MB temporary per million values
                    dev = self.x[start:start + _BLOCK] - mean
                    dev *= dev
                    squares += float(np.add.reduce(dev))  # not np.dot: OpenBLAS threads spin and burn CPU
                self._moments = (mean, float(np.sqrt(squares / self.n)))
            else:
                mean = float(np.add.reduce(self.x * self.counts) / self.n)
                dev = self.x - mean
                self._moments = (mean, float(np.sqrt(np.add.reduce(dev * dev * self.counts) / self.n)))
        return self._moments


_BLOCK = 1 << 15  # elements per block of the blocked reductions (fits in L2)
_KS_DENSE = 1 << 14  # evaluate |F_ref - F_cur| at every candidate value when there are at most this many
_KS_STRIDES = (128,)  # checkpoint stride of the first level (measured best for 1M + 1M continuous values: the
# candidates left are few; a coarser first level leaves most values open and gathering them costs more)
_KS_STRIDE = 16  # the stride of any further level (when many candidates are left)


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The concatenation of arange(lo[i], hi[i]) for all i, vectorised."""
    lengths = np.maximum(hi - lo, 0)
    total = int(lengths.sum())
    if not total:
        return np.empty(0, np.intp)
    ends = np.cumsum(lengths)
    return np.repeat(lo - (ends - lengths), lengths) + np.arange(total)


def ks_statistic(a: Sample, b: Sample) -> float:
    """D = max over all values x of |F_a(x) - F_b(x)| (F right-continuous), bitwise as scipy.stats.ks_2samp.

    The maximum lies at one of the values, but most values cannot hold it: the ECDFs are first evaluated
    exactly at checkpoints (every 128th value of each sample), which gives a lower bound L on D. Between two
    consecutive checkpoints t < t', F_a lies in [F_a(t), F_a(t'-)] and F_b in [F_b(t), F_b(t'-)], which bounds
    |F_a - F_b| there; only the values in intervals whose bound exceeds L stay candidates (typically a few
    thousand of 2M), and the search repeats on them (finer checkpoints if many are left, else every one).
    Rounding is monotone, so the float bounds hold for the float differences, and D is the same float as
    scipy's."""
    return _ks_search(a, b, a.x, b.x, 0.0, 0)


def _ks_search(a: Sample, b: Sample, pa: np.ndarray, pb: np.ndarray, best: float, level: int) -> float:
    """max(best, max |F_a - F_b| over the candidate values pa (of a) and pb (of b)), both sorted."""
    n1, n2 = a.n, b.n
    stride = _KS_STRIDES[level] if level < len(_KS_STRIDES) else _KS_STRIDE
    if pa.size + pb.size <= max(_KS_DENSE, 2 * stride):  # (also when a level would not shrink the set)
        points = np.concatenate([pa, pb])
        if points.size:
            best = max(best, float(np.max(np.abs(a.count_le(points) / n1 - b.count_le(points) / n2))))
        return best
    t = np.unique(np.concatenate([pa[::stride], pb[::stride]]))
    ia_le, ia_lt = np.searchsorted(a.x, t, "right"), np.searchsorted(a.x, t, "left")
    ib_le, ib_lt = np.searchsorted(b.x, t, "right"), np.searchsorted(b.x, t, "left")
    f1, f2 = a._count(ia_le) / n1, b._count(ib_le) / n2
    best = max(best, float(np.max(np.abs(f1 - f2))))
    # interval j is [t_j, t_(j+1)), the last one [t_last, +inf); no candidate lies below t_0, the smallest
    f1_hi = np.append(a._count(ia_lt[1:]) / n1, 1.0)
    f2_hi = np.append(b._count(ib_lt[1:]) / n2, 1.0)
    open_ = np.flatnonzero(np.maximum(f1_hi - f2, f2_hi - f1) > best)
    if not open_.size:
        return best
    # the candidates strictly inside the open intervals (a value equal to t_j was evaluated with t_j)
    if pa is a.x and pb is b.x:  # the first level: the positions in the samples are those just found
        ja_le, ja_lt, jb_le, jb_lt = ia_le, np.append(ia_lt[1:], pa.size), ib_le, np.append(ib_lt[1:], pb.size)
    else:
        ja_le, ja_lt = np.searchsorted(pa, t, "right"), np.append(np.searchsorted(pa, t[1:], "left"), pa.size)
        jb_le, jb_lt = np.searchsorted(pb, t, "right"), np.append(np.searchsorted(pb, t[1:], "left"), pb.size)
    qa, qb = pa[_ranges(ja_le[open_], ja_lt[open_])], pb[_ranges(jb_le[open_], jb_lt[open_])]
    # every checkpoint left the candidates, so each level shrinks them and the search ends
    return _ks_search(a, b, qa, qb, best, level + 1)


def wasserstein_distance(a: Sample, b: Sample) -> float:
    """Integral of |F_a - F_b| over the merged support, as scipy.stats.wasserstein_distance.

    The two sorted samples are merged linearly (b's values go after the equal values of a, at
    searchsorted(a, b, "right") + their rank); at each merged value the running counts of both sides give F_a
    and F_b, and the gap to the next value weights |F_a - F_b|. Inside a run of equal values the gap is 0, so
    the partial counts there do not matter, and the terms are those of scipy (the same sum)."""
    na, nb = a.x.size, b.x.size
    at_b = np.searchsorted(a.x, b.x, "right") + np.arange(nb)
    from_b = np.zeros(na + nb, bool)
    from_b[at_b] = True
    from_a = ~from_b
    merged = np.empty(na + nb)
    merged[at_b] = b.x
    merged[from_a] = a.x
    if a.counts is None:
        ca = np.cumsum(from_a[:-1])
    else:
        wa = np.zeros(na + nb, np.int64)
        wa[from_a] = a.counts
        ca = np.cumsum(wa[:-1])
    if b.counts is None:
        cb = np.cumsum(from_b[:-1])
    else:
        wb = np.zeros(na + nb, np.int64)
        wb[at_b] = b.counts
        cb = np.cumsum(wb[:-1])
    return float(np.sum(np.abs(ca / a.n - cb / b.n) * np.diff(merged)))


@dataclass(frozen=True)
class TestSQL:
    columns: dict[str, exp.Expression]  # field -> aggregate over the window's rows
    finish: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]  # (fields, window row) -> result fields
    kernel: Callable[[Sample, Sample], dict[str, Any]] | None = None  # ecdf tests: (reference, current) -> fields


@dataclass(frozen=True)
class StatTest:
    name: str
    method: str  # binned | ecdf
    kinds: tuple[str, ...]
    build: Callable[[DriftSpec], TestSQL]


TESTS: dict[str, StatTest] = {}


def drift_test(name: str, method: str, kinds: tuple[str, ...], properties: dict) -> Callable:
    """Register a drift test kind with the JSON Schema of its config block (common keys + its options, each
    option's `default` filled in by DriftSpec.from_dict)."""
    schema = {"type": "object", "additionalProperties": False, "required": ["test"],
              "properties": {**COMMON, **properties}}

    def decorator(fn: Callable[[DriftSpec], TestSQL]) -> Callable:
        registry.register("drift_test", name, schema)(fn)
        TESTS[name] = TEST_TRAITS[name] = StatTest(name, method, kinds, fn)
        return fn

    return decorator


def _sql(template: str, spec: DriftSpec | None = None, **subs: exp.Expression) -> exp.Expression:
    if spec is not None:
        subs["lnb"] = double(math.log(spec.log_base))
    return parse_expression(template, inf=INF, **subs)


def _statistic(fields: dict, row: dict) -> dict:
    return {"statistic": fields["statistic"], "p_value": None}


@drift_test("psi", "binned", KINDS, {**BINNING, **EPSILON, **LOG_BASE})
def psi(spec: DriftSpec) -> TestSQL:
    """Population Stability Index: sum over bins of (q - p) * log(q / p), current q vs reference p.

    0 means identical binned distributions; common rules of thumb read < 0.1 as stable and > 0.25 as a
    major shift. Symmetric: it is KL(q||p) + KL(p||q)."""
    term = "CASE WHEN p = q THEN 0 WHEN p = 0 OR q = 0 THEN __inf__ ELSE (q - p) * ln(q / p) END"
    return TestSQL({"statistic": _sql(f"sum({term}) / __lnb__", spec)}, _statistic)


@drift_test("kl", "binned", KINDS, {**BINNING, **EPSILON, **LOG_BASE, "direction": {
    "enum": ["current_to_reference", "reference_to_current"], "default": "current_to_reference",
    "description": "KL(current || reference) or KL(reference || current)"}})
def kl(spec: DriftSpec) -> TestSQL:
    """Kullback-Leibler divergence of the binned distributions, by default KL(current || reference).

    sum of q * log(q / p): the information lost when the reference p stands in for the current q. 0 means
    identical; not symmetric and unbounded (use PSI or Jensen-Shannon for a symmetric measure)."""
    a, b = ("q", "p") if spec.option("direction") == "current_to_reference" else ("p", "q")
    term = f"CASE WHEN {a} = 0 THEN 0 WHEN {b} = 0 THEN __inf__ ELSE {a} * ln({a} / {b}) END"
    return TestSQL({"statistic": _sql(f"sum({term}) / __lnb__", spec)}, _statistic)


@drift_test("jensen_shannon", "binned", KINDS, {**BINNING, **EPSILON, **log_base(2)})
def jensen_shannon(spec: DriftSpec) -> TestSQL:
    """Jensen-Shannon *distance* of the binned distributions (scipy.spatial.distance.jensenshannon).

    The square root of the JS divergence (KL(p||m) + KL(q||m)) / 2 with m = (p + q) / 2; log base 2 by
    default, which bounds it in [0, 1]. The divergence itself is reported as `divergence`."""
    half = "CASE WHEN __a__ = 0 THEN 0 ELSE __a__ * ln(__a__ / ((p + q) / 2)) END"
    divergence = _sql(f"sum({half.replace('__a__', 'p')} + {half.replace('__a__', 'q')}) / 2 / __lnb__", spec)
    return TestSQL({"divergence": divergence},
                   lambda f, row: {"statistic": None if f["divergence"] is None else
                                   math.sqrt(max(f["divergence"], 0.0)),
                                   "p_value": None, "divergence": f["divergence"]})


@drift_test("hellinger", "binned", KINDS, {**BINNING, **EPSILON})
def hellinger(spec: DriftSpec) -> TestSQL:
    """Hellinger distance of the binned distributions: sqrt(sum((sqrt(p) - sqrt(q))^2) / 2), in [0, 1].

    0 means identical, 1 means no overlap. Equals sqrt(1 - sum(sqrt(p * q)))."""
    return TestSQL({"statistic": _sql("sqrt(sum((sqrt(p) - sqrt(q)) * (sqrt(p) - sqrt(q))) / 2)")}, _statistic)


@drift_test("chi_square", "binned", KINDS, {**BINNING, **EPSILON, "method": {
    "enum": ["contingency", "goodness_of_fit"], "default": "contingency",
    "description": "contingency: homogeneity of the two samples' counts; goodness_of_fit: current "
                   "counts against the smoothed reference proportions"}})
def chi_square(spec: DriftSpec) -> TestSQL:
    """Pearson chi-square test that the current counts come from the reference's distribution, with p-value.

    method "contingency" (default) is the test of homogeneity of the 2 x k table [reference counts; current
    counts] over the categories seen on either side, scipy.stats.chi2_contingency(table, correction=False):
    expected counts come from the pooled proportions, so it needs no smoothing, is 0 for identical samples and
    counts the reference's own sampling noise; dof = k - 1. method "goodness_of_fit" treats the reference as
    exact: sum (o - e)^2 / e with e = n * p from the smoothed reference proportions,
    scipy.stats.chisquare(f_obs=o, f_exp=n * p); dof = bins - 1. p-value = Q(dof / 2, statistic / 2); with
    large samples even tiny shifts are significant."""
    method = spec.option("method")
    if method == "contingency":
        term = ("CASE WHEN r + o = 0 THEN 0 ELSE "
                "(r - m * (r + o) / (m + n)) * (r - m * (r + o) / (m + n)) / (m * (r + o) / (m + n)) + "
                "(o - n * (r + o) / (m + n)) * (o - n * (r + o) / (m + n)) / (NULLIF(n, 0) * (r + o) / (m + n)) END")
        dof = _sql("count(*) FILTER (WHERE r + o > 0) - 1")
    else:
        term = ("CASE WHEN p = 0 AND o = 0 THEN 0 WHEN p = 0 THEN __inf__ "
                "ELSE (o - n * p) * (o - n * p) / (NULLIF(n, 0) * p) END")  # n = 0: NULL, never x / 0 (Spark fails)
        dof = _sql("count(*) - 1")

    def finish(f: dict, row: dict) -> dict:
        stat, dof = f["statistic"], int(f["dof"])
        if stat is None or not row["n"]:
            return {"statistic": None, "p_value": None, "dof": dof, "method": method}
        return {"statistic": stat, "p_value": chi2_sf(stat, dof) if dof > 0 else 1.0, "dof": dof, "method": method}

    return TestSQL({"statistic": _sql(f"sum({term})"), "dof": dof}, finish)


@drift_test("share_change", "binned", KINDS, {**BINNING})
def share_change(spec: DriftSpec) -> TestSQL:
    """The largest absolute change of one category's share (raw, unsmoothed), naming that category.

    max over categories of |current share - reference share|, e.g. 0.12 when "refund" goes from 8 % to 20 %
    of requests. Ties are broken by the category's name. For numeric features the "categories" are bins."""
    # the row of the largest change, ties to the first label: arg_min over (-change, label), which both engines
    # have (DuckDB's first(x ORDER BY ...) has no Spark form); an empty window (no change) orders last
    change = "struct_pack(k := -coalesce(abs(q_raw - p_raw), -1), l := label)"
    return TestSQL({"statistic": _sql("max(abs(q_raw - p_raw))"),
                    "category": _sql(f"arg_min(label, {change})"),
                    "reference_share": _sql(f"arg_min(p_raw, {change})"),
                    "current_share": _sql(f"arg_min(q_raw, {change})")},
                   lambda f, row: {"p_value": None, **f})


@drift_test("ks", "ecdf", ("numeric",), {"method": {
    "enum": ["auto", "exact", "asymp"], "default": "auto",
    "description": "p-value method, as scipy.stats.ks_2samp: auto = exact when both samples <= 10,000"}})
def ks(spec: DriftSpec) -> TestSQL:
    """Two-sample Kolmogorov-Smirnov: D = max |F_ref(x) - F_cur(x)| over all values, with its p-value.

    D is the largest vertical gap between the two empirical CDFs (0 = identical samples, 1 = disjoint).
    The two-sided p-value follows scipy.stats.ks_2samp (method 'auto': exact for small samples, else the
    Kolmogorov distribution at n = round(n1 n2 / (n1 + n2)))."""
    def finish(f: dict, row: dict) -> dict:
        if f["statistic"] is None:
            return {"statistic": None, "p_value": None}
        p, method = ks_2samp_pvalue(f["statistic"], int(row["m"]), int(row["n"]), spec.option("method"))
        return {"statistic": f["statistic"], "p_value": p, "method": method}

    return TestSQL({"statistic": _sql("max(abs(f_ref - f_cur))")}, finish,
                   lambda ref, cur: {"statistic": ks_statistic(ref, cur)})


@drift_test("wasserstein", "ecdf", ("numeric",), {"normalise": {
    "type": "boolean", "default": True, "description": "divide by the reference standard deviation"}})
def wasserstein(spec: DriftSpec) -> TestSQL:
    """Wasserstein-1 (earth mover's) distance divided by the reference's population standard deviation.

    The area between the two empirical CDFs, integral of |F_ref(x) - F_cur(x)| dx
    (scipy.stats.wasserstein_distance), in units of the reference's spread: 0.1 means the mass moved a tenth
    of a standard deviation on average. Undefined (null) when the reference is constant; `distance` is the
    raw value."""
    normalise = spec.option("normalise")

    def finish(f: dict, row: dict) -> dict:
        d, sd = f["distance"], row["ref_std"]
        stat = d if not normalise or d is None else (d / sd if sd else None)
        return {"statistic": stat, "p_value": None, "distance": d, "reference_std": sd}

    return TestSQL({"distance": _sql("sum(abs(f_ref - f_cur) * coalesce(gap, 0))")}, finish,
                   lambda ref, cur: {"distance": wasserstein_distance(ref, cur)})
