"""Each Spark rewrite of engine/dialects/ (spark_text, spark_lists, spark_math) on adversarial values, on both
engines; and what Spark cannot run with DuckDB's meaning is refused (NotPortable), never rendered.

All expressions are columns of one query per engine (one Spark job)."""
from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest
from sqlglot import exp

from engine.dialects import NotPortable
from engine.dialects import regex as java_regex_module
from engine.spark.execute import spark_text
from engine.sql import Statement, parse_expression
from tests.parity.harness import assert_same_rows, load_tables, run_duckdb, run_spark

TEXTS = ["\u03a3\u039f\u03a6\u039f\u03a3 \u03a3", "\u0130stanbul", "\u00df stra\u00dfe", "a\u2028b", "a\u0085b",
         "a\rb", "a\x0bb\x0c", "\U0001F600x\U0001F1EB\U0001F1F7", "e\u0301", "  \u3000 x \u00a0\u2003", "", None,
         "x\n", "The a an", "\u01c4 \u01c5 \u01c6", "K\u212a\u017f", string_punct := "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
         "\u00ab\u00bb\u2014\u201c\u201d\u2026\u00bf\u00a1\u3001", "caf\u00e9 \u00e9t\u00e9", "\u0645\u0631\u062d\u0628\u0627",
         "\u6771\u4eac 12", "word_with_under score", "a.b.c..d", "x:y", "aaaa", "ab ab ab"]

# (rewrite exercised, DuckDB expression over the text `s`, number `n` and list `l`)
EXPRESSIONS = [
    ("java_regex", "regexp_matches(s, '^a.b$')"), ("java_regex", "regexp_matches(s, '\\s')"),
    ("java_regex", "regexp_matches(s, 'x$')"), ("java_regex", "regexp_matches(s, '\\bb')"),
    ("java_regex", "regexp_matches(s, '(?i)\u03c3\u03bf\u03c6')"), ("java_regex", "regexp_matches(s, '(?i)k')"),
    ("java_regex", "regexp_matches(s, '[[:punct:]]')"), ("java_regex", "regexp_matches(s, '[[:upper:]][[:lower:]]')"),
    ("java_regex", "regexp_matches(s, '[a&&b]')"), ("java_regex", "regexp_matches(s, '[[x]')"),
    ("java_regex", "regexp_matches(s, '\\p{Greek}')"), ("java_regex", "regexp_matches(s, '\\pL\\pM')"),
    ("java_regex", "regexp_matches(s, '\\v|\\x{85}')"), ("java_regex", "regexp_matches(s, '\\Bb')"),
    ("java_regex", "regexp_matches(s, 'A', 'i')"), ("java_regex", "regexp_full_match(s, 'a+')"),
    ("java_regex", "regexp_replace(s, '[[:punct:]]', '', 'g')"),
    ("java_regex", "regexp_replace(s, '(\\w)(\\w)', '\\2\\1$\\\\', 'g')"),
    ("java_regex", "regexp_replace(s, '\\s+', ' ', 'g')"), ("java_regex", "regexp_extract(s, 'a(x)?', 1)"),
    ("java_regex", "regexp_extract(s, '\\pL+')"), ("java_regex", "regexp_extract_all(s, '[^\\pL\\pN]+')"),
    ("java_regex", "regexp_split_to_array(s, '[.:]')"), ("java_regex", "regexp_matches(s, '(?:\\.[a-z]+)+')"),
    ("simple_lowercase", "lower(s)"), ("unicode_trim", "trim(s)"), ("unicode_trim", "ltrim(s)"),
    ("unicode_trim", "rtrim(s)"), ("literal_split", "string_split(s, '.')"), ("literal_split", "string_split(s, ' ')"),
    ("list_length", "len(string_split(s, ' '))"), ("list_element_or_null", "l[1]"),
    ("list_element_or_null", "l[-1]"), ("list_element_or_null", "l[n]"), ("list_element_or_null", "l[0]"),
    ("list_slice", "l[2:n]"), ("list_slice", "l[1:2]"), ("list_functions", "list_position(l, 'b')"),
    ("list_functions", "list_reverse(l)"), ("list_functions", "list_sum(list_transform(l, lambda x: len(x)))"),
    ("one_based_lambda_index", "list_transform(l, lambda x, i: x || CAST(i AS VARCHAR))"),
    ("one_based_lambda_index", "list_filter(l, lambda x, i: i % 2 = 1)"),
    ("struct_pack", "struct_extract(struct_pack(a := s, b := n), 'a')"),
    ("list_membership_without_null", "list_contains(l, 'b')"), ("list_membership_without_null", "list_has_any(l, ['b', 'z'])"),
    ("ieee_division", "n / (n - 2)"), ("ieee_division", "1.0 / 3"), ("ieee_division", "(n - 2) / 0"),
    ("integer_division", "(CAST(n AS INTEGER) - 7) // 2"), ("byte_length", "strlen(s)"),
    ("double_text", "'value ' || CAST(value AS VARCHAR)"),
]
REFUSED = [
    ("no_full_uppercase", "upper(s)", "upper"), ("integer_division", "CAST(n AS DOUBLE) // 2", "//"),
    ("unported", "json_valid(s)", "json_valid"), ("unported", "json_extract(s, '$.a')", "json"),
    ("list_slice", "l[n:2]", "slice"), ("java_regex", "regexp_replace(s, 'a', 'b')", "first match"),
    ("java_regex", "regexp_matches(s, s)", "string literal"), ("java_regex", "regexp_matches(s, '(?m)^a')", "multi-line"),
]


@pytest.fixture(scope="module")
def engines(spark):
    con = duckdb.connect()
    lists = [["a", "b", "c"], ["b"], [], None, ["a", None, "b"], ["x", "y"]]
    rows = {"k": list(range(len(TEXTS))), "s": pa.array(TEXTS, pa.string()),
            "n": pa.array([i % 5 for i in range(len(TEXTS))], pa.int64()),
            "value": pa.array([[12345678.0, 3.5, 0.1, -2.0, 1e14, 0.0, 250.125][i % 7] for i in range(len(TEXTS))]),
            "l": pa.array([lists[i % len(lists)] for i in range(len(TEXTS))], pa.list_(pa.string()))}
    load_tables(spark, con, {"rewrite_inputs": pa.table(rows)})
    yield spark, con
    con.close()


def test_each_rewrite_means_the_same_on_both_engines(engines):
    spark, con = engines
    columns = [exp.alias_(parse_expression(e), f"v{i}") for i, (_, e) in enumerate(EXPRESSIONS)]
    select = exp.select("k", *columns).from_("rewrite_inputs")
    statement = Statement("rewrites", select)
    duck, theirs = run_duckdb(con, statement), run_spark(spark, statement)
    for i, (name, text) in enumerate(EXPRESSIONS):
        assert_same_rows([{"k": r["k"], "v": r[f"v{i}"]} for r in duck],
                         [{"k": r["k"], "v": r[f"v{i}"]} for r in theirs], ["k"], what=f"{name}: {text}")


@pytest.mark.parametrize("name,text,why", REFUSED, ids=[f"{n}:{t}" for n, t, _ in REFUSED])
def test_what_spark_reads_differently_is_refused(name, text, why):
    with pytest.raises(NotPortable, match=why.replace("(", "\\(")):
        spark_text(exp.select(parse_expression(text)).from_("rewrite_inputs"))


def test_lowercase_is_the_same_for_every_code_point_but_unicode_16(engines):
    """lower() of every code point of the Basic and Supplementary Multilingual Planes on both engines: equal except
    U+0130 (fixed by simple_lowercase) and characters that DuckDB's case tables predate (Unicode 16)."""
    spark, con = engines
    cps = [c for c in range(1, 0x20000) if not 0xD800 <= c <= 0xDFFF]
    load_tables(spark, con, {"code_points": pa.table({"c": cps, "s": [chr(c) for c in cps]})})
    statement = Statement("lower", parse_expression("SELECT c, lower(s) AS v FROM code_points"))
    duck = {r["c"]: r["v"] for r in run_duckdb(con, statement)}
    theirs = {r["c"]: r["v"] for r in run_spark(spark, statement)}
    differ = sorted(c for c in cps if duck[c] != theirs[c])
    unicode_16 = {0x1C89, 0xA7CB, 0xA7CC, 0xA7CE, 0xA7D2, 0xA7D4, 0xA7DA, 0xA7DC} | set(range(0x10D50, 0x10D66)) \
        | set(range(0x16EA0, 0x16EB9))
    assert set(differ) <= unicode_16, [hex(c) for c in differ if c not in unicode_16]


@pytest.mark.parametrize("pattern", ["[[:punct:]]", "(?i)caf\u00e9", "\\bword\\b", "x$", "(?:\\.[a-z]+)*\\.[a-z]{2,}",
                                     "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}"])
def test_accepted_user_patterns_translate(pattern):
    assert java_regex_module.problems(pattern) == []
    assert java_regex_module.to_java(pattern).startswith(java_regex_module.PREFIX)


@pytest.mark.parametrize("pattern,why", [("(a+)+", "repetition inside"), ("(a|aa)*", "alternatives"),
                                         ("(?:a*b?)*", "repetition inside"), ("(?m)^a", "multi-line"),
                                         ("(?U)a+", "ungreedy"), ("a{,3}", "'{'"), ("[[:foo:]]", "POSIX"),
                                         ("\\C", "escape")])
def test_refused_user_patterns_say_why(pattern, why):
    assert any(why in p for p in java_regex_module.problems(pattern)), java_regex_module.problems(pattern)
