"""Text building blocks shared by the lexical metric kinds, as SQL expressions (no Python UDFs).

DuckDB's RE2 `\\b`, `\\s` and `\\w` are ASCII-only, so every class here is spelled with Unicode properties:
a word is a run of letters or digits (`\\pL`, `\\pN`); whitespace is what Python's `str.isspace()` accepts.
"""
from __future__ import annotations

from sqlglot import exp

from engine.sql import literal, parse_expression

# Python's str.isspace(): the separators \p{Z} plus the ASCII/Latin-1 control whitespace.
UNICODE_SPACE = "[\\t\\n\\x{0B}\\f\\r\\x{1C}-\\x{1F}\\x{85}\\pZ]"
NON_WORD = "[^\\pL\\pN]+"
APOSTROPHES = "['\u2019\u02bc]"

# A small English list: function words that say nothing about what a question is about.
STOPWORDS = (
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "been", "before",
    "but", "by", "can", "could", "did", "do", "does", "for", "from", "get", "had", "has", "have", "he", "her",
    "here", "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "many", "me", "much", "my", "no",
    "not", "of", "on", "or", "our", "out", "please", "she", "should", "so", "some", "than", "that", "the",
    "their", "them", "then", "there", "these", "they", "this", "those", "to", "too", "up", "us", "was", "we",
    "were", "what", "whats", "when", "where", "which", "who", "why", "will", "with", "would", "you", "your",
    # contractions, apostrophes dropped
    "cant", "dont", "doesnt", "didnt", "im", "ive", "isnt", "wont", "youre", "its", "thats", "theres",
)

# Refusal phrases (RE2 patterns), matched anywhere, ignoring case, after curly apostrophes become straight.
REFUSAL_PATTERNS = (
    "i'm sorry, but i can't", "i am sorry, but i can't", "i cannot help", "i can't help", "i can't assist",
    "i cannot assist", "i'm not able to help", "i am not able to help", "i'm unable to help", "i am unable to help",
    "i won't help", "i can't provide", "i cannot provide",
)


def words(text: exp.Expression) -> exp.Expression:
    """Lowercase word tokens (VARCHAR[]): apostrophes dropped ("don't" -> "dont"), split on non letters/digits."""
    return parse_expression(
        "list_filter(regexp_split_to_array(regexp_replace(lower(__t__), __apos__, '', 'g'), __nw__), "
        "lambda _w: _w <> '')", t=text, apos=literal(APOSTROPHES), nw=literal(NON_WORD))


def content_tokens(text: exp.Expression, stopwords: tuple[str, ...] | list[str] = STOPWORDS) -> exp.Expression:
    """Distinct words of `text` that are not stopwords (VARCHAR[])."""
    return parse_expression("list_distinct(list_filter(__w__, lambda _c: NOT list_contains(__stop__, _c)))",
                            w=words(text), stop=literal(sorted(set(stopwords))))


def share_in(tokens: exp.Expression, pool: exp.Expression) -> exp.Expression:
    """Share of `tokens` found in `pool` (DOUBLE); NULL when `tokens` is empty."""
    return parse_expression(
        "CAST(len(list_filter(__t__, lambda _x: list_contains(__p__, _x))) AS DOUBLE) / NULLIF(len(__t__), 0)",
        t=tokens, p=pool)


def alternation(patterns: tuple[str, ...] | list[str], ignore_case: bool = True) -> str:
    """One RE2 pattern matching any of `patterns` (a constant, so DuckDB compiles it once)."""
    return ("(?i)" if ignore_case else "") + "|".join(f"(?:{p})" for p in patterns)


def straight_apostrophes(text: exp.Expression) -> exp.Expression:
    return exp.RegexpReplace(this=text, expression=literal("[\u2019\u02bc]"),
                             replacement=literal("'"), modifiers=literal("g"))


def any_pattern(text: exp.Expression, patterns: tuple[str, ...] | list[str]) -> exp.Expression:
    """TRUE when `text` (curly apostrophes straightened) matches one of the RE2 `patterns`, ignoring case."""
    return exp.func("regexp_matches", straight_apostrophes(text), literal(alternation(patterns)))
