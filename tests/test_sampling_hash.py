"""The sampling bucket computed from md5_number's 64-bit halves (engine/sampling_hash.split_mod) is the bucket of
version 1, `md5_number(salt || trace_id) % 10^6`, for every id; Spark is given back the plain modulo."""
from __future__ import annotations

import duckdb
from sqlglot import exp

from engine.sampling_hash import BUCKETS, bucket, python_bucket, split_mod, unsplit
from engine.sql import render

IDS = ["", "tr-1", "é", "日本語のトレース", "a\x00b", "x" * 300, "🙂" * 7, "tr-" + "9" * 40, "'; DROP", "\u200b"]


def test_the_halves_give_the_128_bit_modulo_for_every_id():
    con = duckdb.connect()
    con.execute("CREATE TABLE ids AS SELECT unnest($ids) AS id UNION ALL SELECT 'tr-' || range FROM range(50000) "
                "UNION ALL SELECT NULL", {"ids": IDS})
    for n in (BUCKETS, 1, 7, 1_000_003, (1 << 32) - 1):
        halves = render(split_mod(exp.Anonymous(this="md5_number", expressions=[
            exp.DPipe(this=exp.Literal.string("s:"), expression=exp.column("id"), safe=True)]), n))
        differ, nulls = con.execute(f"SELECT count(*) FILTER (WHERE {halves} IS DISTINCT FROM md5_number('s:' || id) "
                                    f"% {n}), count(*) FILTER (WHERE {halves} IS NULL) FROM ids").fetchall()[0]
        assert (differ, nulls) == (0, 1), n
    got = con.execute(f"SELECT id, {render(bucket('salt', exp.column('id')))} FROM ids WHERE id IS NOT NULL "
                      "LIMIT 2000").fetchall()
    assert all(b == python_bucket("salt", i) for i, b in got)


def test_spark_is_given_the_plain_modulo():
    tree = bucket("flywheel", exp.column("trace_id", table="t"))
    plain = exp.Mod(this=tree.find(exp.BitwiseRightShift).this.copy(), expression=exp.Literal.number(BUCKETS))
    assert unsplit(tree) == plain and unsplit(plain) is None
    assert render(tree, dialect="spark") == render(plain, dialect="spark")
