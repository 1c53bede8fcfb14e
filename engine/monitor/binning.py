"""The reference side of the binned drift tests, fitted once and kept as plain data.

`ReferenceProfile` holds what the current side needs: for a numeric feature the cut points and the reference
count in each bin (plus mean and population standard deviation); for a categorical feature the reference
count of each category. `to_dict()` / `from_dict()` round-trip it through JSON, so the monitor can store it in a
table and compare every new window against it without rescanning the reference.

Missing values (NULL, and NaN for numeric features) are not part of either distribution; they are counted in
`n_missing`.

Fitting a numeric feature reads its reference values into numpy (Arrow, zero-copy) and sorts them once
(`Sample`): the quantile cut points are then `quantiles()`, which is numpy.quantile's linear method step for
step (bitwise equal; DuckDB's quantile_cont interpolates differently and is off by an ulp now and then, and at
~46 ms per 1M values it is slower than fetching and sorting, ~12 ms), the bin counts are binary searches of the
cut points, and the same sorted sample serves the KS / Wasserstein tests. Categorical features are counted in
SQL (GROUP BY). `summary_query` / `counts_query` are the all-SQL form of the fit, kept for the portable plan.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from sqlglot import exp

from engine.monitor import queries as q
from engine.monitor.spec import Binning
from engine.monitor.stattests import Sample


@dataclass(frozen=True)
class ReferenceProfile:
    kind: str  # numeric | categorical
    n: int  # non-missing reference values
    n_missing: int
    keys: tuple  # bin keys: 0..len(cuts) for numeric, the category strings (sorted) for categorical
    labels: tuple[str, ...]  # how a bin reads in a report: "[0.5, 1.25)" or the category itself
    counts: tuple[int, ...]  # reference count per bin, aligned with keys
    binning: Binning | None = None  # numeric only: the declared binning
    cuts: tuple[float, ...] = ()  # numeric only: the cut points actually used (quantiles merged when equal)
    mean: float | None = None
    std: float | None = None  # population standard deviation (ddof = 0)
    n_distinct: int | None = None  # number of distinct values (exact since fits run on the sorted sample; older
    # profiles hold a HyperLogLog estimate): a hint for the KS plans

    @property
    def proportions(self) -> tuple[float, ...]:
        return tuple(c / self.n for c in self.counts)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "n": self.n, "n_missing": self.n_missing, "keys": list(self.keys),
                "labels": list(self.labels), "counts": list(self.counts),
                "binning": self.binning.to_dict() if self.binning else None, "cuts": list(self.cuts),
                "mean": self.mean, "std": self.std, "n_distinct": self.n_distinct}

    @classmethod
    def from_dict(cls, d: dict) -> ReferenceProfile:
        return cls(d["kind"], int(d["n"]), int(d["n_missing"]), tuple(d["keys"]), tuple(d["labels"]),
                   tuple(int(c) for c in d["counts"]), Binning.from_dict(d["binning"]) if d.get("binning") else None,
                   tuple(float(c) for c in d.get("cuts", ())), d.get("mean"), d.get("std"), d.get("n_distinct"))


def summary_query(reference: exp.Expression, kind: str, binning: Binning, value: str = "x") -> exp.Expression:
    """Counts, and for numeric features mean, population std and the quantile cut points of the reference."""
    src = q.source(reference, kind, value, None)
    if kind == "categorical":
        return exp.select("count(*) AS n_rows", "count(v) AS n").from_(src.subquery("src"))
    select = exp.select("count(*) AS n_rows", "count(v) AS n", "avg(v) AS mean", "stddev_pop(v) AS std",
                        "approx_count_distinct(v) AS n_distinct")
    if binning.method == "quantile" and binning.n_bins > 1:
        probs = exp.Array(expressions=[q.double(j / binning.n_bins) for j in range(1, binning.n_bins)])
        select = select.select(exp.alias_(exp.func("quantile_cont", exp.column("v"), probs), "cuts"))
    return select.from_(src.subquery("src"))


def counts_query(reference: exp.Expression, kind: str, cuts: tuple[float, ...], value: str = "x") -> exp.Expression:
    """The reference count per bin key (only non-empty bins appear)."""
    src = q.source(reference, kind, value, None)
    key = exp.column("v") if kind == "categorical" else q.bin_index(exp.column("v"), cuts)
    return (exp.select(exp.alias_(key, "bin_key"), "count(*) AS c").from_(src.subquery("src"))
            .where("v IS NOT NULL").group_by("bin_key").order_by("bin_key"))


def bin_labels(cuts: tuple[float, ...]) -> tuple[str, ...]:
    bounds = (-math.inf, *cuts, math.inf)
    return tuple(f"[{lo:.6g}, {hi:.6g})" for lo, hi in itertools.pairwise(bounds))


def quantiles(sample: Sample, probs: np.ndarray) -> np.ndarray:
    """numpy.quantile(values, probs) (method "linear") of the sorted sample, bitwise.

    The same steps as numpy's implementation: virtual index (n - 1) * q, its floor and the next index (both
    clipped to the sample), gamma = index - floor, and numpy's two-sided lerp."""
    probs = np.asarray(probs, dtype=np.float64)
    n = sample.n
    virtual = (n - 1) * probs
    prev = np.floor(virtual)
    nxt = prev + 1
    above = virtual >= n - 1
    prev[above], nxt[above] = n - 1, n - 1
    below = virtual < 0
    prev[below], nxt[below] = 0, 0
    gamma = virtual - np.where(above, -1.0, prev)  # numpy's previous index is -1 (the last) above the range
    a, b = sample.order_statistics(prev.astype(np.int64)), sample.order_statistics(nxt.astype(np.int64))
    diff = b - a
    out = a + diff * gamma
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    return out


def bin_counts(sample: Sample, cuts: tuple[float, ...]) -> np.ndarray:
    """Count per bin [c_(i-1), c_i) with open outer bins: numpy.bincount(numpy.digitize(values, cuts))."""
    below = sample.count_lt(np.asarray(cuts, dtype=np.float64))
    return np.diff(np.concatenate([[0], below, [sample.n]]))


def numeric_profile(sample: Sample, n_missing: int, binning: Binning) -> ReferenceProfile:
    """The profile of a numeric feature from its sorted reference sample."""
    if not sample.n:
        raise ValueError(f"the reference sample has no non-missing values ({n_missing} rows)")
    if binning.method == "fixed":
        cuts = tuple(float(e) for e in binning.edges)
    elif binning.n_bins > 1:
        probs = np.array([j / binning.n_bins for j in range(1, binning.n_bins)])
        cuts = tuple(float(c) for c in np.unique(quantiles(sample, probs)))
    else:
        cuts = ()
    mean, std = sample.mean_std()
    return ReferenceProfile("numeric", sample.n, n_missing, tuple(range(len(cuts) + 1)), bin_labels(cuts),
                            tuple(int(c) for c in bin_counts(sample, cuts)), binning, cuts, mean, std,
                            sample.n_distinct())


def categorical_profile(counts: dict[str, int], n_missing: int) -> ReferenceProfile:
    """The profile of a categorical feature from its reference count per category."""
    n = sum(counts.values())
    if not n:
        raise ValueError(f"the reference sample has no non-missing values ({n_missing} rows)")
    keys = tuple(sorted(counts))
    return ReferenceProfile("categorical", n, n_missing, keys, keys, tuple(int(counts[k]) for k in keys))
