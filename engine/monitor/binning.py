"""The reference side of the binned drift tests, fitted once and kept as plain data.

`ReferenceProfile` holds what the current side needs: for a numeric feature the cut points and the reference
count in each bin (plus mean and population standard deviation); for a categorical feature the reference
count of each category. `to_dict()` / `from_dict()` round-trip it through JSON, so the monitor can store it in a
table and compare every new window against it without rescanning the reference.

Missing values (NULL, and NaN for numeric features) are not part of either distribution; they are counted in
`n_missing`.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from sqlglot import exp

from engine.monitor import queries as q
from engine.monitor.spec import Binning


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
    n_distinct: int | None = None  # approximate number of distinct values (HyperLogLog): a hint for KS plans

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


def fit_reference(con, reference, kind: str, binning: Binning | None = None, value: str = "x") -> ReferenceProfile:
    """Fit the reference profile of one feature: two scans of the reference (summary, then counts per bin).

    `reference` is a query (sqlglot AST or SQL text written by code) yielding the column `value`.
    Raises ValueError if the reference has no non-missing value (nothing to compare against)."""
    binning = binning or Binning()
    ref = q.as_query(reference)
    row = q.fetch(con, summary_query(ref, kind, binning, value))[0]
    if not row["n"]:
        raise ValueError(f"the reference sample has no non-missing values ({row['n_rows']} rows)")
    if kind == "categorical":
        cuts: tuple[float, ...] = ()
    elif binning.method == "fixed":
        cuts = tuple(binning.edges)
    else:
        cuts = tuple(sorted({float(c) for c in (row.get("cuts") or [])}))
    counts = {r["bin_key"]: int(r["c"]) for r in q.fetch(con, counts_query(ref, kind, cuts, value))}
    if kind == "categorical":
        keys = tuple(sorted(counts))
        return ReferenceProfile(kind, int(row["n"]), int(row["n_rows"] - row["n"]), keys, keys,
                                tuple(counts[k] for k in keys))
    keys = tuple(range(len(cuts) + 1))
    return ReferenceProfile(kind, int(row["n"]), int(row["n_rows"] - row["n"]), keys, bin_labels(cuts),
                            tuple(counts.get(k, 0) for k in keys), binning, cuts, row["mean"], row["std"],
                            int(row["n_distinct"]))
