"""Value and consequence apart: how a computed value is held against a configured bound.

Rule kinds, KPIs, drift rules and parity checks compute a value; whether it passes is a comparison with the
bound the config declares, made here with one operator table, and intervals on proportions use one Wilson
interval. (scipy computes the same interval for whole counts and is the oracle in the tests; this one also takes
the fractional counts of a weighted rate, which scipy's binomtest does not.)
"""
from __future__ import annotations

import math
import operator
from typing import Callable

OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}
OP_TEXT = {"<=": "≤", "<": "<", ">=": "≥", ">": ">", "==": "="}
Z95 = 1.959963984540054  # the two-sided 95 % normal quantile


def meets(value: float, op: str, bound: float) -> bool:
    """`value op bound`, e.g. meets(0.93, ">=", 0.9)."""
    return OPS[op](value, bound)


def wilson(k: float, n: float, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval of k successes in n trials; (None, None) when there are no trials."""
    if not n:
        return None, None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
