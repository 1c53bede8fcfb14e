"""SQuAD v1.1 EM / F1 in DuckDB SQL must agree with the official Python functions on every row."""
from __future__ import annotations

import functools
import random
import re
import string
import sys
from collections import Counter

import duckdb
import pyarrow as pa
import pytest
from sqlglot import exp

from engine.sql import render
from engine.metrics.squad_sql import (
    squad_contains,
    squad_exact_match,
    squad_f1,
    squad_normalize,
    squad_tokens,
)


# ---- official SQuAD v1.1 evaluation functions (verbatim; the oracle) ----------------------------------------
def normalize_answer(s):
    def remove_articles(text): return re.sub(r'\b(a|an|the)\b', ' ', text)
    def white_space_fix(text): return ' '.join(text.split())
    def remove_punc(text):
        exclude = set(string.punctuation); return ''.join(ch for ch in text if ch not in exclude)
    def lower(text): return text.lower()
    return white_space_fix(remove_articles(remove_punc(lower(s))))
def f1_score(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split(); ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens); num_same = sum(common.values())
    if num_same == 0: return 0
    precision = 1.0 * num_same / len(prediction_tokens); recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)
def exact_match_score(prediction, ground_truth): return normalize_answer(prediction) == normalize_answer(ground_truth)
# ------------------------------------------------------------------------------------------------------------

# The functions above stay verbatim. normalize_answer is a pure function of its string and the checks below call it
# up to eight times per pair (the normal forms, em, f1, contains; f1 and em look it up here at each call): memoised,
# each pair's two strings are normalised once.
normalize_answer = functools.lru_cache(maxsize=1024)(normalize_answer)


def contains_reference(prediction: str, reference: str) -> float:
    """Python reference for squad_contains: normalised reference tokens as a contiguous run of the prediction's."""
    p, r = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not r:
        return 0.0
    return float(any(p[i:i + len(r)] == r for i in range(len(p) - len(r) + 1)))


P, R = exp.column("p"), exp.column("r")


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    yield c
    c.close()


def evaluate(con, table: pa.Table, **columns: exp.Expression) -> dict[str, list]:
    select = exp.select(*[exp.alias_(e, name) for name, e in columns.items()]).from_("t")
    table = pa.Table.from_batches(table.to_batches(max_chunksize=65_536))  # lets DuckDB use every core
    con.register("t", table)
    try:
        result = con.sql(render(select)).to_arrow_table()
    finally:
        con.unregister("t")
    return {name: result.column(name).to_pylist() for name in columns}


def all_metrics(con, predictions: list, references: list) -> dict[str, list]:
    table = pa.table({"p": pa.array(predictions, pa.string()), "r": pa.array(references, pa.string())})
    return evaluate(
        con,
        table,
        np=squad_normalize(P),
        nr=squad_normalize(R),
        tp=squad_tokens(P),
        em=squad_exact_match(P, R),
        f1=squad_f1(P, R),
        contains=squad_contains(P, R),
    )


def mismatches(predictions: list[str], references: list[str], got: dict[str, list]) -> list[tuple]:
    bad = []
    for i, (p, r) in enumerate(zip(predictions, references)):
        expected = {
            "np": normalize_answer(p),
            "nr": normalize_answer(r),
            "tp": normalize_answer(p).split(),
            "em": float(exact_match_score(p, r)),
            "contains": contains_reference(p, r),
        }
        for key, value in expected.items():
            if got[key][i] != value:
                bad.append((key, p, r, got[key][i], value))
        f1 = f1_score(p, r)
        if got["f1"][i] is None or abs(got["f1"][i] - f1) >= 1e-12:
            bad.append(("f1", p, r, got["f1"][i], f1))
    return bad


# ---- edge cases ---------------------------------------------------------------------------------------------

EDGE_STRINGS = [
    # empty / nothing left after normalisation
    "", " ", "   ", "\t\n", "!!!", "...", "?!.,;:", "a", "an", "the", "The", "THE", "A An THE", "a the an.",
    "the the the", "a a the", "a a a a a a", "an an", "a, a; the", "the\u00a0a\u3000an", "a«a«a", "the·the",
    # Unicode whitespace (str.isspace) and a zero-width space (not whitespace)
    "new\u00a0york", "new\u2003york", "new\u3000york", "new\tyork\nnow", "new\u200byork", "new \u200b york",
    "x\u0085y", "x\u2028y\u2029z", "x\u001cy\u001fz", "x\u000bz\u000c", "x\u202fy\u205fz\u1680w", "\u00a0the cat\u3000",
    # articles beside punctuation
    "the-end", "(a)", "an.", "an...apple", "[the]", "{an} a_b", "the_end", "a_", "_a", "_the_", "a'the", "'a'",
    "the.", ".the", "a-b-c", "a.b.c", "thé", "the\u0301", "a\u0301", "«the»", "—the—", "the’s", "a…",
    # repeated tokens
    "cat cat cat", "cat cat dog", "dog cat cat", "the cat the cat", "a b a b a b",
    # accented Latin, precomposed and decomposed
    "Café", "Cafe\u0301", "CAFÉ", "naïve", "Ångström", "A\u030angstro\u0308m", "Ça va", "ÉCOLE", "Straße", "STRASSE",
    "ẞ", "ǅemal", "ﬁnal", "Ⅻ", "K", "Ω", "Ω",
    # Greek incl. final sigma
    "ΟΔΟΣ", "οδος", "ΟΔΟΣ ΟΔΟΣ", "ΣΟΦΙΑ", "Σ", "ΑΣ", "ΑΣ.", "ΑΣ.Α", "ΑΣ'Α", "ΑΣ\u0301", "ΑΣ\u00ad", "ΑΣΣ",
    "ΑΣ1", "Σ Σ", "ὈΔΥΣΣΕΎΣ", "Αθήνα", "ΑΘΉΝΑ", "ΌΣΟΣ ΚΙ ΑΝ", "a Σ", "aΣ", "ᾼΣ", "\u0345Σ", "ΑΣ\u0345", "ΑΣ-",
    # Cyrillic
    "Москва", "МОСКВА", "ёлка", "ЁЛКА", "Привет, мир!", "Ѐ",
    # CJK and other scripts
    "東京", "東京 タワー", "北京大学", "한국어", "日本の首都は東京です。", "中文，标点", "١٢٣", "٣ ٤", "²³", "½",
    # Turkish
    "İstanbul", "istanbul", "ISTANBUL", "İ", "ı", "İa", "İ a", "Iİ", "DİYARBAKIR",
    # digits and underscores
    "1990", "1,990", "3.14", "3 14", "_", "__", "a_b", "foo_bar", "x_1", "2nd", "the 1st",
    # mixed, realistic
    "The Denver Broncos", "Denver Broncos", "the Broncos!", "Beyoncé Knowles", "Beyonce\u0301 Knowles",
    "Frédéric Chopin", "in the late 1990s", "Levi's Stadium", "Levis Stadium", "São Paulo, Brazil",
    "Zürich", "ZÜRICH", "Σωκράτης", "ΣΩΚΡΑΤΗΣ", "Санкт-Петербург", "САНКТ-ПЕТЕРБУРГ",
]


def test_edge_cases_all_pairs(con):
    # every ordered pair of edge strings
    predictions = [p for p in EDGE_STRINGS for _ in EDGE_STRINGS]
    references = [r for _ in EDGE_STRINGS for r in EDGE_STRINGS]
    got = all_metrics(con, predictions, references)
    bad = mismatches(predictions, references, got)
    assert not bad, f"{len(bad)} mismatches, e.g. {bad[:10]}"


@pytest.mark.parametrize(
    "text, normalized",
    [
        ("a a the", ""),
        ("a a a a a x a a", "x"),
        ("the-end", "theend"),
        ("(a)", ""),
        ("an.", ""),
        ("a«a«a", "« «"),
        ("ΟΔΟΣ", "οδος"),
        ("İstanbul", "i\u0307stanbul"),
        ("new\u00a0york\u3000city", "new york city"),
        ("new\u200byork", "new\u200byork"),
        ("the\u0301", "\u0301"),
        ("Cafe\u0301", "cafe\u0301"),
        ("a_b", "ab"),
    ],
)
def test_known_normalizations(con, text, normalized):
    assert normalize_answer(text) == normalized  # the oracle itself
    got = evaluate(con, pa.table({"p": [text]}), n=squad_normalize(P))
    assert got["n"] == [normalized]


def test_f1_and_em_of_empty_strings(con):
    got = all_metrics(con, ["", "the", "!!", "cat"], ["", "a", "", ""])
    assert got["em"] == [1.0, 1.0, 1.0, 0.0]
    assert got["f1"] == [0.0, 0.0, 0.0, 0.0]
    assert got["contains"] == [0.0, 0.0, 0.0, 0.0]
    assert got["tp"][0] == []


def test_nulls(con):
    got = all_metrics(con, [None, None, "cat", None], ["cat", "", None, None])
    assert got["em"] == [0.0, 1.0, None, None]  # NULL prediction counts as ''
    assert got["f1"] == [0.0, 0.0, None, None]  # NULL reference -> NULL (undefined)
    assert got["contains"] == [0.0, 0.0, None, None]
    assert got["np"] == [None, None, "cat", None]  # normalize itself keeps NULL
    assert got["tp"] == [None, None, ["cat"], None]


def test_result_types(con):
    con.register("t", pa.table({"p": ["a"], "r": ["b"]}))
    try:
        sql = render(exp.select(
            exp.alias_(squad_exact_match(P, R), "em"),
            exp.alias_(squad_f1(P, R), "f1"),
            exp.alias_(squad_contains(P, R), "c"),
            exp.alias_(squad_tokens(P), "tp"),
            exp.alias_(squad_normalize(P), "np"),
        ).from_("t"))
        types = [str(t) for t in con.sql(sql).types]
    finally:
        con.unregister("t")
    assert types == ["DOUBLE", "DOUBLE", "DOUBLE", "VARCHAR[]", "VARCHAR"]


def test_input_columns_named_like_lambda_parameters(con):
    # The generated lambdas use parameters _s, t, i, x, n; input columns of those names must not be shadowed.
    table = pa.table({name: ["the cat sat", "a cat", "cat cat"] for name in ("_s", "t", "i", "x", "n", "p", "s")}
                     | {"r": ["cat sat", "cat", "cat"]})
    for name in ("_s", "t", "i", "x", "n", "p", "s"):
        col = exp.column(name)
        got = evaluate(con, table, em=squad_exact_match(col, R), f1=squad_f1(col, R), c=squad_contains(col, R),
                       tok=squad_tokens(col))
        assert got["em"] == [1.0, 1.0, 0.0]
        assert got["f1"] == [1.0, 1.0, f1_score("cat cat", "cat")]
        assert got["c"] == [1.0, 1.0, 1.0]
        assert got["tok"] == [["cat", "sat"], ["cat"], ["cat", "cat"]]


@pytest.mark.parametrize("param", ["answer", "_s", "t", "i", "x", "n"])
def test_usable_inside_an_outer_lambda(con, param):
    # max over several acceptable answers, the way SQuAD scores a case: the expressions nest in a lambda whose
    # parameter may share a name with the generated lambdas' parameters.
    predictions = ["The cat sat.", None, "dog", "the cat the cat"]
    answers = [["a cat", "cat sat", "x"], ["cat", ""], [], ["cat", "cat cat dog"]]
    table = pa.table({"p": predictions, "answers": answers})
    columns = {}
    for name, metric in (("em", squad_exact_match), ("f1", squad_f1), ("c", squad_contains)):
        body = metric(P, exp.column(param))
        outer = exp.func("list_max", exp.func(
            "list_transform", exp.column("answers"), exp.Lambda(this=body, expressions=[exp.to_identifier(param)])))
        columns[name] = exp.func("coalesce", outer, exp.Literal.number(0.0))
    got = evaluate(con, table, **columns)
    for i, (p, answers_of_case) in enumerate(zip(predictions, answers)):
        p = p if p is not None else ""
        assert got["em"][i] == max([float(exact_match_score(p, a)) for a in answers_of_case], default=0.0)
        assert got["f1"][i] == max([f1_score(p, a) for a in answers_of_case], default=0.0)
        assert got["c"][i] == max([contains_reference(p, a) for a in answers_of_case], default=0.0)


def test_rendered_sql_uses_duckdb_lambda_syntax():
    sql = render(squad_f1(P, R)) + render(squad_tokens(P))
    assert "->" not in sql
    assert "LAMBDA" in sql


def test_values_are_literals_not_sql_text(con):
    # String inputs become sqlglot literals (quotes are escaped), never SQL text.
    tricky = "it's the 'a' -- ); DROP TABLE t; --"
    e = squad_exact_match(exp.Literal.string(tricky), exp.Literal.string("its"))
    sql = render(exp.select(exp.alias_(squad_normalize(exp.Literal.string(tricky)), "n"), exp.alias_(e, "em")))
    assert con.sql(sql).fetchall() == [(normalize_answer(tricky), float(exact_match_score(tricky, "its")))]


# ---- every code point ---------------------------------------------------------------------------------------

def test_every_code_point_in_context(con):
    """Each code point c in contexts that exercise lower(), the Final_Sigma rule (c before/after Σ, cased and
    case-ignorable), the word-character class around articles and the whitespace class."""
    code_points = [c for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    texts = []
    for cp in code_points:
        c = chr(cp)
        texts.append(f"a{c}a {c}Σ A{c}Σ AΣ{c} AΣ{c}A")
    got = evaluate(con, pa.table({"p": texts}), n=squad_normalize(P))["n"]
    bad = [(hex(cp), t, g) for cp, t, g in zip(code_points, texts, got) if g != normalize_answer(t)]
    assert not bad, f"{len(bad)} code points differ, e.g. {bad[:10]}"


# ---- 100,000 random pairs -----------------------------------------------------------------------------------

_PIECES = [
    # ASCII words and articles in all cases
    "cat", "Dog", "DOG", "x", "b", "i", "I", "foo_bar", "_", "42", "3", "1990s", "New", "york",
    "a", "A", "an", "An", "AN", "the", "The", "THE", "tHe", "ann", "then", "thee", "aa", "ab",
    # accented Latin, precomposed and decomposed
    "café", "cafe\u0301", "CAFÉ", "naïve", "Ångström", "A\u030a", "Straße", "ẞ", "ǅ", "ﬁ", "Ω", "K", "é", "E\u0301",
    # Greek (sigma in every position), Cyrillic, CJK, Turkish
    "ΟΔΟΣ", "Σ", "σ", "ς", "ΣΑΣ", "Αθήνα", "ὈΔΥΣΣΕΎΣ", "ᾼ", "\u0345", "Москва", "ПРИВЕТ", "ёж", "Ё",
    "東京", "北京大学", "の", "한국어", "İ", "İstanbul", "ı", "DİYARBAKIR",
    # other digits/numerics, marks, non-ASCII punctuation, format characters
    "١٢٣", "²", "½", "Ⅻ", "\u0301", "\u0308", "\u00ad", "\u200d", "\u200b", "·", "«", "»", "—", "’", "…", "¿",
    "ʼ", "ˢ", "ª", "\u1160",
]
_SPACES = [" ", " ", " ", "\t", "\n", "\r\n", "\u00a0", "\u2003", "\u3000", "\u2009", "\u0085", "\u2028",
           "\u001f", "\u000b", "\u202f", "\u1680", "  "]
_PUNCT = list(string.punctuation)
_RANDOM_BLOCKS = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x1F00, 0x1FFF),
                  (0x2000, 0x206F), (0x3000, 0x303F), (0x4E00, 0x4E2F), (0xFF00, 0xFF5F), (0x1D400, 0x1D44F)]


def _random_pieces(rng: random.Random) -> list[str]:
    out = []
    for _ in range(rng.randint(0, 8)):
        roll = rng.random()
        if roll < 0.8:
            piece = rng.choice(_PIECES)
        elif roll < 0.9:
            piece = rng.choice(_PUNCT)
        else:
            lo, hi = rng.choice(_RANDOM_BLOCKS)
            piece = "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 3)))
        out.append(piece)
    return out


def _join(rng: random.Random, pieces: list[str]) -> str:
    text = ""
    for i, piece in enumerate(pieces):
        if i:
            roll = rng.random()
            if roll < 0.6:
                text += rng.choice(_SPACES)
            elif roll < 0.75:
                text += rng.choice(_PUNCT)
            elif roll < 0.85:
                text += rng.choice(_SPACES) + rng.choice(_PUNCT)
            # else: no separator -> pieces glued together
        text += piece
    if rng.random() < 0.2:
        text = rng.choice(_SPACES + _PUNCT) + text
    if rng.random() < 0.2:
        text += rng.choice(_SPACES + _PUNCT)
    return text


def _recase(rng: random.Random, piece: str) -> str:
    roll = rng.random()
    return piece.upper() if roll < 0.15 else piece.lower() if roll < 0.3 else piece


def random_pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    predictions, references = [], []
    for _ in range(n):
        ref = _random_pieces(rng)
        roll = rng.random()
        if roll < 0.3:
            pred = _random_pieces(rng)
        elif roll < 0.5:  # same pieces, maybe re-cased / re-punctuated
            pred = [_recase(rng, p) for p in ref]
        else:  # overlap: subset / duplicates of the reference plus extra pieces, some shuffled
            pred = [p for p in ref if rng.random() < 0.7] + [rng.choice(ref) for _ in range(rng.randint(0, 2)) if ref]
            pred += _random_pieces(rng)[: rng.randint(0, 3)]
            if rng.random() < 0.5:
                rng.shuffle(pred)
            else:
                pos = rng.randint(0, len(pred))
                pred = pred[:pos] + ref + pred[pos:] if rng.random() < 0.5 else pred
        predictions.append(_join(rng, pred))
        references.append(_join(rng, ref))
    return predictions, references


def test_random_pairs_agree_with_official_functions(con):
    predictions, references = random_pairs(100_000, seed=20240611)
    got = all_metrics(con, predictions, references)
    bad = mismatches(predictions, references, got)
    # the generator must actually exercise the interesting branches
    assert sum(got["em"]) > 10_000
    assert sum(1 for f in got["f1"] if 0 < f < 1) > 10_000
    assert sum(got["contains"]) > 10_000
    assert bad == [], f"{len(bad)} mismatches, e.g. {bad[:10]}"
