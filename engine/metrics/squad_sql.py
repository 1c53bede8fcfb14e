"""SQuAD v1.1 exact match / token F1 as pure DuckDB SQL (sqlglot ASTs).

The expressions reproduce the official SQuAD v1.1 evaluation script
(`normalize_answer`, `exact_match_score`, `f1_score`) row for row, including its Unicode behaviour,
without Python UDFs:

    normalize_answer(s) = white_space_fix(remove_articles(remove_punc(lower(s))))

Step by step, and how each step is made exact on DuckDB (RE2 regexes, utf8proc case mapping):

* ``lower`` -- Python's ``str.lower`` is the *full* Unicode lowercase mapping. DuckDB's ``lower()``
  (simple per-code-point mapping) agrees with it on every code point (checked for all of U+0000..U+10FFFF
  in the tests) except two cases, both fixed before calling ``lower()``:
    - U+0130 'İ' lowercases to two code points 'i' + U+0307 in Python: replaced explicitly.
    - Capital sigma U+03A3 becomes final sigma 'ς' when it is in the Final_Sigma context
      (preceded by a cased letter and not followed by one, skipping case-ignorable characters):
      rewritten to 'ς' by a regex whose character classes are derived from Python itself.
* ``remove_punc`` -- only the 32 ASCII characters of ``string.punctuation`` (RE2 ``[[:punct:]]`` is exactly
  that set).
* ``remove_articles`` -- Python's ``\\b`` is Unicode-aware (word characters are ``str.isalnum()`` or '_'),
  RE2's is ASCII-only, and RE2 has no look-around. A match of ``\\b(a|an|the)\\b`` is exactly a maximal run of
  word characters equal to ``a``/``an``/``the``; it is matched together with its delimiting non-word characters
  (or string edges) using an explicit Unicode word-character class generated from ``str.isalnum()``. A
  consuming match swallows the delimiter it shares with the next article ("a a the"), so the replacement is
  applied twice. Why two passes suffice: pass 1 scans left to right and misses an article only when its single
  leading delimiter was consumed as the trailing delimiter of the match of the article just before it. So of
  two articles separated by one delimiter, at most the second is missed, and a missed article's left neighbour
  was replaced; every replacement keeps both delimiters and inserts ' ' (never a word character, never joining
  runs). Hence after pass 1 the remaining articles are pairwise separated by at least three non-word
  characters, no two matches of pass 2 compete for a delimiter, and pass 2 removes all of them (tests: runs
  of adjacent articles with space and non-space delimiters, and 100k random strings).
* ``white_space_fix`` -- ``str.split()`` splits on ``str.isspace()`` characters (29 code points incl.
  U+00A0, U+2000..U+200A, U+3000, U+0085, U+001C..U+001F; not U+200B); the class is generated from Python.

The character classes are derived from the running Python's Unicode database, i.e. from the same tables the
official script uses: computed (seconds: all 1.1M code points) or, for a Unicode version shipped in
`squad_classes.py` (written by `python -m engine.metrics.squad_sql`, checked by a test), read from there.

Performance notes: rows without a capital sigma skip the Final_Sigma regex (a `contains` guard); rows with
one pay for an RE2 capture match with large classes (~1-2 us per row). `_let` binds intermediate values with
`list_transform([struct_pack(...)], lambda s: ...)[1]` so that they are computed once per row: DuckDB
re-evaluates an outer expression captured inside a lambda for every list element.

NULL handling: a NULL *prediction* is treated as '' (an errored model output scores 0 -- except that EM
against a reference that normalises to '' is 1, exactly as for an empty prediction). A NULL *reference*
yields NULL (the metric is undefined; SQL aggregates skip it). ``squad_normalize``/``squad_tokens`` map
NULL to NULL.

F1 follows the official code: when no token is shared (which includes both sides normalising to empty),
F1 is 0.
"""
from __future__ import annotations

import string
import sys
import unicodedata
from functools import lru_cache

from sqlglot import exp

from engine.sql import let, parse_expression

__all__ = [
    "squad_normalize",
    "squad_tokens",
    "squad_exact_match",
    "squad_f1",
    "squad_contains",
]

_SIGMA = "\u03a3"
_FINAL_SIGMA = "\u03c2"
_DOTTED_I = "\u0130"
_DOTTED_I_LOWER = "i\u0307"
_ARTICLES = ("a", "an", "the")

# RE2's [[:punct:]] is ASCII-only and exactly string.punctuation.
assert string.punctuation == "".join(chr(c) for c in range(0x21, 0x7F) if not chr(c).isalnum())


# --------------------------------------------------------------------------------------------------
# character classes generated from the running Python
# --------------------------------------------------------------------------------------------------

def _ranges(code_points: list[int]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for c in code_points:
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return [(a, b) for a, b in out]


def _re2_char(c: int) -> str:
    """One code point inside an RE2 character class: literal when harmless, else \\x{HEX}."""
    ch = chr(c)
    if ch.isascii():
        literal = ch.isalnum()  # ASCII punctuation may be special ( ] \\ ^ - [ ), controls are unreadable
    else:
        literal = unicodedata.category(ch)[0] not in "CZ"  # no controls, format chars, separators, unassigned
    return ch if literal else "\\x{%X}" % c


def _re2_class(code_points: list[int], negate: bool = False) -> str:
    parts = []
    for a, b in _ranges(code_points):
        if a == b:
            parts.append(_re2_char(a))
        elif b == a + 1:
            parts.append(_re2_char(a) + _re2_char(b))
        else:
            parts.append(_re2_char(a) + "-" + _re2_char(b))
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def _all_code_points():
    return (c for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)


def _unicode_key() -> str:
    """What the classes depend on: the interpreter's case-mapping code and its Unicode database."""
    return f"{sys.implementation.name}-{unicodedata.unidata_version}"


@lru_cache(maxsize=1)
def _classes() -> dict[str, str]:
    """The classes for the running Python: precomputed for its Unicode database when shipped (computing them
    walks all 1.1M code points, seconds per process), computed otherwise."""
    from engine.metrics.squad_classes import CLASSES

    return CLASSES.get(_unicode_key()) or _compute_classes()


def _compute_classes() -> dict[str, str]:
    word: list[int] = []
    space: list[int] = []
    cased: list[int] = []  # cased and not case-ignorable
    ignorable: list[int] = []  # case-ignorable (possibly also cased)
    for c in _all_code_points():
        ch = chr(c)
        if ch.isalnum() or ch == "_":  # sre's Unicode \w (SRE_UNI_IS_WORD)
            word.append(c)
        if ch.isspace():
            space.append(c)
        # Python's Final_Sigma test (unicodeobject.c: handle_capital_sigma) observed through str.lower():
        # "<c>Σ" ends in ς  <=>  c is cased and not case-ignorable;
        # "A<c>Σ" ends in ς but "<c>Σ" does not  <=>  c is case-ignorable.
        if (ch + _SIGMA).lower()[-1] == _FINAL_SIGMA:
            cased.append(c)
        elif ("A" + ch + _SIGMA).lower()[-1] == _FINAL_SIGMA:
            ignorable.append(c)
    cased_cls = _re2_class(cased)
    ign_cls = _re2_class(ignorable)
    neither_cls = _re2_class(sorted(cased + ignorable), negate=True)
    non_word = _re2_class(word, negate=True)
    return {
        # Σ preceded by (cased, case-ignorable*) and followed by (case-ignorable*, then a character that is
        # neither cased nor case-ignorable, or the end). Matches of different final sigmas never overlap.
        "final_sigma": f"({cased_cls}{ign_cls}*){_SIGMA}({ign_cls}*(?:{neither_cls}|$))",
        "articles": "(^|" + non_word + ")(?:" + "|".join(_ARTICLES) + ")(" + non_word + "|$)",
        # A whitespace run that is not already a single ' ' (runs of two or more, or one other space character).
        "space_fix": _re2_class(space) + "{2,}|" + _re2_class([c for c in space if c != 0x20]),
    }


# --------------------------------------------------------------------------------------------------
# AST helpers
# --------------------------------------------------------------------------------------------------

def _lit(value: str) -> exp.Expression:
    return exp.Literal.string(value)


def _regexp_replace(this: exp.Expression, pattern: str, replacement: str) -> exp.Expression:
    return exp.RegexpReplace(
        this=this, expression=_lit(pattern), replacement=_lit(replacement), modifiers=_lit("g")
    )


def _as_prediction(prediction: exp.Expression) -> exp.Expression:
    return exp.func("coalesce", prediction.copy(), _lit(""))


# --------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------

def _python_lower(text: exp.Expression) -> exp.Expression:
    """DuckDB lower() made identical to Python's str.lower()."""
    sigma_fixed = exp.Case(
        ifs=[
            exp.If(
                this=exp.func("contains", text.copy(), _lit(_SIGMA)),
                true=_regexp_replace(text.copy(), _classes()["final_sigma"], "\\1" + _FINAL_SIGMA + "\\2"),
            )
        ],
        default=text.copy(),
    )
    dotted = exp.func("replace", sigma_fixed, _lit(_DOTTED_I), _lit(_DOTTED_I_LOWER))
    return exp.Lower(this=dotted)


def _articles_removed(text: exp.Expression) -> exp.Expression:
    """`remove_articles(remove_punc(lower(text)))`, not yet whitespace-normalised."""
    articles = _classes()["articles"]
    no_punc = _regexp_replace(_python_lower(text), "[[:punct:]]", "")
    once = _regexp_replace(no_punc, articles, "\\1 \\2")
    return _regexp_replace(once, articles, "\\1 \\2")


def squad_normalize(text: exp.Expression) -> exp.Expression:
    """SQuAD `normalize_answer(text)` as a VARCHAR expression (NULL -> NULL)."""
    collapsed = _regexp_replace(_articles_removed(text), _classes()["space_fix"], " ")
    # DuckDB's one-argument trim() strips Unicode space separators (Zs); after the collapse the only one left
    # is ' ' (every Zs character is str.isspace()), and it is ~3x faster than trim(x, ' ').
    return exp.func("trim", collapsed)


def _split(normalized: exp.Expression) -> exp.Expression:
    """`normalized.split()` for an already normalised string (tokens separated by single spaces)."""
    return parse_expression("list_filter(string_split(__n__, ' '), x -> x <> '')", n=normalized)


def squad_tokens(text: exp.Expression) -> exp.Expression:
    """`normalize_answer(text).split()` as a VARCHAR[] expression (NULL -> NULL)."""
    return _split(squad_normalize(text))


def squad_exact_match(prediction: exp.Expression, reference: exp.Expression) -> exp.Expression:
    """1.0 if the normalised strings are equal else 0.0 (DOUBLE). NULL prediction = ''; NULL reference -> NULL."""
    return parse_expression(
        "CAST(__p__ = __r__ AS DOUBLE)",
        p=squad_normalize(_as_prediction(prediction)),
        r=squad_normalize(reference),
    )


# Body of the F1 `_let`: `__p__`/`__r__` are `string_split(normalized, ' ')`, i.e. [''] for an empty string
# (tokens are never empty otherwise).
#
# num_same = sum((Counter(p) & Counter(r)).values()) is computed as the number of positions i of r whose
# occurrence rank k (r[i] is the k-th copy of its token in r) is <= the count of that token in p. For the first
# copy (k = 1, the common case) that is just list_contains(p, token); only repeated reference tokens pay for
# counting with list_filter. The final arithmetic repeats Python's operations in the same order (bit-identical).
_F1_BODY = (
    "CASE WHEN __r__ IS NULL THEN NULL "
    "WHEN __p__[1] = '' OR __r__[1] = '' THEN CAST(0 AS DOUBLE) "
    "ELSE list_transform(["
    "  len(list_filter(__r__, (t, i) -> CASE WHEN list_position(__r__, t) = i THEN list_contains(__p__, t) "
    "    ELSE len(list_filter(__r__[1:i], x -> x = t)) <= len(list_filter(__p__, x -> x = t)) END))"
    "], n -> CASE WHEN n = 0 THEN CAST(0 AS DOUBLE) ELSE "
    "(2 * (CAST(n AS DOUBLE) / len(__p__)) * (CAST(n AS DOUBLE) / len(__r__))) "
    "/ ((CAST(n AS DOUBLE) / len(__p__)) + (CAST(n AS DOUBLE) / len(__r__))) END)[1] END"
)


def squad_f1(prediction: exp.Expression, reference: exp.Expression) -> exp.Expression:
    """Official SQuAD token F1 (DOUBLE). NULL prediction = ''; NULL reference -> NULL."""
    return let(_F1_BODY, {"p": exp.func("string_split", squad_normalize(_as_prediction(prediction)), _lit(" ")),
                          "r": exp.func("string_split", squad_normalize(reference), _lit(" "))})


def squad_contains(prediction: exp.Expression, reference: exp.Expression) -> exp.Expression:
    """1.0 if the normalised reference tokens occur as a contiguous run of the normalised prediction tokens.

    0.0 when the normalised reference is empty. NULL prediction = ''; NULL reference -> NULL."""
    return let("CASE WHEN __r__ = '' THEN CAST(0 AS DOUBLE) "
               "ELSE CAST(contains(' ' || __p__ || ' ', ' ' || __r__ || ' ') AS DOUBLE) END",
               {"p": squad_normalize(_as_prediction(prediction)), "r": squad_normalize(reference)})


if __name__ == "__main__":  # regenerate squad_classes.py, adding the running Python's Unicode version
    from pathlib import Path

    from engine.metrics.squad_classes import CLASSES as _SHIPPED

    _table = {**_SHIPPED, _unicode_key(): _compute_classes()}
    _lines = ['"""SQuAD normaliser character classes per Unicode database, precomputed by',
              '`python -m engine.metrics.squad_sql` (tests check the running Python\'s entry). Do not edit."""',
              "CLASSES = {"]
    for _key, _classes_of_key in sorted(_table.items()):
        _lines.append(f"    {_key!r}: {{")
        _lines += [f"        {name!r}: {value!r}," for name, value in sorted(_classes_of_key.items())]
        _lines.append("    },")
    _lines.append("}")
    (Path(__file__).parent / "squad_classes.py").write_text("\n".join(_lines) + "\n", encoding="utf-8")
