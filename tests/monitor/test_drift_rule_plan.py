"""The monitor's drift statements (engine/monitor/rule_plan.py) against scipy / numpy oracles and the numpy path.

The statistics that `flywheel monitor` computes as plan statements (cut points, bin counts, categorical
frequencies, PSI, KL, Jensen-Shannon, Hellinger, chi-square, share change, and KS / Wasserstein over the merged
ECDF) must equal scipy.stats.ks_2samp, wasserstein_distance, chisquare / chi2_contingency,
scipy.spatial.distance.jensenshannon and a PSI by hand in numpy, and the numpy path of engine/monitor/drift.py,
on random data and edge cases, with the smoothing and tie conventions of tests/monitor/test_drift_stats.py.
"""
from __future__ import annotations

import math

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from engine.monitor.drift import compute_drift, fit_reference
from engine.executor import execute
from engine.monitor.drift_rules import rule_statistics
from engine.monitor.rule_plan import compile_rule
from tests.monitor.test_drift_stats import (ALL_NUMERIC, BINNED, by_test, categorical_counts, check_binned,
                                            check_ecdf, close, numeric_counts, oracle_binned, specs)


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def load(con, ref, cur, cur_windows=None, ref_windows=None):
    """The two materialised samples of a rule (columns window_start, x), as the monitor builds them."""
    for name, values, windows in (("fw_drift_reference", ref, ref_windows), ("fw_drift_current", cur, cur_windows)):
        windows = np.zeros(len(values), np.int64) if windows is None else windows
        con.register("t", pa.table({"window_start": pa.array(windows), "x": pa.array(values)}))
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM t")
        con.unregister("t")


def run(con, tests, kind="numeric", **options):
    """Every test as its own rule; the profile of each, and the results of all by test."""
    results, profiles = [], {}
    for spec in specs(*tests, kind=kind, **options):
        profile, rows = rule_statistics(con, compile_rule("r", spec))
        results += rows
        profiles[spec.test] = profile
    return profiles, results


def numpy_path(con, tests, kind="numeric", window=None, **options):
    """The same tests through the numpy path of engine/monitor/drift.py."""
    spec = specs(*tests, kind=kind, **options)
    profile = fit_reference(con, "SELECT * FROM fw_drift_reference", kind, spec[0].binning)
    return compute_drift(con, spec, "SELECT * FROM fw_drift_current", profile=profile,
                         reference="SELECT * FROM fw_drift_reference", window=window)


def assert_same(got, want):
    assert len(got) == len(want)
    for g, w in zip(sorted(got, key=lambda r: (r.test, str(r.details.get("method")), str(r.window))),
                    sorted(want, key=lambda r: (r.test, str(r.details.get("method")), str(r.window)))):
        assert (g.test, g.n_current, g.n_missing, g.n_reference) == (w.test, w.n_current, w.n_missing, w.n_reference)
        assert close(g.statistic, w.statistic, rel=True), (g, w)
        assert close(g.p_value, w.p_value), (g, w)


@pytest.mark.parametrize("seed,n_ref,n_cur,shift", [(0, 5000, 3000, 0.1), (1, 2000, 1500, 0.5), (2, 300, 7000, 0.0)])
def test_random_numeric_samples_equal_scipy_and_the_numpy_path(con, seed, n_ref, n_cur, shift):
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(size=n_ref), rng.normal(shift, 1.2, size=n_cur)
    load(con, ref, cur)
    profiles, results = run(con, ALL_NUMERIC)
    cuts = np.unique(np.quantile(ref, [j / 10 for j in range(1, 10)]))
    assert profiles["psi"].cuts == tuple(float(c) for c in cuts)  # bitwise numpy.quantile
    r, c = numeric_counts(ref, cur, cuts)
    assert profiles["psi"].counts == tuple(int(x) for x in r)
    check_binned(results, oracle_binned(r, c, profiles["psi"].labels), f"seed {seed}")
    check_ecdf(results, ref, cur, f"seed {seed}")
    assert_same(results, numpy_path(con, ALL_NUMERIC))


def test_the_fitted_profile_is_the_numpy_paths(con):
    rng = np.random.default_rng(7)
    load(con, np.round(rng.exponential(3.0, 4000), 1), rng.normal(size=10))
    profile, _ = rule_statistics(con, compile_rule("r", specs("psi", n_bins=20)[0]))
    want = fit_reference(con, "SELECT * FROM fw_drift_reference", "numeric", profile.binning)
    assert (profile.cuts, profile.counts, profile.keys, profile.labels, profile.n, profile.n_missing,
            profile.n_distinct) == (want.cuts, want.counts, want.keys, want.labels, want.n, want.n_missing,
                                    want.n_distinct)
    assert math.isclose(profile.mean, want.mean, rel_tol=1e-12) and math.isclose(profile.std, want.std, rel_tol=1e-12)


def test_ties_and_integer_data(con):
    rng = np.random.default_rng(3)
    ref, cur = rng.poisson(4, 3000).astype(float), rng.poisson(4.3, 2500).astype(float)
    load(con, ref, cur)
    profiles, results = run(con, ALL_NUMERIC)
    r, c = numeric_counts(ref, cur, profiles["psi"].cuts)
    check_binned(results, oracle_binned(r, c, profiles["psi"].labels))
    check_ecdf(results, ref, cur)
    assert_same(results, numpy_path(con, ALL_NUMERIC))


def test_constant_single_value_and_missing_values(con):
    ref = np.array([1.0, 2.0, 2.0, 3.0, np.nan, 4.0, 5.0, 5.0, 5.0, 9.0])
    cur = np.array([2.0, 2.0, 2.0, 2.0, np.nan, np.nan])  # a constant current sample, with NaN
    load(con, ref, pa.array([2.0, 2.0, 2.0, 2.0, None, float("nan")]))  # NULL and NaN are both missing
    profiles, results = run(con, ALL_NUMERIC)
    clean_ref, clean_cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    r, c = numeric_counts(clean_ref, clean_cur, profiles["psi"].cuts)
    check_binned(results, oracle_binned(r, c, profiles["psi"].labels))
    check_ecdf(results, clean_ref, clean_cur)
    assert {x.n_missing for x in results} == {2} and profiles["psi"].n_missing == 1
    assert_same(results, numpy_path(con, ALL_NUMERIC))

    load(con, np.full(50, 7.0), np.array([7.0]))  # a constant reference and a single current value
    profiles, results = run(con, ALL_NUMERIC)
    got = by_test(results)
    assert profiles["psi"].cuts == (7.0,) and got["psi"].statistic == pytest.approx(0.0, abs=1e-12)
    assert got["ks"].statistic == 0.0 and got["wasserstein"].statistic is None  # no spread to normalise by
    assert_same(results, numpy_path(con, ALL_NUMERIC))


def test_empty_bins_without_smoothing_and_values_outside_fixed_edges(con):
    rng = np.random.default_rng(5)
    ref, cur = rng.uniform(0, 10, 1000), rng.uniform(5, 15, 800)
    load(con, ref, cur)
    options = {"binning": "fixed", "edges": [2.0, 4.0, 6.0, 8.0, 20.0, 30.0], "epsilon": 0}
    smoothed = [t for t in BINNED if t != "share_change"]  # share_change has no smoothing
    profiles, results = run(con, smoothed, **options)
    r, c = numeric_counts(ref, cur, profiles["psi"].cuts)
    assert 0 in r and 0 in c  # bins empty on either side
    assert by_test(results)["psi"].statistic == math.inf  # a reference bin the current sample leaves empty, unsmoothed
    check_binned(results, oracle_binned(r, c, profiles["psi"].labels, eps=0))
    assert_same(results, numpy_path(con, smoothed, **options))


def test_categories_on_one_side_only_and_missing(con):
    ref = ["a"] * 50 + ["b"] * 30 + ["c"] * 20 + [None] * 5
    cur = ["a"] * 40 + ["b"] * 10 + ["d"] * 25 + [None] * 3  # c vanished, d is new
    load(con, ref, cur)
    profiles, results = run(con, BINNED + ["chi_square_gof"], kind="categorical")
    r, c, labels = categorical_counts([x for x in ref if x], [x for x in cur if x])
    check_binned(results, oracle_binned(r, c, labels))
    assert math.isfinite(by_test(results)["chi_square_gof"].statistic)  # "d": smoothed, never a zero expectation
    assert_same(results, numpy_path(con, BINNED + ["chi_square_gof"], kind="categorical"))
    assert profiles["psi"].keys == ("a", "b", "c") and profiles["psi"].n_missing == 5


def test_several_windows_and_an_all_missing_window(con):
    rng = np.random.default_rng(11)
    cur = np.concatenate([rng.normal(0, 1, 400), rng.normal(1, 1, 300), np.full(5, np.nan)])
    windows = np.array([1] * 400 + [2] * 300 + [3] * 5)
    load(con, rng.normal(size=1000), cur, windows)
    plan_rows = []
    for spec in specs(*ALL_NUMERIC):
        plan = compile_rule("r", spec)
        # the monitor's windows are window_start: compile_rule reads them, one row per window
        plan_rows += rule_statistics(con, plan)[1]
    assert {r.window for r in plan_rows} == {1, 2, 3}
    assert all(r.statistic is None and r.n_current == 0 and r.n_missing == 5 for r in plan_rows if r.window == 3)
    assert_same(plan_rows, numpy_path(con, ALL_NUMERIC, window="window_start"))
    ref = con.execute("SELECT x FROM fw_drift_reference").fetchnumpy()["x"]
    for w, part in ((1, cur[:400]), (2, cur[400:700])):
        check_ecdf([r for r in plan_rows if r.window == w], ref, part, f"window {w}")


def test_p_values_are_scipys(con):
    rng = np.random.default_rng(2)
    ref, cur = rng.normal(size=800), rng.normal(0.15, 1, 600)
    load(con, ref, cur)
    _, results = run(con, ["ks", "chi_square"])
    got = by_test(results)
    assert close(got["ks"].p_value, float(stats.ks_2samp(ref, cur).pvalue))
    profile = fit_reference(con, "SELECT * FROM fw_drift_reference", "numeric")
    r, c = numeric_counts(ref, cur, profile.cuts)
    assert close(got["chi_square"].p_value, float(stats.chi2_contingency([r, c], correction=False).pvalue))


def test_the_compiled_statements_hold_no_data(con):
    rng = np.random.default_rng(1)
    load(con, rng.normal(size=100), rng.normal(size=100))
    for spec in specs("psi", "ks", "chi_square"):
        plan = compile_rule("r", spec, sigma=True)
        profile, _ = rule_statistics(con, plan)
        text = "\n".join(st.sql() for st in plan.statements.values())
        assert not any(repr(c) in text for c in profile.cuts)  # the cut points are bound, never spliced in
        assert (plan.p_value is not None) == (spec.test in ("ks", "chi_square"))
    binned = compile_rule("r", specs("psi")[0])
    assert set(binned.statements["statistic"].params) == {"ref_keys", "ref_labels", "ref_counts"}
    assert binned.statements["current_bins"].params == ("cuts",)
    assert binned.statements["cut_points"].only_when and not binned.statements["statistic"].only_when
    previous = compile_rule("r", specs("ks")[0], "previous")
    assert "stored_profile" not in previous.statements
    assert set(previous.statements["statistic"].params) == {"window", "previous_window"}


def test_both_ecdf_statements_give_the_same_numbers(con):
    rng = np.random.default_rng(4)
    ref, cur = rng.poisson(6, 2000).astype(float), rng.poisson(6.5, 1500).astype(float)
    load(con, ref, cur)
    for test in ("ks", "wasserstein"):
        plan = compile_rule("r", specs(test)[0])
        raw, counted = (execute(con, plan.statements[k], {}) for k in ("statistic", "statistic_counted"))
        assert len(raw) == len(counted) == 1 and raw[0].keys() == counted[0].keys()
        for key, value in raw[0].items():
            assert value == pytest.approx(counted[0][key], rel=1e-12), key
        assert plan.statements["statistic"].only_when and plan.statements["statistic_counted"].only_when
    check_ecdf(run(con, ["ks", "wasserstein"])[1], ref, cur)  # the counted statement, chosen from the profile


def test_reference_kind_previous_compares_each_window_with_the_one_before(con):
    from engine.monitor.drift_rules import _previous_windows

    rng = np.random.default_rng(9)
    cur = np.concatenate([rng.normal(0, 1, 300), rng.normal(0.3, 1, 250), rng.poisson(3, 200).astype(float)])
    windows = np.array([10] * 300 + [20] * 250 + [30] * 200)
    load(con, np.zeros(1), cur, windows)
    for spec in specs("psi", "ks", "chi_square"):
        got = _previous_windows(con, compile_rule("r", spec, "previous"))
        assert [r.window for r in got] == [20, 30]
        for r, (before, now) in zip(got, ((10, 20), (20, 30))):
            ref = f"SELECT * FROM fw_drift_current WHERE window_start = {before}"
            profile = fit_reference(con, ref, "numeric", spec.binning)
            [want] = compute_drift(con, [spec], f"SELECT * FROM fw_drift_current WHERE window_start = {now}",
                                   profile=profile, reference=ref)
            assert close(r.statistic, want.statistic, rel=True) and close(r.p_value, want.p_value), (spec.test, r, want)
            assert (r.n_current, r.n_reference) == (want.n_current, want.n_reference)
