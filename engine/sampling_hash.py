"""The sampling hash: which bucket in [0, BUCKETS) a trace falls in for a salt. Every hash sample uses it (the
bridge's samplers, the monitor's online sample, the judges' trace sample): a trace is sampled at rate r when its
bucket is below r * BUCKETS, so a sample at a higher rate contains the one at a lower rate.

Version 1 (the only one): md5 of the UTF-8 bytes of salt || trace_id, read as an unsigned 128-bit integer with
the first byte least significant (DuckDB's `md5_number`), modulo 1,000,000. Spark has no md5_number and no
128-bit integers; engine/dialects/spark_sampling.py computes the same bucket there from md5's hex digits, so both
backends sample the same traces. Changing the function changes which traces are sampled: a new function gets a
new `SAMPLING_HASH` version, and the version is recorded with every sample that leaves the store
(`bridge_exports.sampling_hash`, the bridge's result)."""
from __future__ import annotations

import hashlib

from sqlglot import exp

SAMPLING_HASH = 1
BUCKETS = 1_000_000


def bucket(salt: exp.Expression | str, trace_id: exp.Expression) -> exp.Expression:
    """The SQL bucket of (salt, trace_id): `md5_number(salt || trace_id) % BUCKETS` in DuckDB's dialect, computed
    in 64-bit halves (`split_mod`)."""
    salt_node = exp.Literal.string(salt) if isinstance(salt, str) else salt
    number = exp.Anonymous(this="md5_number", expressions=[exp.DPipe(this=salt_node, expression=trace_id, safe=True)])
    return split_mod(number, BUCKETS)


_LOW64 = (1 << 64) - 1


def split_mod(number: exp.Expression, modulus: int) -> exp.Expression:
    """`number % modulus` for a UHUGEINT (md5_number) from its two 64-bit halves, which DuckDB divides ~10x faster
    than the 128-bit value (its 128-bit modulo cost ~12 s per million traces sampled): with number = hi * 2^64 + lo,
    number mod N = ((hi mod N) * (2^64 mod N) + lo mod N) mod N, every term below N^2 + N < 2^64 for N < 2^32.
    The same value for every input (tests/test_sampling_hash.py); `unsplit` gives back `number % modulus`."""
    if not 0 < modulus < 1 << 32:
        raise ValueError(f"split_mod: modulus {modulus} must be in [1, 2^32)")

    def u64(node: exp.Expression) -> exp.Expression:
        return exp.cast(node, exp.DataType.build("UBIGINT", dialect="duckdb"))
    n = u64(exp.Literal.number(modulus))
    hi = u64(exp.BitwiseRightShift(this=number.copy(), expression=exp.Literal.number(64)))
    lo = u64(exp.BitwiseAnd(this=number.copy(), expression=exp.Literal.number(_LOW64)))
    total = exp.Add(this=exp.Mul(this=exp.paren(exp.Mod(this=hi, expression=n.copy())),
                                 expression=u64(exp.Literal.number(pow(2, 64, modulus)))),
                    expression=exp.Mod(this=lo, expression=n.copy()))
    return exp.Mod(this=exp.paren(total), expression=n.copy())


def unsplit(node: exp.Expression) -> exp.Expression | None:
    """`number % N` when `node` is exactly `split_mod(number, N)`, else None (for engines that rewrite the plain
    modulo: engine/dialects/spark_sampling.py)."""
    if not (isinstance(node, exp.Mod) and isinstance(node.expression, exp.Cast)
            and isinstance(node.expression.this, exp.Literal) and node.expression.this.this.isdigit()):
        return None
    shift = node.find(exp.BitwiseRightShift)
    if shift is None:
        return None
    modulus = int(node.expression.this.this)
    if not 0 < modulus < 1 << 32 or split_mod(shift.this, modulus) != node:
        return None
    return exp.Mod(this=shift.this.copy(), expression=exp.Literal.number(modulus))


def python_bucket(salt: str, trace_id: str) -> int:
    """The same bucket in Python (the reference the parity tests hold both engines to)."""
    return int.from_bytes(hashlib.md5((salt + trace_id).encode("utf-8")).digest(), "little") % BUCKETS
