"""Agreement between a judge and people: confusion matrix, accuracy, Cohen's kappa with a bootstrap interval,
and Spearman's rank correlation for graded judgements.

Verdicts are binary (pass/fail), so a slice of n answers is summed up by its 2x2 confusion matrix. Resampling
the answers with replacement is the same as drawing the four cell counts from a multinomial with the observed
cell shares: the bootstrap draws those counts directly (vectorised, exact, no per-answer loop), seeded so a
calibration is reproducible.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Confusion:
    """Counts of (human verdict, judge verdict)."""

    pass_pass: int  # both pass
    pass_fail: int  # the person passed it, the judge failed it
    fail_pass: int  # the person failed it, the judge passed it
    fail_fail: int

    @classmethod
    def of(cls, human: list[bool], judge: list[bool]) -> "Confusion":
        if len(human) != len(judge):
            raise ValueError("human and judge verdicts differ in length")
        pairs = list(zip(human, judge))
        return cls(pairs.count((True, True)), pairs.count((True, False)), pairs.count((False, True)),
                   pairs.count((False, False)))

    @property
    def n(self) -> int:
        return self.pass_pass + self.pass_fail + self.fail_pass + self.fail_fail

    def cells(self) -> np.ndarray:
        return np.array([self.pass_pass, self.pass_fail, self.fail_pass, self.fail_fail], dtype=np.int64)

    def to_json(self) -> dict:
        return {"human_pass": {"judge_pass": self.pass_pass, "judge_fail": self.pass_fail},
                "human_fail": {"judge_pass": self.fail_pass, "judge_fail": self.fail_fail}}


def accuracy(c: Confusion) -> float | None:
    return (c.pass_pass + c.fail_fail) / c.n if c.n else None


def _kappa(cells: np.ndarray) -> np.ndarray:
    """Cohen's kappa of confusion cells (..., 4) = (pp, pf, fp, ff); NaN where undefined (chance agreement 1)."""
    cells = cells.astype(np.float64)
    n = cells.sum(axis=-1)
    pp, pf, fp, ff = (cells[..., i] for i in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = (pp + ff) / n
        human_pass, judge_pass = (pp + pf) / n, (pp + fp) / n
        chance = human_pass * judge_pass + (1 - human_pass) * (1 - judge_pass)
        kappa = (observed - chance) / (1 - chance)
    return np.where(np.isclose(chance, 1.0) | (n == 0), np.nan, kappa)


def cohen_kappa(c: Confusion) -> float | None:
    """(observed - chance agreement) / (1 - chance agreement); None when undefined: no answers, or both sides
    gave one and the same verdict to everything (chance agreement is then 1)."""
    value = float(_kappa(c.cells()))
    return None if np.isnan(value) else value


@dataclass(frozen=True)
class Interval:
    low: float | None
    high: float | None
    resamples: int
    seed: int
    level: float
    undefined: int  # resamples where kappa was undefined (left out of the percentiles)

    def to_json(self) -> dict:
        return dict(self.__dict__)


def kappa_interval(c: Confusion, resamples: int, seed: int, level: float = 0.95) -> Interval:
    """Percentile bootstrap interval of kappa: `resamples` resamples of the n answers with replacement."""
    if c.n == 0:
        return Interval(None, None, resamples, seed, level, resamples)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(c.n, c.cells() / c.n, size=resamples)
    kappas = _kappa(draws)
    defined = kappas[~np.isnan(kappas)]
    if defined.size == 0:
        return Interval(None, None, resamples, seed, level, resamples)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return Interval(float(low), float(high), resamples, seed, level, int(resamples - defined.size))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rho: Pearson's correlation of the average ranks. None with fewer than 3 pairs or when either
    side is constant (a rank correlation is then undefined)."""
    if len(x) != len(y):
        raise ValueError("x and y differ in length")
    if len(x) < 3:
        return None
    rx, ry = _average_ranks(np.asarray(x, dtype=np.float64)), _average_ranks(np.asarray(y, dtype=np.float64))
    dx, dy = rx - rx.mean(), ry - ry.mean()
    denominator = float(np.sqrt((dx * dx).sum() * (dy * dy).sum()))
    return None if denominator == 0 else float((dx * dy).sum() / denominator)
