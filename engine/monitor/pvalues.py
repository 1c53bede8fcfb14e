"""P-values for the drift tests: the plan's only Python step (engine/monitor/rule_plan.py), run on the statistic
statements' rows, once per window. DuckDB SQL has no chi-square or Kolmogorov distribution function.

* `chi2_sf(x, dof)`: scipy.stats.chi2.sf.
* `ks_2samp_pvalue(d, n1, n2, method)`: the two-sided two-sample Kolmogorov-Smirnov p-value of scipy.stats.ks_2samp
  from the statistic and the sizes alone (scipy needs the samples): method "auto" is exact when
  max(n1, n2) <= 10,000 and asymptotic otherwise, where "asymptotic" is scipy.stats.kstwo.sf at
  n = round(n1*n2/(n1+n2)), as scipy does. The exact lattice-path probability is computed here: scipy has it
  only as a private function. scipy is imported when a p-value is first needed (it is slow to import).
"""
from __future__ import annotations

import math

import numpy as np

KS_MAX_EXACT_N = 10_000  # method "auto" is exact up to this sample size (as scipy.stats.ks_2samp)


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for X ~ chi-square with `dof` degrees of freedom (scipy.stats.chi2.sf(x, dof))."""
    if dof <= 0:
        return math.nan
    from scipy.stats import chi2

    return float(chi2.sf(x, dof))


def ks_2samp_pvalue(d: float, n1: int, n2: int, method: str = "auto") -> tuple[float, str]:
    """Two-sided p-value of the two-sample KS statistic `d` for sample sizes n1, n2, and the method used.

    "exact": the probability that a uniformly random lattice path from (0, 0) to (n1, n2) leaves the band
    |x/n1 - y/n2| < d (d rounded to the lattice, as scipy does); "asymp": scipy.stats.kstwo.sf(d, round(en))
    with en = n1*n2/(n1+n2). "auto" picks exact when max(n1, n2) <= 10,000."""
    if n1 <= 0 or n2 <= 0:
        return math.nan, method
    if method == "auto":
        method = "exact" if max(n1, n2) <= KS_MAX_EXACT_N else "asymp"
    g = math.gcd(n1, n2)
    if method == "exact" and (n1 // g) >= np.iinfo(np.int32).max / (n2 // g):
        method = "asymp"
    if method == "exact":
        lcm = (n1 // g) * n2
        h = round(d * lcm)
        p = 1.0 if h == 0 else _prob_leave_band(n1, n2, g, h)
        return float(min(max(p, 0.0), 1.0)), "exact"
    big, small = max(n1, n2), min(n1, n2)
    en = float(big) * float(small) / (float(big) + float(small))
    from scipy.stats import kstwo

    return float(min(max(kstwo.sf(d, round(en)), 0.0), 1.0)), "asymp"


def _prob_leave_band(m: int, n: int, g: int, h: int) -> float:
    """P(max |(n/g) x - (m/g) y| >= h) along a uniformly random monotone lattice path (0,0) -> (m,n).

    Walks the anti-diagonals x + y = s carrying the probability mass still strictly inside the band; a step
    goes right with probability (m - x) / (m + n - s), which makes every path equally likely. Mass that lands
    outside the band is absorbed and summed, so small p-values keep their relative precision."""
    mg, ng = m // g, n // g
    slope, total = mg + ng, m + n
    xs_all = np.arange(total + 2, dtype=float)
    lo, q = 0, np.ones(1)  # q[i] = mass at (x = lo + i, y = s - x)
    absorbed = 0.0
    for s in range(total):
        size, rest = q.size, float(total - s)
        xs = xs_all[lo:lo + size]
        right = q * ((m - xs) / rest)  # to (x + 1, y)
        up = q * ((n - s + xs) / rest)  # to (x, y + 1)
        new = np.empty(size + 1)
        new[0] = up[0]
        new[1:size] = right[:-1] + up[1:]
        new[size] = right[-1]
        # inside at s + 1: |slope * x - mg * (s + 1)| < h, in exact integer arithmetic
        centre = mg * (s + 1)
        a = max((centre - h) // slope + 1, lo, s + 1 - n)
        b = min((centre + h - 1) // slope, lo + size, m)
        if a > b:
            return min(1.0, absorbed + float(new.sum()))
        absorbed += float(new[:a - lo].sum()) + float(new[b - lo + 1:].sum())
        lo, q = a, new[a - lo:b - lo + 1]
    return min(1.0, absorbed)
