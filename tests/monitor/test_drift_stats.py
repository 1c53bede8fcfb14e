"""Drift statistics (engine.monitor) against scipy/numpy oracles, on real DuckDB.

Every statistic must equal its reference implementation within 1e-9 (relative for the unbounded chi-square
statistic): scipy.stats.ks_2samp, scipy.stats.wasserstein_distance / np.std(reference),
scipy.spatial.distance.jensenshannon, scipy.stats.entropy, scipy.stats.chisquare, and numpy for PSI, Hellinger
and the share change, on the same bins and the same smoothing.
"""
from __future__ import annotations

import json
import math

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from engine import registry
from engine.monitor import pvalues
from engine.monitor.drift import Binning, DriftSpec, ReferenceProfile, compile_drift, compute_drift, fit_reference
from engine.monitor.stattests import TESTS
from engine.sql import render

TOL = 1e-9
BINNED = ["psi", "kl", "jensen_shannon", "hellinger", "chi_square", "share_change"]
BINNED_SPECS = BINNED + ["chi_square_gof"]  # chi_square with method: goodness_of_fit


# ---- oracles -----------------------------------------------------------------------------------------------
def smooth(counts: np.ndarray, eps: float) -> np.ndarray:
    return (counts / counts.sum() + eps) / (1 + len(counts) * eps)


def oracle_binned(ref_counts, cur_counts, labels, eps=1e-4, log_base=math.e, js_base=2.0) -> dict:
    ref_counts, cur_counts = np.asarray(ref_counts, float), np.asarray(cur_counts, float)
    p, q = smooth(ref_counts, eps), smooth(cur_counts, eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        psi_terms = np.where(p == q, 0.0, (q - p) * np.log(q / p))
    change = cur_counts / cur_counts.sum() - ref_counts / ref_counts.sum()
    top = min(range(len(labels)), key=lambda i: (-abs(change[i]), labels[i]))
    seen = (ref_counts + cur_counts) > 0
    table = np.array([ref_counts[seen], cur_counts[seen]])
    chi = stats.chi2_contingency(table, correction=False) if seen.sum() > 1 else None
    gof = stats.chisquare(cur_counts, f_exp=p * cur_counts.sum())
    return {
        "psi": (float(np.sum(psi_terms) / np.log(log_base)), None),
        "kl": (float(stats.entropy(q, p, base=log_base)), None),
        "kl_reverse": (float(stats.entropy(p, q, base=log_base)), None),
        "jensen_shannon": (float(jensenshannon(p, q, base=js_base)), None),
        "hellinger": (float(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2) / 2)), None),
        "chi_square": (float(chi.statistic), float(chi.pvalue)) if chi else (0.0, 1.0),
        "chi_square_gof": (float(gof.statistic), float(gof.pvalue)),
        "share_change": (float(np.max(np.abs(change))), labels[top]),
    }


def numeric_counts(ref: np.ndarray, cur: np.ndarray, cuts) -> tuple[np.ndarray, np.ndarray]:
    k = len(cuts) + 1
    return (np.bincount(np.digitize(ref, cuts), minlength=k), np.bincount(np.digitize(cur, cuts), minlength=k))


def categorical_counts(ref, cur):
    labels = sorted(set(ref) | set(cur))
    return ([sum(1 for r in ref if r == c) for c in labels], [sum(1 for r in cur if r == c) for c in labels],
            labels)


def close(a, b, rel=False) -> bool:
    if a is None or b is None:
        return a is b
    if math.isinf(b) or math.isinf(a):
        return a == b
    return math.isclose(a, b, rel_tol=TOL if rel else 0.0, abs_tol=TOL)


# ---- helpers -----------------------------------------------------------------------------------------------
@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def register(con, name: str, **columns) -> str:
    con.register(name, pa.table(columns))
    return name


def specs(*tests: str, kind: str = "numeric", **options) -> list[DriftSpec]:
    out = []
    for t in tests:
        extra = {"test": "chi_square", "method": "goodness_of_fit"} if t == "chi_square_gof" else {"test": t}
        out.append(DriftSpec.from_dict({"kind": kind, **options, **extra}))
    return out


def by_test(results) -> dict:
    """Results keyed by test name; chi_square with method goodness_of_fit is 'chi_square_gof'."""
    return {("chi_square_gof" if r.test == "chi_square" and r.details.get("method") == "goodness_of_fit"
             else r.test): r for r in results}


def check_binned(results, oracle, label=""):
    got = by_test(results)
    for test in BINNED_SPECS:
        if test not in got:
            continue
        r = got[test]
        want_stat, want_extra = oracle[test]
        assert close(r.statistic, want_stat, rel=test.startswith("chi")), (label, test, r.statistic, want_stat)
        if test.startswith("chi"):
            assert close(r.p_value, want_extra), (label, test, r.p_value, want_extra)
        if test == "share_change":
            assert r.details["category"] == want_extra, (label, r.details, want_extra)


def check_ecdf(results, ref, cur, label=""):
    got = by_test(results)
    if "ks" in got:
        want = stats.ks_2samp(ref, cur)
        assert close(got["ks"].statistic, float(want.statistic)), (label, got["ks"], want)
        assert close(got["ks"].p_value, float(want.pvalue)), (label, got["ks"], want)
    if "wasserstein" in got:
        sd = np.std(ref)
        want = stats.wasserstein_distance(ref, cur) / sd if sd > 0 else None
        assert close(got["wasserstein"].statistic, want), (label, got["wasserstein"], want)


ALL_NUMERIC = BINNED_SPECS + ["ks", "wasserstein"]


# ---- numeric -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed,n_ref,n_cur,shift", [(0, 5000, 3000, 0.1), (1, 20000, 15000, 0.02),
                                                    (2, 1000, 1000, 0.5), (3, 400, 7000, 0.0)])
def test_numeric_continuous(con, seed, n_ref, n_cur, shift):
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(size=n_ref), rng.normal(shift, 1.1, size=n_cur)
    register(con, "ref", x=ref)
    register(con, "cur", x=cur)
    profile = fit_reference(con, "ref", "numeric", Binning("quantile", 10))
    want_cuts = np.quantile(ref, np.arange(1, 10) / 10)
    assert np.allclose(profile.cuts, want_cuts, rtol=0, atol=1e-12)
    results = compute_drift(con, specs(*ALL_NUMERIC), "cur", profile=profile, reference="ref")
    check_binned(results, oracle_binned(*numeric_counts(ref, cur, profile.cuts), profile.labels))
    check_ecdf(results, ref, cur)
    assert {r.n_current for r in results} == {n_cur} and {r.n_reference for r in results} == {n_ref}


def test_integer_valued_data_with_ties(con):
    rng = np.random.default_rng(7)
    ref, cur = rng.poisson(3.0, 4000).astype(np.int64), rng.poisson(3.4, 2500).astype(np.int64)
    register(con, "ref", x=ref)
    register(con, "cur", x=cur)
    profile = fit_reference(con, "ref", "numeric", Binning("quantile", 10))
    assert list(profile.cuts) == sorted(set(np.quantile(ref, np.arange(1, 10) / 10)))  # repeated cuts merged
    assert len(profile.cuts) < 9
    spec_list = specs(*ALL_NUMERIC)
    results = compute_drift(con, spec_list, "cur", profile=profile, reference="ref")
    check_binned(results, oracle_binned(*numeric_counts(ref, cur, profile.cuts), profile.labels))
    check_ecdf(results, ref.astype(float), cur.astype(float))
    assert by_test(results)["ks"].details["method"] == "exact"


def test_fixed_edges_and_values_outside_the_reference_range(con):
    rng = np.random.default_rng(3)
    ref, cur = rng.uniform(0, 10, 3000), rng.uniform(-5, 15, 2000)
    register(con, "ref", x=ref)
    register(con, "cur", x=cur)
    edges = [2.0, 4.0, 6.0, 8.0]
    profile = fit_reference(con, "ref", "numeric", Binning("fixed", edges=tuple(edges)))
    assert profile.cuts == tuple(edges) and len(profile.counts) == 5
    results = compute_drift(con, specs(*BINNED_SPECS, binning="fixed", edges=edges), "cur", profile=profile)
    check_binned(results, oracle_binned(*numeric_counts(ref, cur, edges), profile.labels))


@pytest.mark.parametrize("eps,log_base,js_base", [(0.0, math.e, 2.0), (1e-3, 2.0, math.e), (0.01, 10.0, 10.0)])
def test_smoothing_and_log_base(con, eps, log_base, js_base):
    rng = np.random.default_rng(11)
    ref, cur = rng.normal(size=3000), rng.normal(0.3, size=2000)
    register(con, "ref", x=ref)
    register(con, "cur", x=cur)
    profile = fit_reference(con, "ref", "numeric")
    spec_list = [DriftSpec.from_dict({"test": t, "epsilon": eps, "log_base": log_base}) for t in ("psi", "kl")]
    spec_list += [DriftSpec.from_dict({"test": t, "epsilon": eps}) for t in ("hellinger", "chi_square")]
    spec_list.append(DriftSpec.from_dict({"test": "jensen_shannon", "epsilon": eps, "log_base": js_base}))
    spec_list.append(DriftSpec.from_dict({"test": "kl", "epsilon": eps, "log_base": log_base,
                                          "direction": "reference_to_current"}))
    results = compute_drift(con, spec_list, "cur", profile=profile)
    oracle = oracle_binned(*numeric_counts(ref, cur, profile.cuts), profile.labels, eps, log_base, js_base)
    check_binned(results[:5], oracle)
    assert results[5].test == "kl" and close(results[5].statistic, oracle["kl_reverse"][0])


def test_empty_bin_without_smoothing_is_infinite(con):
    register(con, "ref", x=np.array([1.0, 2.0, 3.0, 4.0]))
    register(con, "cur", x=np.array([1.0, 1.5, 2.0, 9.0]))
    profile = fit_reference(con, "ref", "numeric", Binning("fixed", edges=(2.5, 5.0)))  # bin [5, inf) empty in ref
    results = by_test(compute_drift(con, specs("psi", "kl", "jensen_shannon", binning="fixed", edges=[2.5, 5.0],
                                               epsilon=0), "cur", profile=profile))
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.75, 0.0, 0.25])
    assert results["psi"].statistic == math.inf
    assert results["kl"].statistic == stats.entropy(q, p) == math.inf
    assert close(results["jensen_shannon"].statistic, float(jensenshannon(p, q, base=2)))


def test_tiny_samples(con):
    ref, cur = np.array([0.5, 1.5, 2.5]), np.array([2.0, 3.0])
    register(con, "ref", x=ref)
    register(con, "cur", x=cur)
    profile = fit_reference(con, "ref", "numeric", Binning("quantile", 10))
    results = compute_drift(con, specs(*ALL_NUMERIC), "cur", profile=profile, reference="ref")
    check_binned(results, oracle_binned(*numeric_counts(ref, cur, profile.cuts), profile.labels))
    check_ecdf(results, ref, cur)
    register(con, "one", x=np.array([4.0]))
    check_ecdf(compute_drift(con, specs("ks", "wasserstein"), "one", reference="ref"), ref, np.array([4.0]))


def test_identical_samples_give_zero_and_p_value_one(con):
    rng = np.random.default_rng(5)
    x = rng.normal(size=2000).round(2)
    register(con, "ref", x=x)
    register(con, "cur", x=rng.permutation(x))
    profile = fit_reference(con, "ref", "numeric")
    # (chi-square goodness of fit is not 0 here: its expected counts come from the *smoothed* reference)
    for r in compute_drift(con, specs(*BINNED, "ks", "wasserstein"), "cur", profile=profile, reference="ref"):
        assert r.statistic == 0.0 or abs(r.statistic) < 1e-15, r
        if r.p_value is not None:
            assert r.p_value == 1.0, r
    cats = np.array(list("aabbbcd"))
    register(con, "cref", x=cats)
    register(con, "ccur", x=cats[::-1].copy())
    cprofile = fit_reference(con, "cref", "categorical")
    for r in compute_drift(con, specs(*BINNED, kind="categorical"), "ccur", profile=cprofile):
        assert abs(r.statistic) < 1e-15 and r.p_value in (None, 1.0), r


# ---- categorical ---------------------------------------------------------------------------------------------
def test_categorical_with_categories_on_one_side_only(con):
    rng = np.random.default_rng(9)
    ref = rng.choice(["a", "b", "c", "d", "e"], 3000, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    cur = rng.choice(["a", "b", "c", "d", "new"], 2000, p=[0.3, 0.3, 0.2, 0.15, 0.05])  # "e" gone, "new" appears
    register(con, "ref", x=ref)
    register(con, "cur", x=cur)
    profile = fit_reference(con, "ref", "categorical")
    assert profile.keys == ("a", "b", "c", "d", "e")
    results = compute_drift(con, specs(*BINNED_SPECS, kind="categorical"), "cur", profile=profile)
    oracle = oracle_binned(*categorical_counts(list(ref), list(cur)))
    check_binned(results, oracle)
    assert {r.details["bins"] for r in results} == {6}
    share = by_test(results)["share_change"]
    assert share.details["category"] == "a" and close(share.details["reference_share"], float(np.mean(ref == "a")))


def test_categorical_non_string_values_and_missing(con):
    ref = pa.array([1, 2, 2, 3, None, 3, 3], pa.int64())
    cur = pa.array([2, 2, 4, None, None, 3], pa.int64())
    con.register("ref", pa.table({"x": ref}))
    con.register("cur", pa.table({"x": cur}))
    profile = fit_reference(con, "ref", "categorical")
    assert profile.keys == ("1", "2", "3") and profile.n == 6 and profile.n_missing == 1
    results = compute_drift(con, specs(*BINNED_SPECS, kind="categorical"), "cur", profile=profile)
    check_binned(results, oracle_binned(*categorical_counts(["1", "2", "2", "3", "3", "3"], ["2", "2", "4", "3"])))
    assert {(r.n_current, r.n_missing) for r in results} == {(4, 2)}
    json.dumps(ReferenceProfile.from_dict(json.loads(json.dumps(profile.to_dict()))).to_dict())


# ---- windows -----------------------------------------------------------------------------------------------
def test_multiple_windows_in_one_query(con):
    rng = np.random.default_rng(21)
    ref = rng.normal(size=3000)
    days = np.repeat(np.array(["2024-01-01", "2024-01-02", "2024-01-03"]), [500, 1200, 15])
    cur = np.concatenate([rng.normal(0, 1, 500), rng.normal(0.4, 1, 1200), rng.normal(2, 1, 15)])
    register(con, "ref", x=ref)
    register(con, "cur", x=cur, day=days)
    profile = fit_reference(con, "ref", "numeric")
    compiled = compile_drift(specs(*ALL_NUMERIC), "cur", profile=profile, reference="ref", window="day")
    assert set(compiled.statements) == {"binned_eps_0.0001", "ecdf"}  # two statements for all windows and tests
    results = compute_drift(con, specs(*ALL_NUMERIC), "cur", profile=profile, reference="ref", window="day")
    assert [r.window for r in results[:3]] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    for day in np.unique(days):
        mine = [r for r in results if r.window == day]
        part = cur[days == day]
        check_binned(mine, oracle_binned(*numeric_counts(ref, part, profile.cuts), profile.labels), day)
        check_ecdf(mine, ref, part, day)

    # categorical windows: the union of categories is per window, so a window's result does not depend on others
    cref = rng.choice(list("abc"), 1000)
    ccur = np.array(list("aab") * 50 + list("abcz") * 30)
    cday = np.array([1] * 150 + [2] * 120)
    register(con, "cref", x=cref)
    register(con, "ccur", x=ccur, day=cday)
    cprofile = fit_reference(con, "cref", "categorical")
    cres = compute_drift(con, specs(*BINNED_SPECS, kind="categorical"), "ccur", profile=cprofile, window="day")
    for day in (1, 2):
        check_binned([r for r in cres if r.window == day],
                     oracle_binned(*categorical_counts(list(cref), list(ccur[cday == day]))), day)


def test_empty_and_all_missing_windows_cannot_compute(con):
    register(con, "ref", x=np.arange(100.0))
    register(con, "cur", x=np.array([1.0, 2.0, np.nan, np.nan]), w=np.array([1, 1, 2, 2]))
    profile = fit_reference(con, "ref", "numeric")
    results = compute_drift(con, specs(*ALL_NUMERIC), "cur", profile=profile, reference="ref", window="w")
    for r in results:
        if r.window == 2:
            assert r.statistic is None and r.p_value is None and r.n_current == 0 and r.n_missing == 2, r
        else:
            assert r.statistic is not None and r.n_current == 2, r
    register(con, "nothing", x=np.array([np.nan]))
    with pytest.raises(ValueError, match="no non-missing values"):
        fit_reference(con, "nothing", "numeric")


def test_constant_reference_has_no_normalised_wasserstein(con):
    register(con, "ref", x=np.full(10, 3.0))
    register(con, "cur", x=np.array([3.0, 4.0]))
    r = by_test(compute_drift(con, specs("wasserstein", "ks"), "cur", reference="ref"))
    assert r["wasserstein"].statistic is None
    assert close(r["wasserstein"].details["distance"], stats.wasserstein_distance(np.full(10, 3.0), [3.0, 4.0]))
    check_ecdf([r["ks"]], np.full(10, 3.0), np.array([3.0, 4.0]))


# ---- p-values directly -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n1,n2", [(1, 1), (3, 5), (40, 40), (123, 77), (2000, 2000), (10000, 400),
                                   (10001, 30), (30000, 20000)])
def test_ks_pvalue_methods_match_scipy(n1, n2):
    rng = np.random.default_rng(n1 * 7 + n2)
    for shift in (0.0, 0.1, 0.4):
        a, b = rng.normal(size=n1), rng.normal(shift, size=n2)
        want = stats.ks_2samp(a, b)
        got, _ = pvalues.ks_2samp_pvalue(float(want.statistic), n1, n2)
        assert abs(got - want.pvalue) < TOL, (n1, n2, shift, got, want.pvalue)
    for method in ("exact", "asymp") if n1 > 1 else ():  # scipy's asymp is undefined (nan) for 1 vs 1
        want = stats.ks_2samp(a[:300], b[:200], method=method)
        got, used = pvalues.ks_2samp_pvalue(float(want.statistic), min(n1, 300), min(n2, 200), method)
        assert used == method and abs(got - want.pvalue) < TOL


# ---- registry and specs ------------------------------------------------------------------------------------------
def test_every_drift_test_is_registered_with_schema_docstring_and_sql():
    names = registry.names("drift_test")
    assert set(names) == {"psi", "ks", "wasserstein", "jensen_shannon", "chi_square", "kl", "hellinger",
                          "share_change"}
    for name in names:
        entry = registry.get("drift_test", name)
        assert entry.description and entry.schema["properties"], name
        spec = DriftSpec.from_dict({"test": name})
        assert TESTS[name].build(spec).columns


def test_spec_errors_name_every_problem():
    with pytest.raises(ValueError, match="unknown drift test 'psy'; available: chi_square"):
        DriftSpec.from_dict({"test": "psy"})
    with pytest.raises(ValueError) as err:
        DriftSpec.from_dict({"test": "ks", "kind": "categorical", "n_bins": 3})
    assert "n_bins" in str(err.value) and "applies to numeric" in str(err.value)
    with pytest.raises(ValueError, match="strictly increasing"):
        DriftSpec.from_dict({"test": "psi", "binning": "fixed", "edges": [2, 1]})
    spec = DriftSpec.from_dict({"test": "jensen_shannon"})
    assert spec.log_base == 2.0 and spec.epsilon == 1e-4 and spec.binning == Binning("quantile", 10)


def test_compiled_sql_reads_only_the_declared_columns():
    profile = ReferenceProfile("numeric", 10, 0, (0, 1), ("[-inf, 1)", "[1, inf)"), (5, 5), Binning(), (1.0,))
    compiled = compile_drift(specs("psi"), "SELECT * FROM traces", profile=profile, value="Latency MS",
                             window="Day")
    text = render(compiled.statements["binned_eps_0.0001"])
    assert '"s"."Latency MS"' in text and '"s"."Day"' in text
    with pytest.raises(ValueError, match="fit a profile per binning"):
        compile_drift(specs("psi", n_bins=5), "t", profile=profile)


def test_empty_current_sample_reports_one_window_that_cannot_compute(con):
    register(con, "ref", x=np.arange(10.0))
    con.execute("CREATE TABLE empty_cur (x DOUBLE)")
    profile = fit_reference(con, "ref", "numeric")
    results = compute_drift(con, specs("psi", "chi_square", "ks", "wasserstein"), "empty_cur", profile=profile,
                            reference="ref")
    assert [(r.test, r.statistic, r.n_current) for r in results] == [
        ("psi", None, 0), ("chi_square", None, 0), ("ks", None, 0), ("wasserstein", None, 0)]


@pytest.mark.parametrize("value_counts", [True, False])
def test_both_ecdf_plans_match_scipy_with_ties_and_windows(con, value_counts):
    rng = np.random.default_rng(33)
    ref = np.concatenate([rng.poisson(4, 3000), rng.normal(3, 2, 1000).round(1)]).astype(float)
    cur = np.concatenate([rng.poisson(4.3, 2000), rng.normal(3, 2, 900).round(3)]).astype(float)
    w = rng.integers(0, 3, cur.size)
    register(con, "ref", x=ref)
    register(con, "cur", x=cur, w=w)
    results = compute_drift(con, specs("ks", "wasserstein"), "cur", reference="ref", window="w",
                            value_counts=value_counts)
    for k in range(3):
        check_ecdf([r for r in results if r.window == k], ref, cur[w == k], k)
    profile = fit_reference(con, "ref", "numeric")
    assert profile.n_distinct < profile.n / 10  # the automatic choice would aggregate equal values here
    plan = compile_drift(specs("ks"), "cur", profile=profile, reference="ref").statements["ecdf"]
    assert "counted" in render(plan)
