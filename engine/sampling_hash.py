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
    """The SQL bucket of (salt, trace_id): `md5_number(salt || trace_id) % BUCKETS` in DuckDB's dialect."""
    salt_node = exp.Literal.string(salt) if isinstance(salt, str) else salt
    return exp.Mod(this=exp.Anonymous(this="md5_number", expressions=[exp.DPipe(this=salt_node, expression=trace_id,
                                                                               safe=True)]),
                   expression=exp.Literal.number(BUCKETS))


def python_bucket(salt: str, trace_id: str) -> int:
    """The same bucket in Python (the reference the parity tests hold both engines to)."""
    return int.from_bytes(hashlib.md5((salt + trace_id).encode("utf-8")).digest(), "little") % BUCKETS
