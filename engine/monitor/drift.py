"""Drift between a reference and a current sample of features: compile, execute, finish.

    batch = compute_drift_many(con, {"latency_ms": [DriftSpec.from_dict({"test": "psi"}),
                                                    DriftSpec.from_dict({"test": "ks"})],
                                     "intent": [DriftSpec.from_dict({"test": "chi_square", "kind": "categorical"})]},
                               "SELECT day, latency_ms, intent FROM cur", reference="SELECT * FROM ref", window="day")
    batch.results["latency_ms"]   # one DriftResult per (test, window): statistic, p_value, sizes, details
    batch.profiles["intent"]      # the reference profiles used (fitted here unless passed in `profiles=`)

    profile = fit_reference(con, "SELECT x FROM ref", "numeric", Binning("quantile", 10))   # once; plain data
    results = compute_drift(con, specs, "SELECT day, x FROM cur", profile=profile, reference="SELECT x FROM ref",
                            window="day")                                                  # one feature

Binned tests (psi, kl, jensen_shannon, hellinger, chi_square, share_change) need only the stored
`ReferenceProfile`; whole-sample tests (ks, wasserstein) also need the reference sample itself (`reference`,
e.g. a stored reference table), since an exact ECDF comparison cannot be done from bins.

How it runs (`compile_drift_many` returns the statements, pure; `compute_drift_many` runs them):

1. Each relation is read by at most three statements for all features together: the numeric features' values
   (one SELECT, fetched through Arrow into numpy), value counts per (feature, window, value) of categorical
   features and of numeric features with few distinct values (one GROUP BY ... UNION ALL), and, with a window
   column, the list of windows.
2. numpy sorts each numeric sample (per window) once. From the sorted sample come the exact quantile cut points
   of a reference profile (numpy.quantile bitwise), the bin counts (binary search of the cut points) and the KS
   / Wasserstein statistics (the tests' numpy kernels, see `stattests`). This is the one step in Python, and it
   is vectorised: DESIGN principle 8 keeps Python off the hot path unless SQL is slow there, and an exact KS is a
   sort; DuckDB's merged-ECDF window query takes ~0.5 s of CPU per 1M + 1M continuous values where the Arrow
   fetch plus numpy's SIMD sort take ~25 ms. Numeric features with at most one distinct value in ten (integers,
   rounded values) are instead counted in SQL and sorted as (value, count) pairs.
3. Every binned test of every feature and window is one aggregate over a small table of per-bin counts
   (registered in DuckDB): one statement per smoothing epsilon, the same SQL as the single-feature plan.
4. p-values in Python, per window (`pvalues`).

`flywheel monitor` does not use this batch path: each drift rule there is a set of plan statements (profile, cut
points, bins and statistic in SQL; p-values the only Python step; engine/monitor/rule_plan.py), so that
`flywheel compile monitor` prints what runs and another engine can run it. This module stays the library's fast
path for many features at once, and the tests hold the two equal (tests/monitor/test_drift_rule_plan.py).

`compile_drift` is the all-SQL plan of one feature (one statement per test shape for every window; the merged
ECDF for KS / Wasserstein): the portable form (Spark) and a second implementation the tests hold equal;
`compute_drift(..., sql_only=True)` runs it.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from engine.monitor import queries as q
from engine.monitor.binning import ReferenceProfile, bin_counts, categorical_profile, numeric_profile  # noqa: F401
from engine.monitor.drift_plan import (  # noqa: F401  (the plans are part of this module's API)
    CompiledDrift,
    DriftBatch,
    DriftBatchPlan,
    DriftResult,
    FeaturePlan,
    _build,
    _check_profile,
    compile_drift,
    compile_drift_many,
    finish,
)
from engine.monitor.spec import Binning, DriftSpec
from engine.monitor.stattests import TESTS, Sample


def fit_reference(con, reference, kind: str, binning: Binning | None = None, value: str = "x") -> ReferenceProfile:
    """Fit the reference profile of one feature (`fit_references` for several at once).

    `reference` is a query (sqlglot AST or SQL text written by code) yielding the column `value`.
    Raises ValueError if the reference has no non-missing value (nothing to compare against)."""
    return fit_references(con, reference, {value: (kind, binning or Binning())})[value]


def compute_drift(con, specs: Sequence[DriftSpec], current, *, profile: ReferenceProfile | None = None,
                  reference=None, value: str = "x", window: str | None = None,
                  value_counts: bool | None = None, sql_only: bool = False) -> list[DriftResult]:
    """The drift tests of one feature (see the module docstring); `compute_drift_many` for several at once.

    `sql_only=True` runs the all-SQL plan of `compile_drift` instead (same results, slower for KS on continuous
    data). Binned tests need `profile`; ks / wasserstein need `reference`."""
    if sql_only:
        compiled = compile_drift(specs, current, profile=profile, reference=reference, value=value, window=window,
                                 value_counts=value_counts)
        rows = {name: q.fetch(con, stmt) for name, stmt in compiled.statements.items()}
        return finish(compiled, rows, profile.n if profile else None)
    for spec in specs:
        if TESTS[spec.test].method == "binned":
            _check_profile(spec, profile)
    batch = compute_drift_many(con, {value: specs}, current, reference=reference,
                               profiles={value: profile} if profile else None, window=window,
                               value_counts=value_counts)
    return batch.results[value]



def compute_drift_many(con, features: Mapping[str, Sequence[DriftSpec]], current, *, reference=None,
                       profiles: Mapping[str, ReferenceProfile] | None = None, window: str | None = None,
                       value_counts: bool | None = None) -> DriftBatch:
    """All drift tests of several features over the same current / reference relations (see the module
    docstring): compile (`compile_drift_many`), run each statement once on `con` (DuckDB), sort numeric samples
    in numpy, finish. Returns every feature's results and the profiles used (fitted ones included)."""
    plan = compile_drift_many(features, current, reference=reference, profiles=profiles, window=window,
                              value_counts=value_counts)
    return execute_drift_many(con, plan, profiles)


def fit_references(con, reference, features: Mapping[str, tuple[str, Binning | None]]) -> dict[str, ReferenceProfile]:
    """Fit the reference profiles of several features (column -> (kind, binning)) in one read of `reference`.

    Numeric features: the values are fetched through Arrow and sorted in numpy once (exact numpy.quantile cut
    points, bin counts by binary search); categorical features: counts per category in one SQL statement.
    Raises ValueError if a feature's reference has no non-missing value."""
    specs = {name: [DriftSpec("psi", kind, binning or Binning())] for name, (kind, binning) in features.items()}
    plan = compile_drift_many(specs, reference, reference=reference)
    statements = {k: v for k, v in plan.statements.items() if k.startswith("reference.")}
    plan = DriftBatchPlan(plan.features, None, statements, {})
    with _pool() as pool:
        samples, missing, categories = _load_side(con, plan, "reference", None, pool)
    return _fit(plan, samples, missing, categories)


# numpy threads sorting samples while DuckDB runs the next statement (numpy releases the GIL). With two cores
# or fewer DuckDB's own threads already use them all, and the extra thread only adds CPU time (~15 %).
WORKERS = 0 if (os.cpu_count() or 1) <= 2 else 2


class _Inline:
    """A stand-in for ThreadPoolExecutor that runs each task at once (WORKERS = 0)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future


def _pool():
    return ThreadPoolExecutor(max_workers=WORKERS) if WORKERS > 0 else _Inline()


def execute_drift_many(con, plan: DriftBatchPlan,
                       profiles: Mapping[str, ReferenceProfile] | None = None) -> DriftBatch:
    """Run a compiled batch on `con` and finish it (`profiles`: the ones passed to `compile_drift_many`)."""
    profiles = dict(profiles or {})
    with _pool() as pool:
        ref_samples, ref_missing, ref_categories = _load_side(con, plan, "reference", None, pool)
        profiles.update(_fit(plan, ref_samples, ref_missing, ref_categories))
        windows = None
        if plan.window:
            windows = q.fetch_arrow(con, plan.statements["current.windows"]).column("w").combine_chunks()
        cur_samples, cur_missing, cur_categories = _load_side(con, plan, "current", windows, pool)
    window_values = windows.to_pylist() if windows is not None else [0]
    n_windows = len(window_values)

    rows: dict[int, dict[str, list[dict]]] = {p.index: {} for p in plan.features}
    # ---- binned tests: the per-bin counts of every (feature, window), then one statement per epsilon
    bin_rows = _bin_table(plan, profiles, cur_samples, cur_categories, n_windows)
    binned: dict[str, dict[tuple[int, int], dict]] = {}
    if bin_rows is not None:
        con.register(q.BINS_RELATION, bin_rows)
        try:
            for stmt in plan.columns:
                binned[stmt] = {(int(r["f"]), int(r["wi"])): r for r in q.fetch(con, plan.statements[stmt])}
        finally:
            con.unregister(q.BINS_RELATION)
    for p in plan.features:
        profile = profiles.get(p.value)
        n_cur, miss = _sizes(p, cur_samples, cur_categories, cur_missing, n_windows)
        for i, stmt, j in p.binned:
            out = rows[p.index].setdefault(stmt, [{"w": window_values[wi], "n": n_cur[wi], "n_missing": miss[wi],
                                                   "m": profile.n} for wi in range(n_windows)])
            prefix = f"t{j}__"
            for wi in range(n_windows):
                row = binned[stmt].get((p.index, wi), {})
                out[wi]["bins"] = row.get("bins", 0)
                out[wi].update({f"t{i}__{k[len(prefix):]}": v for k, v in row.items() if k.startswith(prefix)})
        # ---- whole-sample tests: the numpy kernels on the sorted samples
        if p.ecdf:
            ref = ref_samples[p.index][0]
            ecdf_rows = [{"w": window_values[wi], "n": n_cur[wi], "n_missing": miss[wi], "m": ref.n,
                          "ref_std": ref.mean_std()[1]} for wi in range(n_windows)]
            for i, spec in enumerate(p.specs):
                sql = _build(spec)
                if sql.kernel is None:
                    continue
                for wi in range(n_windows):
                    cur = cur_samples[p.index][wi]
                    fields = sql.kernel(ref, cur) if cur.n and ref.n else dict.fromkeys(sql.columns)
                    ecdf_rows[wi].update({f"t{i}__{k}": v for k, v in fields.items()})
            rows[p.index]["ecdf"] = ecdf_rows

    results: dict[str, list[DriftResult]] = {}
    for p in plan.features:
        tests = tuple((next((stmt for i2, stmt, _ in p.binned if i2 == i), "ecdf"), i, spec, _build(spec))
                      for i, spec in enumerate(p.specs))
        profile = profiles.get(p.value)
        results[p.value] = finish(CompiledDrift({}, tests), rows[p.index], profile.n if profile else None)
    return DriftBatch(results, {p.value: profiles[p.value] for p in plan.features if p.value in profiles})


def _codes(table, windows) -> np.ndarray | None:
    """Each row's window position (in `windows` order), or None without a window column."""
    if windows is None:
        return None
    import pyarrow.compute as pc

    codes = pc.index_in(table.column("w"), value_set=windows, skip_nulls=False)
    return codes.to_numpy(zero_copy_only=False).astype(np.int64)


def _sorted_samples(values: np.ndarray, codes: np.ndarray | None, n_windows: int) -> tuple[list[Sample], np.ndarray]:
    """Split a fetched column by window, drop NULL / NaN and sort: a Sample and the missing count per window."""
    # NaN propagates through a sum, so a sum that is not NaN proves there is none (no mask to allocate)
    all_valid = not np.isnan(np.add.reduce(values))
    valid = None if all_valid else ~np.isnan(values)
    if all_valid and not values.flags.writeable:  # zero-copy from Arrow: sort a copy
        values = values.copy()
    if codes is None:
        kept = values if all_valid else values[valid]
        kept.sort()  # in place: `values` is this function's own array
        return [Sample(kept)], np.array([values.size - kept.size])
    n_rows = np.bincount(codes, minlength=n_windows)
    kept, kept_codes = (values, codes) if all_valid else (values[valid], codes[valid])
    sizes = np.bincount(kept_codes, minlength=n_windows)
    if n_windows == 1:
        kept.sort()
        return [Sample(kept)], n_rows - sizes
    small = kept_codes.astype(np.int16) if n_windows <= np.iinfo(np.int16).max else kept_codes
    grouped = kept[np.argsort(small, kind="stable")]  # 16-bit keys: numpy's stable sort is a radix sort
    ends = np.cumsum(sizes)
    samples = []
    for wi in range(n_windows):
        part = grouped[ends[wi] - sizes[wi]:ends[wi]]
        part.sort()
        samples.append(Sample(part))
    return samples, n_rows - sizes


def _counted_samples(values: np.ndarray, counts: np.ndarray, codes: np.ndarray | None,
                     n_windows: int) -> tuple[list[Sample], np.ndarray]:
    """(value, count) rows of one feature -> a Sample of distinct values with counts, and the missing count, per
    window (value NULL / NaN is the missing)."""
    codes = np.zeros(values.size, np.int64) if codes is None else codes
    missing = np.isnan(values)
    n_missing = np.bincount(codes[missing], weights=counts[missing], minlength=n_windows).astype(np.int64)
    values, counts, codes = values[~missing], counts[~missing], codes[~missing]
    order = np.lexsort((values, codes))
    values, counts, codes = values[order], counts[order], codes[order]
    bounds = np.searchsorted(codes, np.arange(n_windows + 1), "left")
    return [Sample(values[bounds[wi]:bounds[wi + 1]], counts[bounds[wi]:bounds[wi + 1]])
            for wi in range(n_windows)], n_missing


def _load_side(con, plan: DriftBatchPlan, side: str, windows, pool):
    """Run one side's statements: numeric Samples per feature and window (sorted in `pool`), missing counts, and
    the categorical counts per feature and window ({category: count}, with None the missing count)."""
    n_windows = 1 if windows is None else len(windows)
    samples: dict[int, Any] = {}
    missing: dict[int, np.ndarray] = {}
    categories: dict[int, list[dict]] = {}
    stmts = plan.statements
    if f"{side}.values" in stmts:
        table = q.fetch_arrow(con, stmts[f"{side}.values"])
        codes = _codes(table, windows)
        chosen = [p for p in plan.features if (side == "current" or p.needs_reference)
                  and p.kind == "numeric" and not p.counts]
        for i, p in enumerate(chosen):  # to_numpy joins the Arrow chunks into a new array (NULL -> NaN)
            samples[p.index] = pool.submit(_sorted_samples, table.column(f"v{i}").to_numpy(), codes, n_windows)
    if f"{side}.value_counts" in stmts:
        table = q.fetch_arrow(con, stmts[f"{side}.value_counts"])
        f = table.column("f").to_numpy()
        codes = _codes(table, windows)
        values, counts = table.column("v").to_numpy(), table.column("c").to_numpy()
        for p in plan.features:
            if p.counts and (side == "current" or p.needs_reference):
                mine = f == p.index
                samples[p.index] = pool.submit(_counted_samples, values[mine], counts[mine],
                                               None if codes is None else codes[mine], n_windows)
    if f"{side}.categories" in stmts:
        table = q.fetch_arrow(con, stmts[f"{side}.categories"])
        codes = _codes(table, windows)
        fs, vs, cs = table.column("f").to_pylist(), table.column("v").to_pylist(), table.column("c").to_pylist()
        ws = [0] * len(fs) if codes is None else codes.tolist()
        for f_, w_, v_, c_ in zip(fs, ws, vs, cs):
            per = categories.setdefault(f_, [{} for _ in range(n_windows)])
            per[w_][v_] = per[w_].get(v_, 0) + c_
        for p in plan.features:
            if p.kind == "categorical" and (side == "current" or p.fit):
                categories.setdefault(p.index, [{} for _ in range(n_windows)])
    for index, future in list(samples.items()):
        samples[index], missing[index] = future.result()
    return samples, missing, categories


def _fit(plan: DriftBatchPlan, samples, missing, categories) -> dict[str, ReferenceProfile]:
    fitted = {}
    for p in plan.features:
        if not p.fit:
            continue
        if p.kind == "numeric":
            fitted[p.value] = numeric_profile(samples[p.index][0], int(missing[p.index][0]), p.binning or Binning())
        else:
            counts = dict(categories[p.index][0])
            n_missing = counts.pop(None, 0)
            fitted[p.value] = categorical_profile(counts, n_missing)
    return fitted


def _sizes(p: FeaturePlan, samples, categories, missing, n_windows: int) -> tuple[list[int], list[int]]:
    """Non-missing and missing current values per window."""
    if p.kind == "numeric":
        return [s.n for s in samples[p.index]], [int(m) for m in missing[p.index]]
    per = categories[p.index]
    return ([sum(c for k, c in per[wi].items() if k is not None) for wi in range(n_windows)],
            [per[wi].get(None, 0) for wi in range(n_windows)])


def _bin_table(plan: DriftBatchPlan, profiles, samples, categories, n_windows: int):
    """One row per (feature f, window wi, bin): label, current count o, reference count r, sizes n and m."""
    import pyarrow as pa

    parts: dict[str, list] = {"f": [], "wi": [], "label": [], "o": [], "r": [], "n": [], "m": []}
    for p in plan.features:
        if not p.binned:
            continue
        profile = profiles[p.value]
        for wi in range(n_windows):
            if p.kind == "numeric":
                sample = samples[p.index][wi]
                labels, o, r, n = list(profile.labels), bin_counts(sample, profile.cuts), profile.counts, sample.n
            else:
                seen = categories[p.index][wi]
                keys = list(profile.keys) + sorted(k for k in seen if k is not None and k not in profile.keys)
                ref = dict(zip(profile.keys, profile.counts))
                labels, o, r = keys, [seen.get(k, 0) for k in keys], [ref.get(k, 0) for k in keys]
                n = sum(c for k, c in seen.items() if k is not None)
            k = len(labels)
            parts["f"].append(np.full(k, p.index, np.int32))
            parts["wi"].append(np.full(k, wi, np.int32))
            parts["label"].extend(labels)
            parts["o"].append(np.asarray(o, np.int64))
            parts["r"].append(np.asarray(r, np.int64))
            parts["n"].append(np.full(k, n, np.int64))
            parts["m"].append(np.full(k, profile.n, np.int64))
    if not parts["f"]:
        return None
    return pa.table({name: (pa.array(v, pa.string()) if name == "label" else np.concatenate(v))
                     for name, v in parts.items()})
