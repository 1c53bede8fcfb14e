"""The first Spark rewrite: the sampling bucket back to `md5_number(x) % N` (engine/sampling_hash.py).

DuckDB's plans compute the bucket from md5_number's two 64-bit halves (`split_mod`: its 128-bit modulo is ~10x
slower); Spark has no 128-bit integers at all and computes `md5_number(x) % N` from md5's hex digits
(`spark_sampling.md5_number_buckets`). This rewrite runs before every other Spark rewrite (engine/dialects/__init__.py
imports it first), so that none of them sees, or refuses, the halves' 128-bit shift and mask."""
from __future__ import annotations

from sqlglot import exp

from engine.dialects.rewrites import bottom_up, rewrite
from engine.sampling_hash import unsplit


@rewrite("spark")
def md5_number_halves(tree: exp.Expression) -> exp.Expression:
    """`split_mod(md5_number(x), N)` -> `md5_number(x) % N`: the same number, rewritten next for Spark."""
    return bottom_up(tree, lambda node: unsplit(node) or node)
