"""Drift test kinds, registered as ("drift_test", name). A test is an aggregate query; its threshold is config.

Binned tests aggregate over the bin table of `queries.binned_query` (per window and bin: smoothed proportions
p = reference, q = current; raw shares p_raw, q_raw; counts o = current, r = reference; n = current size).
ECDF tests aggregate over the merged ECDF of `queries.ecdf_query` (f_ref, f_cur, gap). Each kind returns its
SQL aggregates and a `finish` step that turns the aggregated row into the result (p-values are computed there,
in Python, because DuckDB has no chi-square or Kolmogorov distribution function).

Conventions for zero proportions (only reachable with epsilon = 0): 0 * log 0 = 0; a term p log(p / 0) with
p > 0 is +infinity, as in scipy.stats.entropy.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from engine import registry
from engine.monitor.pvalues import chi2_sf, ks_2samp_pvalue
from engine.monitor.queries import double
from engine.monitor.spec import KINDS, DriftSpec
from engine.sql import parse_expression

BINNING = {
    "binning": {"enum": ["quantile", "fixed"], "description": "numeric bins: reference quantiles or fixed edges"},
    "n_bins": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "quantile bins (default 10)"},
    "edges": {"type": "array", "items": {"type": "number"}, "description": "cut points for binning: fixed"},
}
EPSILON = {"epsilon": {"type": "number", "minimum": 0, "description": "added to every bin proportion, then "
                       "renormalised (default 1e-4)"}}
LOG_BASE = {"log_base": {"anyOf": [{"const": "e"}, {"type": "number", "exclusiveMinimum": 1}]}}
COMMON = {"test": {"type": "string"}, "kind": {"enum": list(KINDS)}}
INF = exp.cast(exp.Literal.string("inf"), "DOUBLE")


@dataclass(frozen=True)
class TestSQL:
    columns: dict[str, exp.Expression]  # field -> aggregate over the window's rows
    finish: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]  # (fields, window row) -> result fields


@dataclass(frozen=True)
class StatTest:
    name: str
    method: str  # binned | ecdf
    kinds: tuple[str, ...]
    default_log_base: float
    build: Callable[[DriftSpec], TestSQL]


TESTS: dict[str, StatTest] = {}


def drift_test(name: str, method: str, kinds: tuple[str, ...], properties: dict,
               default_log_base: float = math.e) -> Callable:
    """Register a drift test kind with the JSON Schema of its config block (common keys + its options)."""
    schema = {"type": "object", "additionalProperties": False, "required": ["test"],
              "properties": {**COMMON, **properties}}

    def decorator(fn: Callable[[DriftSpec], TestSQL]) -> Callable:
        registry.register("drift_test", name, schema)(fn)
        TESTS[name] = StatTest(name, method, kinds, default_log_base, fn)
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
    "enum": ["current_to_reference", "reference_to_current"],
    "description": "KL(current || reference) (default) or KL(reference || current)"}})
def kl(spec: DriftSpec) -> TestSQL:
    """Kullback-Leibler divergence of the binned distributions, by default KL(current || reference).

    sum of q * log(q / p): the information lost when the reference p stands in for the current q. 0 means
    identical; not symmetric and unbounded (use PSI or Jensen-Shannon for a symmetric measure)."""
    a, b = ("q", "p") if spec.option("direction", "current_to_reference") == "current_to_reference" else ("p", "q")
    term = f"CASE WHEN {a} = 0 THEN 0 WHEN {b} = 0 THEN __inf__ ELSE {a} * ln({a} / {b}) END"
    return TestSQL({"statistic": _sql(f"sum({term}) / __lnb__", spec)}, _statistic)


@drift_test("jensen_shannon", "binned", KINDS, {**BINNING, **EPSILON, **LOG_BASE}, default_log_base=2.0)
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
    "enum": ["contingency", "goodness_of_fit"],
    "description": "contingency (default): homogeneity of the two samples' counts; goodness_of_fit: current "
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
    method = spec.option("method", "contingency")
    if method == "contingency":
        term = ("CASE WHEN r + o = 0 THEN 0 ELSE "
                "(r - m * (r + o) / (m + n)) * (r - m * (r + o) / (m + n)) / (m * (r + o) / (m + n)) + "
                "(o - n * (r + o) / (m + n)) * (o - n * (r + o) / (m + n)) / (NULLIF(n, 0) * (r + o) / (m + n)) END")
        dof = _sql("count(*) FILTER (WHERE r + o > 0) - 1")
    else:
        term = ("CASE WHEN p = 0 AND o = 0 THEN 0 WHEN p = 0 THEN __inf__ "
                "ELSE (o - n * p) * (o - n * p) / (n * p) END")
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
    change = "abs(q_raw - p_raw) DESC, label"
    return TestSQL({"statistic": _sql("max(abs(q_raw - p_raw))"),
                    "category": _sql(f"first(label ORDER BY {change})"),
                    "reference_share": _sql(f"first(p_raw ORDER BY {change})"),
                    "current_share": _sql(f"first(q_raw ORDER BY {change})")},
                   lambda f, row: {"p_value": None, **f})


@drift_test("ks", "ecdf", ("numeric",), {"method": {
    "enum": ["auto", "exact", "asymp"],
    "description": "p-value method, as scipy.stats.ks_2samp: auto = exact when both samples <= 10,000"}})
def ks(spec: DriftSpec) -> TestSQL:
    """Two-sample Kolmogorov-Smirnov: D = max |F_ref(x) - F_cur(x)| over all values, with its p-value.

    D is the largest vertical gap between the two empirical CDFs (0 = identical samples, 1 = disjoint).
    The two-sided p-value follows scipy.stats.ks_2samp (method 'auto': exact for small samples, else the
    Kolmogorov distribution at n = round(n1 n2 / (n1 + n2)))."""
    def finish(f: dict, row: dict) -> dict:
        if f["statistic"] is None:
            return {"statistic": None, "p_value": None}
        p, method = ks_2samp_pvalue(f["statistic"], int(row["m"]), int(row["n"]), spec.option("method", "auto"))
        return {"statistic": f["statistic"], "p_value": p, "method": method}

    return TestSQL({"statistic": _sql("max(abs(f_ref - f_cur))")}, finish)


@drift_test("wasserstein", "ecdf", ("numeric",), {"normalise": {
    "type": "boolean", "description": "divide by the reference standard deviation (default true)"}})
def wasserstein(spec: DriftSpec) -> TestSQL:
    """Wasserstein-1 (earth mover's) distance divided by the reference's population standard deviation.

    The area between the two empirical CDFs, integral of |F_ref(x) - F_cur(x)| dx
    (scipy.stats.wasserstein_distance), in units of the reference's spread: 0.1 means the mass moved a tenth
    of a standard deviation on average. Undefined (null) when the reference is constant; `distance` is the
    raw value."""
    normalise = spec.option("normalise", True)

    def finish(f: dict, row: dict) -> dict:
        d, sd = f["distance"], row["ref_std"]
        stat = d if not normalise or d is None else (d / sd if sd else None)
        return {"statistic": stat, "p_value": None, "distance": d, "reference_std": sd}

    return TestSQL({"distance": _sql("sum(abs(f_ref - f_cur) * coalesce(gap, 0))")}, finish)
