"""Gate statistics against scipy as the oracle."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from engine.gate.stats import mcnemar_exact_p, paired_bootstrap_ci, paired_standard_error


@pytest.mark.parametrize("b01,b10", [(0, 0), (1, 0), (0, 1), (5, 5), (10, 2), (2, 10), (30, 12), (0, 25),
                                     (100, 80), (1000, 930), (7, 8), (50000, 49000)])
def test_mcnemar_exact_equals_scipy_binomtest(b01, b10):
    expected = 1.0 if b01 + b10 == 0 else stats.binomtest(b01, b01 + b10, 0.5).pvalue
    assert mcnemar_exact_p(b01, b10) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_exact_on_random_counts():
    rng = np.random.default_rng(3)
    for _ in range(200):
        b01, b10 = (int(x) for x in rng.integers(0, 400, size=2))
        expected = 1.0 if b01 + b10 == 0 else stats.binomtest(b01, b01 + b10, 0.5).pvalue
        assert mcnemar_exact_p(b01, b10) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def _histogram(diffs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, counts = np.unique(diffs, return_counts=True)
    return values, counts


def test_bootstrap_is_deterministic_for_a_seed_and_changes_with_it():
    values, counts = _histogram(np.array([1, 0, 0, -1, 1, 1, 0, 1] * 50, dtype=float))
    a = paired_bootstrap_ci(values, counts, 1000, seed=11, confidence=0.95)
    b = paired_bootstrap_ci(values, counts, 1000, seed=11, confidence=0.95)
    c = paired_bootstrap_ci(values, counts, 1000, seed=12, confidence=0.95)
    assert (a.low, a.high) == (b.low, b.high)
    assert (a.low, a.high) != (c.low, c.high)


@pytest.mark.parametrize("kind", ["pass_fail", "continuous"])
def test_bootstrap_interval_agrees_with_the_analytic_paired_standard_error(kind):
    rng = np.random.default_rng(5)
    n = 4000
    if kind == "pass_fail":
        base = rng.random(n) < 0.6
        chal = np.where(rng.random(n) < 0.85, base, rng.random(n) < 0.75)
        diffs = chal.astype(float) - base.astype(float)
    else:
        diffs = np.round(rng.normal(0.03, 0.4, size=n), 2)  # token-F1-like differences with ties
    values, counts = _histogram(diffs)
    ci = paired_bootstrap_ci(values, counts, 4000, seed=1, confidence=0.95)
    se = paired_standard_error(values, counts)
    assert se == pytest.approx(np.std(diffs) / np.sqrt(n), rel=1e-12)
    assert ci.mean == pytest.approx(diffs.mean(), abs=1e-12)
    # The percentile interval of the mean is mean +- 1.96 se up to Monte Carlo error (~3 % of the width with
    # 4000 resamples); the bound is loose enough never to flake and tight enough to catch a wrong scale.
    half_width = (ci.high - ci.low) / 2
    assert half_width == pytest.approx(1.959964 * se, rel=0.08)
    assert (ci.low + ci.high) / 2 == pytest.approx(diffs.mean(), abs=0.2 * se)


def test_count_bootstrap_matches_a_row_bootstrap_in_distribution():
    rng = np.random.default_rng(9)
    diffs = rng.choice([-1.0, 0.0, 1.0], p=[0.1, 0.7, 0.2], size=2000)
    values, counts = _histogram(diffs)
    counts_ci = paired_bootstrap_ci(values, counts, 4000, seed=2, confidence=0.9)
    rows = np.array([diffs[rng.integers(0, len(diffs), len(diffs))].mean() for _ in range(4000)])
    low, high = np.quantile(rows, [0.05, 0.95])
    assert counts_ci.low == pytest.approx(low, abs=0.004)
    assert counts_ci.high == pytest.approx(high, abs=0.004)
