"""engine/outcome.py: the one operator table and the one Wilson interval, against scipy."""
from __future__ import annotations

import random

import pytest
from scipy import stats

from engine.outcome import OPS, meets, wilson
from engine.report.summary import wilson_interval


@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 20), (20, 20), (7, 20), (1, 1000), (999, 1000)]
                         + [(k, n) for n in (3, 57, 400) for k in random.Random(n).sample(range(n + 1), 3)])
def test_wilson_equals_scipy(k, n):
    want = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson(k, n)
    assert low == pytest.approx(want.low, abs=1e-12) and high == pytest.approx(want.high, abs=1e-12)
    assert wilson_interval(k / n, n) == pytest.approx((want.low, want.high), abs=1e-12)


def test_no_trials_is_no_interval_not_a_certainty():
    assert wilson(0, 0) == (None, None)


def test_the_operators_compare_value_against_bound():
    assert meets(0.93, ">=", 0.9) and not meets(0.9, ">", 0.9) and meets(0, "==", 0.0) and not meets(1, "<", 0)
    assert set(OPS) == {"<=", "<", ">=", ">", "=="}
