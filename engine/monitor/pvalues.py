"""P-values for the drift tests, in plain Python/numpy (no scipy at run time; scipy is the test oracle).

DuckDB SQL has no chi-square or Kolmogorov distribution function, so the statistics are computed in SQL and
only these small functions run in Python, once per window.

* `chi2_sf(x, dof)`: the chi-square survival function, i.e. the regularised upper incomplete gamma function
  Q(dof/2, x/2) (series / Lentz continued fraction, ~1e-14). Equals scipy.stats.chi2.sf.
* `ks_2samp_pvalue(d, n1, n2, method)`: the two-sided two-sample Kolmogorov-Smirnov p-value, following
  scipy.stats.ks_2samp: method "auto" is exact when max(n1, n2) <= 10,000 and asymptotic otherwise, where
  "asymptotic" means the finite-n Kolmogorov distribution at n = round(n1*n2/(n1+n2)) (scipy's kstwo.sf).
* `kolmogorov_sf(n, x)`: P(D_n >= x) for the one-sample two-sided statistic (Simard & L'Ecuyer 2011 regions:
  Ruben-Gambino bounds, Durbin/Marsaglia-Tsang-Wang matrix, Pelz-Good expansion, 2 x Smirnov).
"""
from __future__ import annotations

import math

import numpy as np

KS_MAX_EXACT_N = 10_000  # method "auto" is exact up to this sample size (as scipy.stats.ks_2samp)
_EPS = 1e-16
_TINY = 1e-300
_MINLOG = -745.1332191019412  # log of the smallest subnormal double


# ---- chi-square -----------------------------------------------------------------------------------------
def gammaincc(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x) = Gamma(a, x) / Gamma(a), for a > 0, x >= 0."""
    if a <= 0 or x < 0 or math.isnan(x):
        return math.nan
    if x == 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    log_prefactor = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        # series for P(a, x): sum x^k / (a (a+1) ... (a+k)); Q = 1 - P
        term = total = 1.0 / a
        ap = a
        for _ in range(100_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * _EPS:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefactor))
    # continued fraction for Q(a, x), modified Lentz
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return min(1.0, math.exp(log_prefactor) * h)


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for X ~ chi-square with `dof` degrees of freedom (scipy.stats.chi2.sf(x, dof))."""
    if dof <= 0:
        return math.nan
    if math.isinf(x):
        return 0.0
    return gammaincc(dof / 2.0, max(x, 0.0) / 2.0)


# ---- two-sample Kolmogorov-Smirnov ---------------------------------------------------------------------
def ks_2samp_pvalue(d: float, n1: int, n2: int, method: str = "auto") -> tuple[float, str]:
    """Two-sided p-value of the two-sample KS statistic `d` for sample sizes n1, n2, and the method used.

    "exact": the probability that a uniformly random lattice path from (0, 0) to (n1, n2) leaves the band
    |x/n1 - y/n2| < d (d rounded to the lattice, as scipy does); "asymp": kolmogorov_sf(round(en), d) with
    en = n1*n2/(n1+n2). "auto" picks exact when max(n1, n2) <= 10,000."""
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
    return float(min(max(kolmogorov_sf(round(en), d), 0.0), 1.0)), "asymp"


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


# ---- the Kolmogorov distribution for finite n -------------------------------------------------------------
def kolmogorov_sf(n: int, x: float) -> float:
    """P(D_n >= x) for the two-sided one-sample KS statistic D_n (scipy.stats.kstwo.sf(x, n)).

    Region choice of Simard & L'Ecuyer (2011), as in scipy: exact bounds near 1/(2n) and 1, twice the
    one-sided Smirnov tail where the two tails cannot both be crossed or the tail is small, the
    Durbin matrix (Marsaglia-Tsang-Wang) for small n x^2, and the Pelz-Good expansion for large n."""
    if n <= 0:
        return math.nan
    if x >= 1.0:
        return 0.0
    if x <= 0.0:
        return 1.0
    t = n * x
    if t <= 1.0:
        if t <= 0.5:
            return 1.0
        if n <= 140:
            cdf = float(np.prod(np.arange(1, n + 1) * (1.0 / n) * (2 * t - 1)))
        else:
            cdf = math.exp(_log_factorial_over_power(n) + n * math.log(2 * t - 1))
        return _clip(1.0 - cdf)
    if t >= n - 1:
        return _clip(2 * (1.0 - x) ** n)
    if x >= 0.5:
        return _clip(2 * smirnov_sf(n, x))
    nx2 = t * x
    if n <= 140:
        if nx2 <= 4:
            # scipy uses Pomeranz's recursion for 0.754693 < n x^2 <= 4; the Durbin matrix is exact there too
            return _clip(1.0 - _durbin_cdf(n, x))
        return _clip(2 * smirnov_sf(n, x))
    if nx2 >= 370.0:
        return 0.0
    if nx2 >= 2.2:
        return _clip(2 * smirnov_sf(n, x))
    if n <= 100_000 and n * x ** 1.5 <= 1.4:
        return _clip(1.0 - _durbin_cdf(n, x))
    return _clip(_pelz_good_sf(n, x))


def _clip(p: float) -> float:
    return min(1.0, max(0.0, p))


def _log_factorial_over_power(n: int) -> float:
    """log(n! / n^n): exact below 100, else Stirling's series with n log n removed up front (no cancellation)."""
    if n < 100:
        return math.log(math.factorial(n)) - n * math.log(n)
    coeffs = [-2.955065359477124183e-2, 6.4102564102564102564e-3, -1.9175269175269175269e-3,
              8.4175084175084175084e-4, -5.952380952380952381e-4, 7.9365079365079365079e-4,
              -2.7777777777777777778e-3, 8.3333333333333333333e-2]  # B_2j / (2j (2j-1)), j = 8..1
    rn = 1.0 / n
    return math.log(n) / 2 - n + math.log(2 * math.pi) / 2 + rn * float(np.polyval(coeffs, rn * rn))


def _durbin_cdf(n: int, d: float) -> float:
    """P(D_n < d) by Durbin's matrix formula, evaluated as in Marsaglia, Tsang & Wang (2003).

    With d = (k - h)/n, 0 <= h < 1, P = n!/n^n (H^n)[k, k] for the (2k-1)-square matrix H of the paper;
    H^n is formed by repeated squaring with a power-of-two scale kept aside to avoid overflow."""
    nd = n * d
    if nd <= 0.5:
        return 0.0
    k = math.ceil(nd)
    h = k - nd
    m = 2 * k - 1
    fact = np.array([1.0 / math.factorial(i) if i < 171 else 0.0 for i in range(m + 1)])
    H = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            if i - j + 1 >= 0:
                H[i, j] = fact[i - j + 1]
    powers = h ** np.arange(1, m + 1)
    H[:, 0] = (1.0 - powers) * fact[1:m + 1]
    H[m - 1, :] = (1.0 - powers[::-1]) * fact[m:0:-1]
    H[m - 1, 0] = (1.0 - 2 * h ** m + max(0.0, 2 * h - 1) ** m) * fact[m]
    result, result_exp = np.eye(m), 0
    base, base_exp = H, 0
    e = n
    while e > 0:
        if e & 1:
            result, result_exp = result @ base, result_exp + base_exp
        e >>= 1
        if e:
            base, base_exp = base @ base, 2 * base_exp
            top = abs(base[k - 1, k - 1])
            if top > 2.0 ** 128:
                base, base_exp = base * 2.0 ** -128, base_exp + 128
        top = abs(result[k - 1, k - 1])
        if top > 2.0 ** 128:
            result, result_exp = result * 2.0 ** -128, result_exp + 128
    value = result[k - 1, k - 1]
    if value <= 0:
        return 0.0
    log_p = math.log(value) + result_exp * math.log(2.0) + _log_factorial_over_power(n)
    return _clip(math.exp(log_p))


def _pelz_good_sf(n: int, x: float) -> float:
    """1 - P(D_n <= x) from the Pelz-Good (1976) expansion K0 + K1/sqrt(n) + K2/n + K3/n^1.5 in z = x sqrt(n)."""
    z = math.sqrt(n) * x
    if -math.pi ** 2 / 8 / z ** 2 < -708:
        return 1.0
    pi2, pi4, pi6 = math.pi ** 2, math.pi ** 4, math.pi ** 6
    z2, z4, z6 = z * z, z ** 4, z ** 6
    maxk = math.ceil(16 * z / math.pi)
    m = 2 * np.arange(1, maxk + 1, dtype=float) - 1  # odd integers
    w = np.exp(-pi2 * m * m / (8 * z2))
    m2, m4, m6 = m ** 2, m ** 4, m ** 6
    c1 = -z2 + pi2 * m2 / 4
    c2 = (6 * z6 + 2 * z4) + (2 * z4 - 5 * z2) * pi2 / 4 * m2 + pi4 * (1 - 2 * z2) / 16 * m4
    c3 = ((-30 * z6 - 90 * z ** 8) + pi2 * (135 * z4 - 96 * z6) / 4 * m2
          + pi4 * (-60 * z2 + 212 * z4) / 16 * m4 + pi6 * (5 - 30 * z2) / 64 * m6)
    root = math.sqrt(2 * math.pi)
    k0 = root / z * float(np.sum(w))
    k1 = root / (6 * z4) * float(np.sum(c1 * w))
    k2 = root / (72 * z ** 7) * float(np.sum(c2 * w))
    k3 = root / (6480 * z ** 10) * float(np.sum(c3 * w))
    kk = np.arange(1, maxk + 1, dtype=float) ** 2
    wk = np.exp(-pi2 * kk / (2 * z2))
    k2 += pi2 * root / (-36 * z ** 3) * float(np.sum(kk * wk))
    k3 += pi2 * root / (216 * z6) * float(np.sum((3 * z2 - pi2 * kk) * kk * wk))
    cdf = k0 + k1 / math.sqrt(n) + k2 / n + k3 / n ** 1.5
    return 1.0 - cdf


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _lgamma(z: np.ndarray) -> np.ndarray:
    """log Gamma(z) for an array z > 0, vectorised (numpy has no lgamma ufunc; a Python loop over 10^5 terms
    took ~0.2 s per KS p-value): math.lgamma below 20, above it Stirling's series
    (z - 1/2) log z - z + log(2 pi) / 2 + 1/(12 z) - 1/(360 z^3) + 1/(1260 z^5) - ..., cut where the next term
    is below 1e-17 (to the z^-11 term below 1000, z^-3 below 10^4, z^-1 above), far below the rounding of the
    result (its ulp is > 1e-12 there). In-place arithmetic: the arrays are large and temporaries cost."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    small = z < 20.0
    if small.any():
        out[small] = [math.lgamma(v) for v in z[small].tolist()]
    mid = (z >= 20.0) & (z < 1000.0)
    if mid.any():
        big = z[mid]
        inv = 1.0 / big
        inv2 = inv * inv
        series = inv * (1 / 12 + inv2 * (-1 / 360 + inv2 * (1 / 1260 + inv2 * (-1 / 1680 + inv2 * (
            1 / 1188 + inv2 * (-691 / 360360))))))
        out[mid] = (big - 0.5) * np.log(big) - big + _HALF_LOG_2PI + series
    for lo, hi, terms in ((1000.0, 1e4, 2), (1e4, math.inf, 1)):
        chosen = (z >= lo) & (z < hi)
        if not chosen.any():
            continue
        big = z if chosen.all() else z[chosen]
        series = np.divide(1 / 12, big)  # 1/(12 z)
        if terms == 2:
            series -= (1 / 360) / (big * big * big)
        result = np.log(big)
        result *= big - 0.5
        result -= big
        result += _HALF_LOG_2PI
        result += series
        out[chosen] = result
    return out


def smirnov_sf(n: int, x: float) -> float:
    """P(D+_n >= x) for the one-sided one-sample KS statistic (scipy.special.smirnov(n, x)).

    The Birnbaum-Tingey sum x * sum_j C(n, j) (1 - x - j/n)^(n-j) (x + j/n)^(j-1) over j <= n(1 - x), in log
    space; closed forms for x <= 1/n and x >= 1 - 1/n, and exp(-(6nx + 1)^2 / 18n) for n > 1,000,000."""
    if n == 1:
        return 1.0 - x
    if x <= 0.0:
        return 1.0
    if x >= 1.0:
        return 0.0
    nx = n * x
    nx_floor = math.floor(nx)
    alpha = nx - nx_floor
    if nx_floor == 0 or (nx_floor == 1 and alpha == 0):
        return 1.0 - x * (1.0 + x) ** (n - 1)
    if -2 * n * x * x < _MINLOG:
        return 0.0
    if nx_floor >= n - 1:
        return (1.0 - x) ** n
    if n > 1_000_000:
        return math.exp(-(6.0 * n * x + 1) ** 2 / 18.0 / n)
    last = n - nx_floor - 1  # the j = n(1 - x) term is zero when n x is an integer
    j = np.arange(0, last + 1, dtype=float)
    lg = _lgamma(np.arange(1, n + 2, dtype=float))  # lg[k] = log k!; j + 1 and n - j + 1 both lie in [1, n + 1]
    log_terms = lg[:last + 1] + lg[n::-1][:last + 1]
    np.subtract(math.lgamma(n + 1), log_terms, out=log_terms)  # log C(n, j)
    nj = n - j
    with np.errstate(divide="ignore"):
        a = nj - nx
        a /= n
        a = np.log(a, out=a)
        a *= nj
        log_terms += a
        b = j / n
        b += x
        b = np.log(b, out=b)
        j -= 1
        b *= j
        log_terms += b
    top = float(np.max(log_terms))
    log_terms -= top
    return _clip(x * math.exp(top) * float(np.sum(np.exp(log_terms, out=log_terms))))
