"""Spark rewrites of text functions: regular expressions (RE2 -> java.util.regex), case mapping and trimming.

One function per difference (engine/dialects/__init__.py says how they are used); each is run on both engines
by tests/parity/test_metric_kinds.py and tests/parity/test_regex_parity.py."""
from __future__ import annotations

from sqlglot import exp

from engine.dialects import regex
from engine.dialects.rewrites import NotPortable, bottom_up, rewrite

# DuckDB's one-argument trim() strips exactly the Unicode space separators (Zs; checked over every code point by
# the parity tests); Spark's strips ' ' only.
_ZS = "[\\x{20}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{202F}\\x{205F}\\x{3000}]"


def _pattern(node: exp.Expression, what: str) -> str:
    if not isinstance(node, exp.Literal) or not node.is_string:
        raise NotPortable(f"{what}: the pattern must be a string literal to be translated for Java "
                          f"(got {node.sql(dialect='duckdb')[:80]})")
    return node.this


def _options(node: exp.Expression | None, what: str, allowed: str) -> str:
    if node is None:
        return ""
    if not isinstance(node, exp.Literal) or not node.is_string:
        raise NotPortable(f"{what}: regex options must be a string literal")
    opts = node.this.replace("c", "")
    bad = sorted(set(opts) - set(allowed))
    if bad:
        raise NotPortable(f"{what}: the regex option(s) {''.join(bad)!r} (only {allowed!r} are translated)")
    return opts


def _java(pattern: str, opts: str = "") -> exp.Literal:
    return exp.Literal.string(regex.to_java(("(?i)" if "i" in opts else "") + pattern))


def _match(subject: exp.Expression, pattern: str, opts: str) -> exp.Expression:
    return exp.RegexpLike(this=subject, expression=_java(pattern, opts))


@rewrite("spark")
def java_regex(tree: exp.Expression) -> exp.Expression:
    """Every regex function: DuckDB runs RE2, Spark java.util.regex, and they read patterns differently
    (`[[:punct:]]`, `.`, `$`, `\\s`, `\\b`, `(?i)` on non-ASCII: engine/dialects/regex.py). Each literal pattern
    is translated; a pattern that is not a literal cannot be, and is refused. Also: sqlglot renders DuckDB's
    option argument ('i') nowhere, and regexp_split_to_array / regexp_full_match have no Spark name."""
    def swap(node: exp.Expression) -> exp.Expression:
        name = node.name.lower() if isinstance(node, exp.Anonymous) else ""
        if isinstance(node, exp.RegexpLike) or name == "regexp_matches":
            args = [node.this, node.expression, node.args.get("flag")] if not name else \
                (node.expressions + [None])[:3]
            return _match(args[0], _pattern(args[1], "regexp_matches"), _options(args[2], "regexp_matches", "i"))
        if isinstance(node, exp.RegexpFullMatch) or name == "regexp_full_match":
            args = [node.this, node.expression] if not name else node.expressions[:2]
            opts = _options(node.args.get("options") if not name else (node.expressions + [None, None])[2],
                            "regexp_full_match", "i")
            return _match(args[0], f"\\A(?:{_pattern(args[1], 'regexp_full_match')})\\z", opts)
        if isinstance(node, exp.RegexpReplace):
            opts = _options(node.args.get("modifiers"), "regexp_replace", "gi")
            if "g" not in opts:
                raise NotPortable("regexp_replace without the 'g' option replaces the first match on DuckDB and "
                                  "every match on Spark")
            replacement = node.args.get("replacement")
            if not isinstance(replacement, exp.Literal) or not replacement.is_string:
                raise NotPortable("regexp_replace: the replacement must be a string literal")
            return exp.Anonymous(this="regexp_replace", expressions=[
                node.this, _java(_pattern(node.expression, "regexp_replace"), opts),
                exp.Literal.string(regex.java_replacement(replacement.this))])
        if isinstance(node, (exp.RegexpExtract, exp.RegexpExtractAll)):
            fn = "regexp_extract" if isinstance(node, exp.RegexpExtract) else "regexp_extract_all"
            if node.args.get("parameters") or node.args.get("position") or node.args.get("occurrence"):
                raise NotPortable(f"{fn} with options")
            group = node.args.get("group") or exp.Literal.number(0)
            return exp.Anonymous(this=fn, expressions=[node.this, _java(_pattern(node.expression, fn)), group])
        if name in ("regexp_split_to_array", "string_split_regex", "str_split_regex"):
            subject, pattern = node.expressions[:2]
            opts = _options((node.expressions + [None, None])[2], name, "i")
            # Spark's split keeps trailing empty strings only with limit -1, as DuckDB always does
            return exp.Anonymous(this="split", expressions=[subject, _java(_pattern(pattern, name), opts),
                                                            exp.Literal.number(-1)])
        if isinstance(node, exp.RegexpSplit):
            return exp.Anonymous(this="split", expressions=[
                node.this, _java(_pattern(node.expression, "regexp_split_to_array")), exp.Literal.number(-1)])
        return node
    return bottom_up(tree, swap)


@rewrite("spark")
def simple_lowercase(tree: exp.Expression) -> exp.Expression:
    """lower(): DuckDB maps each code point by its simple lowercase mapping; Spark (ICU/Java full mapping) turns
    U+0130 'İ' into 'i' + U+0307 and a final capital sigma into 'ς'. Both are replaced by their simple mapping
    first ('İ' -> 'i', 'Σ' -> 'σ'), which Spark's lower() then leaves alone. (Characters assigned in Unicode 16,
    which DuckDB's tables predate, still differ: README, "SQL on Spark".)"""
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Lower):
            inner = exp.func("replace", exp.func("replace", node.this, exp.Literal.string("\u0130"),
                                                 exp.Literal.string("i")),
                             exp.Literal.string("\u03a3"), exp.Literal.string("\u03c3"))
            return exp.Lower(this=inner)
        return node
    return bottom_up(tree, swap)


@rewrite("spark")
def no_full_uppercase(tree: exp.Expression) -> exp.Expression:
    """upper(): DuckDB maps each code point by its simple uppercase mapping, Spark by the full one ('ß' ->
    'SS', 'ﬀ' -> 'FF', 'ŉ' -> 'ʼN': 157 code points). No spelling keeps DuckDB's meaning: refused."""
    if tree.find(exp.Upper) is not None:
        raise NotPortable("upper() maps 157 characters ('ß', 'ﬀ', 'ŉ', ...) differently on Spark; use lower()")
    return tree


@rewrite("spark")
def unicode_trim(tree: exp.Expression) -> exp.Expression:
    """trim()/ltrim()/rtrim() without characters: DuckDB strips every Unicode space separator (U+00A0, U+3000,
    ...), Spark only ' '. Spelled as a regex replacement of leading/trailing Zs characters."""
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Trim) and node.args.get("expression") is None:
            position = str(node.args.get("position") or "").upper()
            parts = []
            if position in ("", "BOTH", "LEADING"):
                parts.append(f"\\A{_ZS}+")
            if position in ("", "BOTH", "TRAILING"):
                parts.append(f"{_ZS}+\\z")
            return exp.Anonymous(this="regexp_replace", expressions=[
                node.this, exp.Literal.string(regex.to_java("|".join(parts))), exp.Literal.string("")])
        return node
    return bottom_up(tree, swap)


@rewrite("spark")
def literal_split(tree: exp.Expression) -> exp.Expression:
    """string_split(s, sep): DuckDB splits on the separator as text; Spark's split() reads it as a regex. The
    separator (a non-empty literal) becomes a pattern matching it literally; limit -1 keeps trailing empty parts,
    as DuckDB does."""
    def swap(node: exp.Expression) -> exp.Expression:
        name = node.name.lower() if isinstance(node, exp.Anonymous) else ""
        if isinstance(node, exp.Split) or name in ("string_split", "str_split", "string_to_array"):
            subject, sep = (node.this, node.expression) if isinstance(node, exp.Split) else node.expressions[:2]
            if not isinstance(sep, exp.Literal) or not sep.is_string or not sep.this:
                raise NotPortable("string_split: the separator must be a non-empty string literal")
            pattern = "".join(f"\\x{{{ord(c):X}}}" for c in sep.this)
            return exp.Anonymous(this="split", expressions=[subject, exp.Literal.string(regex.to_java(pattern)),
                                                            exp.Literal.number(-1)])
        return node
    return bottom_up(tree, swap)
