"""The batch / numpy path of the drift engine (compute_drift_many, the KS and Wasserstein kernels, the exact
quantile fit) against scipy/numpy oracles and against the all-SQL plan, on real DuckDB.

Every statistic must equal its oracle within 1e-9 (the KS statistic and the quantile cut points exactly).
"""
from __future__ import annotations

import datetime as dt
import math

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from engine.monitor import binning, drift, stattests
from engine.monitor.drift import (
    Binning,
    DriftSpec,
    compile_drift_many,
    compute_drift,
    compute_drift_many,
    fit_reference,
    fit_references,
)
from engine.monitor.stattests import Sample
from engine.sql import render

TOL = 1e-9
BINNED = ["psi", "kl", "jensen_shannon", "hellinger", "chi_square", "share_change"]


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def specs(*tests: str, kind: str = "numeric", **options) -> list[DriftSpec]:
    return [DriftSpec.from_dict({"test": t, "kind": kind, **options}) for t in tests]


def close(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=TOL, abs_tol=TOL)


def same_results(got, want, label=""):
    """Two result lists (fast path vs all-SQL plan) agree: tests, windows, sizes, statistics, p-values, details."""
    assert [(r.test, r.window) for r in got] == [(r.test, r.window) for r in want], label
    for g, w in zip(got, want):
        assert (g.n_current, g.n_missing, g.n_reference) == (w.n_current, w.n_missing, w.n_reference), (label, g, w)
        assert close(g.statistic, w.statistic), (label, g, w)
        assert close(g.p_value, w.p_value), (label, g, w)
        assert set(g.details) == set(w.details), (label, g.details, w.details)
        for k in g.details:
            assert close(g.details[k], w.details[k]), (label, k, g.details, w.details)


def expand(x, c):
    return np.repeat(np.asarray(x, float), np.asarray(c))


# ---- the numpy kernels -------------------------------------------------------------------------------------
def _sample_pairs():
    rng = np.random.default_rng(2024)
    yield "normal small", rng.normal(size=50), rng.normal(0.3, size=70)
    yield "normal large (pruned)", rng.normal(size=60_000), rng.normal(0.01, size=45_000)
    yield "identical large", (x := rng.normal(size=40_000)), rng.permutation(x)
    yield "shifted large", rng.normal(size=30_000), rng.normal(0.5, size=30_000)
    yield "disjoint", rng.uniform(0, 1, 20_000), rng.uniform(2, 3, 20_000)
    yield "integers (ties)", rng.poisson(4, 50_000).astype(float), rng.poisson(4.1, 30_000).astype(float)
    yield "rounded (ties across)", rng.normal(size=80_000).round(2), rng.normal(0.02, size=50_000).round(2)
    yield "one value each", np.array([1.0]), np.array([1.0])
    yield "one vs many", np.array([0.5]), rng.normal(size=30_000)
    yield "constant vs constant", np.full(20_000, 2.0), np.full(30_000, 3.0)
    yield "infinities", np.array([-np.inf, 0.0, 1.0, np.inf] * 5000), np.array([0.0, 2.0, np.inf] * 7000)


def scipy_d(a, b) -> float:
    """max |F_a - F_b| exactly as scipy.stats.ks_2samp computes it before its exact mode rounds the statistic
    to the lattice h / lcm(n1, n2) (its reported statistic can differ from this in the last bit)."""
    a, b = np.sort(a), np.sort(b)
    both = np.concatenate([a, b])
    diffs = np.searchsorted(a, both, side="right") / a.size - np.searchsorted(b, both, side="right") / b.size
    return float(max(np.clip(-np.min(diffs), 0, 1), np.max(diffs)))


@pytest.mark.parametrize("label,a,b", list(_sample_pairs()), ids=[p[0] for p in _sample_pairs()])
def test_ks_kernel_is_scipy_bitwise_raw_and_counted(label, a, b):
    want = scipy_d(a, b)
    assert abs(want - float(stats.ks_2samp(a, b).statistic)) < 1e-15
    raw = stattests.ks_statistic(Sample(np.sort(a)), Sample(np.sort(b)))
    assert raw == want, (label, raw, want)
    xa, ca = np.unique(a, return_counts=True)
    xb, cb = np.unique(b, return_counts=True)
    assert stattests.ks_statistic(Sample(xa, ca), Sample(xb, cb)) == want, label  # (value, count) pairs
    assert stattests.ks_statistic(Sample(xa, ca), Sample(np.sort(b))) == want, label  # one of each


@pytest.mark.parametrize("label,a,b", [p for p in _sample_pairs() if p[0] != "infinities"],
                         ids=[p[0] for p in _sample_pairs() if p[0] != "infinities"])
def test_wasserstein_kernel_matches_scipy(label, a, b):
    want = float(stats.wasserstein_distance(a, b))
    assert close(stattests.wasserstein_distance(Sample(np.sort(a)), Sample(np.sort(b))), want), label
    xa, ca = np.unique(a, return_counts=True)
    xb, cb = np.unique(b, return_counts=True)
    assert close(stattests.wasserstein_distance(Sample(xa, ca), Sample(xb, cb)), want), label


def test_ks_pruning_evaluates_few_points_and_stays_exact(monkeypatch):
    """The bound-and-prune search must agree with the dense evaluation at every stride, ties or not."""
    rng = np.random.default_rng(5)
    for a, b in [(rng.normal(size=40_000), rng.normal(0.004, size=40_000)),
                 (rng.integers(0, 300, 40_000).astype(float), rng.integers(0, 301, 35_000).astype(float))]:
        sa, sb = Sample(np.sort(a)), Sample(np.sort(b))
        want = scipy_d(a, b)
        for first, then, dense in ((2, 2, 4), (7, 3, 10), (128, 16, 1 << 14), (5000, 2, 16), (10**6, 10**6, 8),
                                   (64, 2, 2)):
            monkeypatch.setattr(stattests, "_KS_STRIDES", (first,))
            monkeypatch.setattr(stattests, "_KS_STRIDE", then)
            monkeypatch.setattr(stattests, "_KS_DENSE", dense)
            assert stattests.ks_statistic(sa, sb) == want, (first, then, dense)


def test_sample_counts_and_order_statistics():
    x = np.array([1.0, 2.0, 2.0, 5.0])
    xs, cs = np.unique(x, return_counts=True)
    for s in (Sample(x), Sample(xs, cs)):
        t = np.array([0.0, 1.0, 2.0, 3.0, 5.0, 9.0])
        assert s.count_le(t).tolist() == [0, 1, 3, 3, 4, 4]
        assert s.count_lt(t).tolist() == [0, 0, 1, 3, 3, 4]
        assert s.order_statistics(np.arange(4)).tolist() == x.tolist()
        assert s.n == 4 and s.n_distinct() == 3
        assert close(s.mean_std()[0], float(np.mean(x))) and close(s.mean_std()[1], float(np.std(x)))
    assert Sample(np.array([])).mean_std() == (None, None)


# ---- the exact quantile fit -------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 9, 10, 11, 99, 1000, 1001, 12345])
def test_quantiles_are_numpy_quantile_bitwise(n):
    rng = np.random.default_rng(n)
    for data in (rng.normal(size=n) * 10.0 ** rng.integers(-5, 6), rng.integers(-3, 4, n).astype(float),
                 np.round(rng.lognormal(size=n), 3)):
        data = np.sort(data)
        for n_bins in (2, 3, 4, 7, 10, 20, 100):
            probs = np.array([j / n_bins for j in range(1, n_bins)])
            want = np.quantile(data, probs)
            assert np.array_equal(binning.quantiles(Sample(data), probs), want), (n, n_bins)
            xs, cs = np.unique(data, return_counts=True)
            assert np.array_equal(binning.quantiles(Sample(xs, cs), probs), want), (n, n_bins)
    probs = np.array([0.0, 1e-12, 0.5, 1 - 1e-12, 1.0])
    data = np.sort(rng.normal(size=n))
    assert np.array_equal(binning.quantiles(Sample(data), probs), np.quantile(data, probs))


def test_fitted_cut_points_equal_numpy_quantile_exactly(con):
    rng = np.random.default_rng(8)
    ref = np.concatenate([rng.normal(size=99_999), [np.nan] * 7])
    con.register("ref", pa.table({"x": pa.array(np.append(ref, 0.0), mask=np.append(np.zeros(ref.size, bool), True))}))
    clean = ref[~np.isnan(ref)]
    for n_bins in (4, 10, 13):
        profile = fit_reference(con, "ref", "numeric", Binning("quantile", n_bins))
        want = np.unique(np.quantile(clean, np.arange(1, n_bins) / n_bins))
        assert profile.cuts == tuple(want.tolist()), n_bins  # exact, not approximately
        assert profile.n == clean.size and profile.n_missing == 8  # 7 NaN + 1 NULL
        assert list(profile.counts) == np.bincount(np.digitize(clean, want), minlength=len(want) + 1).tolist()
        assert profile.n_distinct == np.unique(clean).size
        assert close(profile.mean, float(np.mean(clean))) and close(profile.std, float(np.std(clean)))


def test_fit_references_several_features_in_one_read(con):
    rng = np.random.default_rng(1)
    con.register("ref", pa.table({"a": rng.normal(size=5000), "b": rng.choice(["x", "y", "z"], 5000),
                                  "c": rng.poisson(2, 5000)}))
    profiles = fit_references(con, "ref", {"a": ("numeric", Binning("quantile", 5)), "b": ("categorical", None),
                                           "c": ("numeric", Binning("fixed", edges=(1.0, 3.0)))})
    for name, kind, b in (("a", "numeric", Binning("quantile", 5)), ("b", "categorical", None),
                          ("c", "numeric", Binning("fixed", edges=(1.0, 3.0)))):
        assert profiles[name] == fit_reference(con, "ref", kind, b, value=name)
    assert profiles["b"].keys == ("x", "y", "z") and profiles["c"].cuts == (1.0, 3.0)


# ---- compute_drift_many / compute_drift against the all-SQL plan and scipy ------------------------------
def _windowed(con, rng):
    ref = np.concatenate([rng.normal(size=6000), rng.poisson(3, 2000)]).astype(float)
    ref[::97] = np.nan
    n = 9000
    days = rng.choice(np.array(["d1", "d2", "d3", "d4"]), n, p=[0.5, 0.3, 0.199, 0.001])
    cur = rng.normal(0.2, 1.1, n)
    cur[days == "d2"] = rng.poisson(3, int((days == "d2").sum()))  # a window with ties only
    cur[::53] = np.nan
    mask = np.zeros(n, bool)
    mask[::71] = True  # NULLs too
    day_mask = np.zeros(n, bool)
    day_mask[5::400] = True  # NULL windows
    con.register("ref", pa.table({"x": ref, "cat": rng.choice(list("abcde"), ref.size)}))
    con.register("cur", pa.table({"x": pa.array(cur, mask=mask), "day": pa.array(days, mask=day_mask),
                                  "cat": rng.choice(list("abcdf"), n, p=[0.3, 0.3, 0.2, 0.15, 0.05])}))
    return ref, cur, mask, days, day_mask


@pytest.mark.parametrize("value_counts", [None, True, False])
def test_fast_path_equals_the_sql_plan_with_windows_nulls_and_ties(con, value_counts):
    rng = np.random.default_rng(77)
    ref, cur, mask, days, day_mask = _windowed(con, rng)
    num = specs(*BINNED, "ks", "wasserstein") + specs("chi_square", method="goodness_of_fit")
    profile = fit_reference(con, "ref", "numeric")
    fast = compute_drift(con, num, "cur", profile=profile, reference="ref", window="day", value_counts=value_counts)
    sql = compute_drift(con, num, "cur", profile=profile, reference="ref", window="day", value_counts=value_counts,
                        sql_only=True)
    same_results(fast, sql)
    assert [r.window for r in fast[:5]] == [None, "d1", "d2", "d3", "d4"]
    # and scipy, window by window
    clean_ref = ref[~np.isnan(ref)]
    window_of = np.where(day_mask, None, days)
    for w in (None, "d1", "d2", "d3", "d4"):
        part = cur[(window_of == w) & ~mask]
        part = part[~np.isnan(part)]
        mine = {r.test: r for r in fast if r.window == w}
        want = stats.ks_2samp(clean_ref, part)
        assert mine["ks"].statistic == scipy_d(clean_ref, part) and close(mine["ks"].statistic, want.statistic), w
        assert close(mine["ks"].p_value, float(want.pvalue)), w
        assert close(mine["wasserstein"].statistic, stats.wasserstein_distance(clean_ref, part) / np.std(clean_ref))
        assert mine["ks"].n_current == part.size
    cat = specs(*BINNED, kind="categorical")
    cprofile = fit_reference(con, "ref", "categorical", value="cat")
    same_results(compute_drift(con, cat, "cur", profile=cprofile, value="cat", window="day"),
                 compute_drift(con, cat, "cur", profile=cprofile, value="cat", window="day", sql_only=True))


def test_many_features_in_one_batch_equal_one_by_one(con):
    rng = np.random.default_rng(3)
    n = 20_000
    tables = {}
    for side, shift in (("ref", 0.0), ("cur", 1.0)):
        tables[side] = pa.table({
            "a": rng.normal(0.1 * shift, 1, n), "b": rng.poisson(5 + shift, n).astype(float),
            "c": rng.choice(list("pqrs"), n, p=[0.4, 0.3, 0.2, 0.1]),
            "d": rng.integers(0, 3 + int(shift), n), "day": rng.integers(0, 3, n)})
        con.register(side, tables[side])
    features = {"a": specs("psi", "ks", "wasserstein", "jensen_shannon"),
                "b": specs("psi", "chi_square", n_bins=4) + specs("ks"),
                "c": specs("psi", "chi_square", "share_change", kind="categorical"),
                "d": specs("psi", "hellinger", kind="categorical") + specs("psi", kind="categorical", epsilon=0.01)}
    batch = compute_drift_many(con, features, "cur", reference="ref", window="day")
    assert set(batch.results) == set(features) and set(batch.profiles) == set(features)
    for name, feature_specs in features.items():
        kind = feature_specs[0].kind
        profile = fit_reference(con, "ref", kind, feature_specs[0].binning, value=name)
        assert batch.profiles[name] == profile
        one = compute_drift(con, feature_specs, "cur", profile=profile, reference="ref", value=name, window="day",
                            sql_only=True)
        same_results(batch.results[name], one, name)
    again = compute_drift_many(con, features, "cur", reference="ref", window="day", profiles=batch.profiles)
    for name in features:  # stored profiles (the steady state) give the same results
        same_results(again.results[name], batch.results[name], name)


def test_batch_reads_each_relation_with_few_statements():
    features = {"a": specs("psi", "ks"), "b": specs("ks"), "c": specs("chi_square", kind="categorical"),
                "d": specs("psi", kind="categorical", epsilon=0.0)}
    plan = compile_drift_many(features, "cur", reference="ref", window="day")
    assert list(plan.statements) == ["reference.values", "reference.categories", "current.windows",
                                     "current.values", "current.categories", "bins.eps_0.0001", "bins.eps_0.0"]
    names = [s.name for s in plan.to_statements()]
    assert names[0] == "drift.reference.values" and all(s.sql() for s in plan.to_statements())
    counted = compile_drift_many(features, "cur", reference="ref", value_counts=True)
    assert "reference.value_counts" in counted.statements and "current.values" not in counted.statements
    text = render(plan.statements["current.values"])
    assert '"s"."a"' in text and '"s"."b"' in text and '"s"."day"' in text


def test_automatic_plan_counts_tie_heavy_features_from_their_profile(con):
    rng = np.random.default_rng(4)
    con.register("ref", pa.table({"x": rng.poisson(3, 5000).astype(float), "y": rng.normal(size=5000)}))
    profiles = fit_references(con, "ref", {"x": ("numeric", None), "y": ("numeric", None)})
    plan = compile_drift_many({"x": specs("psi", "ks"), "y": specs("psi", "ks")}, "ref", reference="ref",
                              profiles=profiles)
    counted = {p.value: p.counts for p in plan.features}
    assert counted == {"x": True, "y": False}


def test_caller_columns_named_like_internal_aliases(con):
    """GROUP BY and SELECT aliases (w, v, f, c) must not bind to the caller's columns of the same name."""
    rng = np.random.default_rng(6)
    n = 3000
    for side in ("ref", "cur"):
        con.register(side, pa.table({"w": rng.integers(0, 2, n), "v": rng.normal(size=n), "f": rng.integers(0, 9, n),
                                     "c": rng.choice(list("xyz"), n), "day": rng.integers(0, 2, n),
                                     "k": rng.integers(0, 50, n).astype(float)}))
    features = {"v": specs("psi", "ks"), "c": specs("psi", kind="categorical"), "k": specs("ks", "psi"),
                "f": specs("chi_square", kind="categorical")}
    for value_counts in (None, True):
        batch = compute_drift_many(con, features, "cur", reference="ref", window="day", value_counts=value_counts)
        for name, feature_specs in features.items():
            one = compute_drift(con, feature_specs, "cur", profile=batch.profiles[name], reference="ref",
                                value=name, window="day", sql_only=True)
            same_results(batch.results[name], one, name)


@pytest.mark.parametrize("sql_type,values", [
    ("TIMESTAMPTZ", ["2024-01-01 00:00:00+00", "2024-01-02 00:00:00+00", None]),
    ("DATE", ["2024-01-01", "2024-01-02", None]),
    ("INTEGER", ["7", "-3", None]),
    ("VARCHAR", ["b", "a", None]),
])
def test_window_values_are_those_of_the_sql_plan(con, sql_type, values):
    rng = np.random.default_rng(10)
    con.register("ref_src", pa.table({"x": rng.normal(size=500)}))
    n = 900
    con.register("cur_src", pa.table({"x": rng.normal(size=n), "i": np.arange(n) % 3}))
    cases = " ".join(f"WHEN {i} THEN CAST({'NULL' if v is None else repr(v)} AS {sql_type})"
                     for i, v in enumerate(values))
    con.execute(f"CREATE TABLE cur AS SELECT x, CASE i {cases} END AS window_start FROM cur_src")
    con.execute("CREATE TABLE ref AS SELECT x FROM ref_src")
    profile = fit_reference(con, "ref", "numeric")
    test_specs = specs("psi", "ks", "wasserstein")
    fast = compute_drift(con, test_specs, "cur", profile=profile, reference="ref", window="window_start")
    sql = compute_drift(con, test_specs, "cur", profile=profile, reference="ref", window="window_start",
                        sql_only=True)
    same_results(fast, sql, sql_type)
    assert [r.window for r in fast] == [r.window for r in sql]
    assert fast[0].window is None and len(fast) == 9
    if sql_type == "TIMESTAMPTZ":
        assert isinstance(fast[1].window, dt.datetime) and fast[1].window.isoformat() == sql[1].window.isoformat()


def test_tiny_and_degenerate_samples(con):
    con.register("ref", pa.table({"x": [0.5, 1.5, 2.5]}))
    con.register("cur", pa.table({"x": [2.0, np.nan, None, 3.0], "w": [1, 1, 2, 3]}))
    test_specs = specs("ks", "wasserstein")
    res = compute_drift(con, test_specs, "cur", reference="ref", window="w")
    sql = compute_drift(con, test_specs, "cur", reference="ref", window="w", sql_only=True)
    same_results(res, sql)
    by = {(r.test, r.window): r for r in res}
    assert by[("ks", 1)].statistic == scipy_d([0.5, 1.5, 2.5], [2.0])
    assert by[("ks", 2)].statistic is None and by[("ks", 2)].n_missing == 1 and by[("ks", 2)].n_current == 0
    assert by[("ks", 3)].statistic == scipy_d([0.5, 1.5, 2.5], [3.0])
    # a reference with no non-missing value: whole-sample tests cannot compute, a fit refuses
    con.register("empty_ref", pa.table({"x": pa.array([None, np.nan], pa.float64())}))
    out = compute_drift(con, test_specs, "cur", reference="empty_ref")
    assert all(r.statistic is None and r.n_reference == 0 for r in out)
    with pytest.raises(ValueError, match="no non-missing values"):
        compute_drift_many(con, {"x": specs("psi")}, "cur", reference="empty_ref")
    # an empty current relation without a window column: one window that cannot compute
    con.execute("CREATE TABLE nothing (x DOUBLE)")
    out = compute_drift_many(con, {"x": specs("psi", "ks")}, "nothing", reference="ref").results["x"]
    assert [(r.test, r.window, r.statistic, r.n_current) for r in out] == [("psi", 0, None, 0), ("ks", 0, None, 0)]


def test_batch_errors_name_the_feature():
    with pytest.raises(ValueError, match="feature 'a'.*numeric or all categorical"):
        compile_drift_many({"a": specs("psi") + specs("psi", kind="categorical")}, "cur", reference="ref")
    with pytest.raises(ValueError, match="feature 'a'.*different binnings"):
        compile_drift_many({"a": specs("psi") + specs("psi", n_bins=5)}, "cur", reference="ref")
    with pytest.raises(ValueError, match="feature 'a'.*pass the reference sample"):
        compile_drift_many({"a": specs("ks")}, "cur")
    with pytest.raises(ValueError, match="feature 'a'.*reference profile"):
        compile_drift_many({"a": specs("psi")}, "cur")
    with pytest.raises(ValueError, match="needs the reference profile"):
        compute_drift(None, specs("psi"), "cur", reference="ref")  # one feature: binned tests need the profile


def test_inline_and_threaded_execution_agree(con, monkeypatch):
    rng = np.random.default_rng(12)
    con.register("ref", pa.table({"a": rng.normal(size=30_000), "b": rng.normal(size=30_000)}))
    con.register("cur", pa.table({"a": rng.normal(0.02, size=30_000), "b": rng.normal(size=30_000),
                                  "d": rng.integers(0, 4, 30_000)}))
    features = {"a": specs("psi", "ks"), "b": specs("wasserstein", "kl")}
    monkeypatch.setattr(drift, "WORKERS", 0)
    inline = compute_drift_many(con, features, "cur", reference="ref", window="d")
    monkeypatch.setattr(drift, "WORKERS", 3)
    threaded = compute_drift_many(con, features, "cur", reference="ref", window="d")
    for name in features:
        assert [r.to_json() for r in inline.results[name]] == [r.to_json() for r in threaded.results[name]]
