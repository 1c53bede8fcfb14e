"""Rewrites of engine/dialects/spark.py, each run on both engines."""
from __future__ import annotations

import random

import duckdb
import pyarrow as pa
import pytest

from engine.dialects import rewrites
from engine.sql import Statement, parse
from tests.parity.harness import assert_same_rows, load_tables, run_duckdb, run_spark


@pytest.fixture(scope="module")
def both(spark):
    rng = random.Random(7)
    values = [rng.gauss(0, 1) for _ in range(501)] + [None, 3.0, 3.0]
    groups = [i % 3 for i in range(len(values))]
    con = duckdb.connect()
    load_tables(spark, con, {"xs": pa.table({"g": groups, "x": pa.array(values, pa.float64())})})
    return spark, con


def test_exact_percentiles_are_exact_on_spark(both):
    spark, con = both
    tree = parse("SELECT g, percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS median, "
                 "percentile_cont(0.9) WITHIN GROUP (ORDER BY x) AS p90 FROM xs GROUP BY g")
    st = Statement("percentiles", tree)
    assert_same_rows(run_duckdb(con, st), run_spark(spark, st), ["g"], what="percentile_cont")


def test_every_spark_rewrite_has_a_parity_test():
    """A rewrite without a test here (or in another parity module) is a difference nobody checked."""
    import pathlib

    sources = "".join(p.read_text() for p in pathlib.Path(__file__).parent.glob("test_*.py"))
    missing = [fn.__name__ for fn in rewrites("spark") if fn.__name__ not in sources]
    assert not missing, f"Spark rewrites without a parity test naming them: {missing}"


def test_a_temp_table_step_is_a_view_later_steps_read(both):
    spark, con = both
    make = Statement("make", parse("CREATE OR REPLACE TEMP TABLE fw_parity_tmp AS SELECT g, count(x) AS n, "
                                   "sum(x) AS s FROM xs WHERE x > $lo GROUP BY g"), ("lo",))
    read = Statement("read", parse("SELECT g, n, s FROM fw_parity_tmp"))
    for lo in (0.0, 1.0):  # made twice: the second replaces the first
        run_duckdb(con, make, {"lo": lo})
        run_spark(spark, make, {"lo": lo})
        assert_same_rows(run_duckdb(con, read), run_spark(spark, read), ["g"], what=f"temp table, x > {lo}")
