"""Agreement statistics against independent references: scikit-learn's cohen_kappa_score and confusion_matrix,
scipy's spearmanr and bootstrap, and hand-computed tables."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from engine.judges.agreement import Confusion, accuracy, cohen_kappa, kappa_interval, spearman


def table(pp: int, pf: int, fp: int, ff: int) -> tuple[list[bool], list[bool]]:
    """Verdict vectors (human, judge) with the given confusion cells."""
    human = [True] * (pp + pf) + [False] * (fp + ff)
    judge = [True] * pp + [False] * pf + [True] * fp + [False] * ff
    return human, judge


@pytest.mark.parametrize("cells,kappa", [
    ((20, 5, 10, 15), 0.4),  # po 0.70, chance 0.50: (0.7 - 0.5) / 0.5
    ((45, 15, 25, 15), 0.06 / 0.46),  # po 0.60, chance 0.6*0.7 + 0.4*0.3 = 0.54
    ((25, 35, 5, 35), 0.14 / 0.54),  # po 0.60, people pass 0.6, judge 0.3: chance 0.18 + 0.28 = 0.46
    ((10, 0, 0, 10), 1.0),
    ((0, 10, 10, 0), -1.0),
])
def test_kappa_on_hand_computed_tables(cells, kappa):
    human, judge = table(*cells)
    c = Confusion.of(human, judge)
    assert c.cells().tolist() == list(cells)
    assert cohen_kappa(c) == pytest.approx(kappa, abs=1e-12)
    assert cohen_kappa(c) == pytest.approx(cohen_kappa_score(human, judge), abs=1e-12)
    assert accuracy(c) == pytest.approx((cells[0] + cells[3]) / sum(cells))


@pytest.mark.parametrize("seed", range(8))
def test_kappa_and_confusion_match_scikit_learn_on_random_verdicts(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    human = rng.random(n) < rng.uniform(0.1, 0.9)
    agree = rng.random(n) < rng.uniform(0.3, 1.0)
    judge = np.where(agree, human, ~human)
    c = Confusion.of(human.tolist(), judge.tolist())
    matrix = confusion_matrix(human, judge, labels=[True, False])
    assert c.cells().tolist() == matrix.ravel().tolist()
    reference = cohen_kappa_score(human, judge)
    if np.isnan(reference):
        assert cohen_kappa(c) is None
    else:
        assert cohen_kappa(c) == pytest.approx(reference, abs=1e-12)


def test_kappa_is_undefined_when_everything_gets_one_verdict():
    human, judge = table(12, 0, 0, 0)
    assert cohen_kappa(Confusion.of(human, judge)) is None
    assert cohen_kappa(Confusion.of([], [])) is None
    assert accuracy(Confusion.of([], [])) is None
    interval = kappa_interval(Confusion.of(human, judge), 200, 1)
    assert (interval.low, interval.high, interval.undefined) == (None, None, 200)


def test_bootstrap_interval_is_seeded_and_matches_an_item_level_bootstrap():
    human, judge = table(40, 8, 12, 30)
    c = Confusion.of(human, judge)
    a = kappa_interval(c, 4000, seed=11)
    assert a == kappa_interval(c, 4000, seed=11)  # same seed, same interval
    assert a != kappa_interval(c, 4000, seed=12)
    assert a.low < cohen_kappa(c) < a.high and a.undefined == 0
    # scipy resamples the answers themselves (paired) and recomputes scikit-learn's kappa: the cell-count draws
    # are the same distribution, so the percentile bounds agree up to Monte Carlo error
    kappas = {}

    def sklearn_kappa(h, j):
        # a resample's kappa depends only on its contingency table: scikit-learn computes each distinct table's once
        # (the same values as calling it on every resample, in ~1/3 of the time)
        key = tuple(sorted(Counter(zip(h.tolist(), j.tolist())).items()))
        if key not in kappas:
            kappas[key] = cohen_kappa_score(h, j)
        return kappas[key]

    ref = stats.bootstrap((np.array(human), np.array(judge)), sklearn_kappa, paired=True,
                          vectorized=False, n_resamples=4000, method="percentile", confidence_level=0.95,
                          random_state=np.random.default_rng(5))
    assert a.low == pytest.approx(ref.confidence_interval.low, abs=0.03)
    assert a.high == pytest.approx(ref.confidence_interval.high, abs=0.03)
    narrower = kappa_interval(c, 4000, seed=11, level=0.5)
    assert a.low < narrower.low < narrower.high < a.high


@pytest.mark.parametrize("seed", range(6))
def test_spearman_matches_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 200))
    human = rng.integers(1, 6, n).astype(float)  # a 1-5 grade: many ties
    judge = np.round(np.clip(human / 5 + rng.normal(0, 0.3, n), 0, 1), 1)
    reference = stats.spearmanr(human, judge).statistic
    got = spearman(human.tolist(), judge.tolist())
    if np.isnan(reference):
        assert got is None
    else:
        assert got == pytest.approx(reference, abs=1e-12)


def test_spearman_is_undefined_on_constant_or_tiny_input():
    assert spearman([1, 2], [0.1, 0.2]) is None
    assert spearman([3, 3, 3, 3], [0.1, 0.5, 0.2, 0.9]) is None
    assert spearman([1, 2, 3], [0.3, 0.2, 0.1]) == pytest.approx(-1.0)
