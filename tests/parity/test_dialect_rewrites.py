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


def test_md5_number_buckets_equal_duckdbs(both):
    """md5_number_buckets: the sampling hash's bucket is the same on Spark, for ids of every shape."""
    spark, con = both
    ids = ["", "a", "abc", "trace-0001", "é", "e\u0301", "日本語のトレース", "🙂" * 40, "x" * 10_000, "\u2028", "0"]
    ids += [f"{i:032x}" for i in range(0, 2 ** 128, 2 ** 121)]
    load_tables(spark, con, {"ids": pa.table({"id": ids})})
    for n in (1_000_000, 97, 2):
        st = Statement("buckets", parse(f"SELECT id, md5_number('salt:' || id) % {n} AS b, "
                                        f"md5_number(id) % {n} AS b0 FROM ids"))
        duck = run_duckdb(con, st)
        assert len({r["b"] for r in duck}) > 1
        assert_same_rows(duck, run_spark(spark, st), ["id"], what=f"md5_number % {n}")


def test_md5_number_halves_give_spark_the_same_buckets(both):
    """md5_number_halves: the sampling bucket as DuckDB's plans compute it (64-bit halves) is rewritten to the
    plain modulo for Spark, which gives the same bucket for every id."""
    from sqlglot import exp

    from engine.sampling_hash import bucket

    spark, con = both
    ids = ["", "a", "trace-0001", "é", "日本語のトレース", "🙂" * 40, "x" * 10_000, "\u2028"] + [f"tr-{i}" for i in range(200)]
    load_tables(spark, con, {"ids": pa.table({"id": ids})})
    st = Statement("halves", exp.select("id", exp.alias_(bucket("salt:", exp.column("id")), "b")).from_("ids"))
    duck = run_duckdb(con, st)
    assert len({r["b"] for r in duck}) > 100
    assert_same_rows(duck, run_spark(spark, st), ["id"], what="the sampling bucket in halves")


def test_a_bare_md5_number_is_refused_for_spark():
    from engine.dialects import NotPortable
    from engine.sql import render

    with pytest.raises(NotPortable, match="md5_number"):
        render(parse("SELECT md5_number(id) FROM ids"), dialect="spark")


def test_regex_split_keeps_empty_pieces_like_duckdb(both):
    """java_regex: regexp_split_to_array on both engines, separators at the ends and repeated."""
    spark, con = both
    texts = ["a b", " a  b ", "", "   ", "naïve café", "e\u0301te", "日本 語", "x\u2028y", "a-b_c"]
    load_tables(spark, con, {"texts": pa.table({"i": list(range(len(texts))), "s": texts})})
    st = Statement("split", parse(r"SELECT i, regexp_split_to_array(s, '[^\pL\pN]+') AS parts, "
                                  r"regexp_split_to_array(s, ' ') AS spaces FROM texts"))
    assert_same_rows(run_duckdb(con, st), run_spark(spark, st), ["i"], what="regexp_split_to_array")


def test_nested_ctes_one_relation_read_twice(both):
    """unique_cte_names: a subquery with its own WITH, used twice in one statement (and a second CTE of the same
    name with another body), gives the same rows on Spark."""
    spark, con = both
    sub = "(WITH fw_r AS (SELECT g, x FROM xs WHERE x > {lo}) SELECT g, count(*) AS n FROM fw_r GROUP BY g)"
    st = Statement("hoist", parse(f"SELECT a.g, a.n AS above0, b.n AS above1, c.n AS above0_again "
                                  f"FROM {sub.format(lo=0)} AS a JOIN {sub.format(lo=1)} AS b ON a.g = b.g "
                                  f"JOIN {sub.format(lo=0)} AS c ON a.g = c.g"))
    rows = run_duckdb(con, st)
    assert rows and all(r["above0"] == r["above0_again"] > r["above1"] for r in rows)
    assert_same_rows(rows, run_spark(spark, st), ["g"], what="nested CTEs")


def test_portable_types_keep_every_value(both):
    """portable_types: unsigned integers and JSON text cast the same on both engines."""
    spark, con = both
    big = [0, 1, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1]
    load_tables(spark, con, {"nums": pa.table({"i": list(range(len(big))), "u": pa.array(big, pa.uint64()),
                                               "j": ['{"a": 1}', "[1, 2]", '"é"', "null", "{}"]})})
    st = Statement("types", parse("SELECT i, CAST(u AS UBIGINT) AS u, "
                                  "CAST(CAST(i AS UINTEGER) AS UINTEGER) AS small, CAST(j AS JSON) AS j FROM nums"))
    duck = [{**r, "u": int(r["u"]), "j": str(r["j"])} for r in run_duckdb(con, st)]
    theirs = [{**r, "u": int(r["u"])} for r in run_spark(spark, st)]
    assert [r["u"] for r in sorted(duck, key=lambda r: r["i"])] == big
    assert_same_rows(duck, theirs, ["i"], what="casts to DuckDB-only types")


def test_json_string_list_reads_the_same_lists(both):
    """json_string_list: a list of strings in a JSON document (a trace's context), every shape of value."""
    spark, con = both
    docs = ['{"context": ["a","b"]}', '{"context": "x"}', '{"context": [1, "é"]}', '{}', None, '{"context": null}',
            '{"context": [null, "a"]}', '{"context": [["a"], {"k": 1}]}', '{"context": []}',
            '{"context": [true, 1.50]}', '{"context": ["line\\u2028sep", "\\"q\\""]}', '{"x": 1, "context": ["日本"]}',
            'not json', '[1, 2]']
    load_tables(spark, con, {"docs": pa.table({"i": list(range(len(docs))), "attributes": pa.array(docs, pa.string())})})
    st = Statement("context", parse("SELECT i, coalesce(TRY_CAST(json_extract(TRY_CAST(attributes AS JSON), "
                                    "'$.context') AS VARCHAR[]), []::VARCHAR[]) AS context FROM docs"))
    duck = run_duckdb(con, st)
    assert {tuple(r["context"]) for r in duck} >= {("a", "b"), (), ("1", "é"), (None, "a")}
    assert_same_rows(duck, run_spark(spark, st), ["i"], what="a JSON list of strings")
