"""Paired statistics for the gate: McNemar's exact test and a seeded paired bootstrap.

Both are checked against scipy in tests. (scipy is a runtime dependency since the drift p-values use it; these
stay numpy/math: a gate then never imports scipy, ~0.3 s, and the oracle tests stay independent.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def mcnemar_exact_p(b01: int, b10: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of b01 successes in b01 + b10 discordant pairs at 1/2.

    Equals scipy.stats.binomtest(b01, b01 + b10, 0.5).pvalue. Summed in log space so that 100k discordant
    pairs neither overflow nor lose precision."""
    n = b01 + b10
    if n == 0:
        return 1.0
    k = min(b01, b10)
    if 2 * k == n:
        return 1.0
    log_terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2)
                 for i in range(k + 1)]
    top = max(log_terms)
    tail = math.exp(top) * sum(math.exp(t - top) for t in log_terms)
    return min(1.0, 2.0 * tail)


@dataclass(frozen=True)
class BootstrapCI:
    mean: float
    low: float
    high: float
    resamples: int
    seed: int
    method: str  # "counts" (multinomial over distinct differences) or "rows"


def paired_bootstrap_ci(diff_values: np.ndarray, diff_counts: np.ndarray, resamples: int, seed: int,
                        confidence: float) -> BootstrapCI:
    """Percentile CI of the mean paired difference.

    The data arrive as a histogram (distinct difference, how many cases): resampling n cases with
    replacement is then a multinomial draw over the distinct values, which is exactly the row bootstrap's
    distribution at a cost independent of n. Pass/fail metrics have three distinct differences (-1, 0, 1)."""
    diff_values = np.asarray(diff_values, dtype=float)
    diff_counts = np.asarray(diff_counts, dtype=np.int64)
    n = int(diff_counts.sum())
    if n == 0:
        raise ValueError("no paired cases to resample")
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, diff_counts / n, size=resamples)
    means = draws @ diff_values / n
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    mean = float(diff_counts @ diff_values / n)
    return BootstrapCI(mean, float(low), float(high), resamples, seed, "counts")


def paired_standard_error(diff_values: np.ndarray, diff_counts: np.ndarray) -> float:
    """The analytic standard error of the mean paired difference (population sd / sqrt(n))."""
    values = np.asarray(diff_values, dtype=float)
    counts = np.asarray(diff_counts, dtype=float)
    n = counts.sum()
    mean = counts @ values / n
    var = counts @ (values - mean) ** 2 / n
    return float(math.sqrt(var / n))
