"""Regular expressions that mean the same on DuckDB (RE2) and on Spark (java.util.regex).

Compiled SQL writes patterns in RE2 syntax (DuckDB's engine). `to_java(pattern)` is the same pattern for Java,
raising `NotPortable` for a construct Java would read differently and that has no faithful spelling; every
regex literal of a statement rendered for Spark goes through it (engine/dialects/spark_text.py).
`problems(pattern)` is the config-time check of a user's pattern (a `regex_match` pattern, a safety rule, a
regex inside `kind: sql`): the constructs `to_java` refuses, and repetitions Java could take exponential time
on (RE2 is linear; Java backtracks).

What differs, and the Java spelling used (tests/parity/test_regex_parity.py runs each on both engines):
* `.` and `$`: Java ends lines at \\r, U+0085, U+2028 and U+2029 too, and its `$` also matches before a final
  line break. Patterns run with UNIX_LINES (`(?d)`: only \\n ends a line) and `$` becomes `\\z` (RE2's `$`
  outside multi-line mode is the end of the text). Multi-line mode `(?m)` is refused: Java's `^` does not
  match after a final \\n.
* `(?i)`: Java folds ASCII only unless UNICODE_CASE; patterns run with `(?u)`.
* `\\s`: RE2's is [\\t\\n\\f\\r ], Java's adds \\x0B; `\\v` is \\x0B in RE2 and a class in Java. Spelled out.
* `\\b`/`\\B`: RE2's are ASCII; Java 17's count Unicode letters as word characters. Spelled with ASCII
  look-around.
* `[[:punct:]]` and the other POSIX classes: Java reads `[[:punct:]]` as the letters `:punct`. They become
  Java's ASCII `\\p{Punct}`, `\\p{Alpha}`, ...
* Character classes: Java nests `[...]` inside a class and reads `&&` as intersection; RE2 reads both
  literally. Literal `[`, `]`, `&`, `^`, `-`, `\\` in a class are escaped.
* `\\p{Greek}` (a script) is `\\p{IsGreek}` in Java; `\\p{Any}` is spelled as a range.
* `(?P<name>...)` is `(?<name>...)` in Java; RE2's `(?U)` (ungreedy) is Java's UNICODE_CHARACTER_CLASS:
  refused, as are `\\C`, and a `{` that does not start a repetition (RE2 reads it literally, Java fails).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.dialects.rewrites import NotPortable

PREFIX = "(?du)"  # UNIX_LINES and UNICODE_CASE, on every pattern run by Spark

_SPACE_ITEMS = "\\t\\n\\f\\r "  # RE2's \s
_NOT_SPACE_ITEMS = "\\x{0}-\\x{8}\\x{B}\\x{E}-\\x{1F}\\x{21}-\\x{10FFFF}"
_WORD = "[0-9A-Za-z_]"
_BOUNDARY = f"(?:(?<={_WORD})(?!{_WORD})|(?<!{_WORD})(?={_WORD}))"
_NOT_BOUNDARY = f"(?:(?<={_WORD})(?={_WORD})|(?<!{_WORD})(?!{_WORD}))"
_POSIX = {"alnum": "Alnum", "alpha": "Alpha", "ascii": "ASCII", "blank": "Blank", "cntrl": "Cntrl",
          "digit": "Digit", "graph": "Graph", "lower": "Lower", "print": "Print", "punct": "Punct",
          "space": "Space", "upper": "Upper", "xdigit": "XDigit"}
_CATEGORIES = {"L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No", "P", "Pc", "Pd",
               "Ps", "Pe", "Pi", "Pf", "Po", "S", "Sm", "Sc", "Sk", "So", "Z", "Zs", "Zl", "Zp", "C", "Cc", "Cf",
               "Cs", "Co", "Cn"}
_CLASS_SPECIAL = set("[]\\^-&")
_SIMPLE_ESCAPES = {"t": "\\t", "n": "\\n", "r": "\\r", "f": "\\f", "a": "\\x{7}", "v": "\\x{B}"}
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")


@dataclass
class _Group:
    start: int  # index in the output where the group's body starts
    first: str | None = None  # the body's first atom when it is a single literal character (Python re text)
    first_set: bool = False
    repeated_atoms: list[str] = field(default_factory=list)  # RE2 text of the repeated atoms inside (Python re)
    alternation: bool = False
    unknown_repeat: bool = False  # a repeated atom whose characters cannot be reasoned about


class _Translator:
    def __init__(self, pattern: str):
        self.p = pattern
        self.i = 0
        self.out: list[str] = []
        self.problems: list[str] = []
        self.groups: list[_Group] = [_Group(0)]
        self.last_atom: tuple[str, str | None, _Group | None] | None = None  # (kind, python text, group)

    def refuse(self, what: str) -> None:
        self.problems.append(what)

    # -- atoms ----------------------------------------------------------------------------------------------
    def atom(self, java: str, python: str | None, group: _Group | None = None) -> None:
        self.out.append(java)
        top = self.groups[-1]
        if not top.first_set:
            top.first_set = True
            top.first = python if group is None and python is not None and _single_char(python) else None
        self.last_atom = ("group" if group else "atom", python, group)

    def run(self) -> str:
        p = self.p
        while self.i < len(p):
            c = p[self.i]
            if c == "\\":
                self.escape()
            elif c == "[":
                self.char_class()
            elif c == "(":
                self.open_group()
            elif c == ")":
                self.close_group()
            elif c == "|":
                self.groups[-1].alternation = True
                self.groups[-1].first_set = True
                self.groups[-1].first = None
                self.out.append("|")
                self.last_atom = None
                self.i += 1
            elif c in "*+?{":
                self.quantifier()
            elif c == "$":
                self.atom("\\z", None)
                self.i += 1
            elif c == "^":
                self.atom("^", None)
                self.i += 1
            elif c == ".":
                self.atom(".", ".")
                self.i += 1
            else:
                self.atom(c, re.escape(c))
                self.i += 1
        if len(self.groups) > 1:
            self.refuse("an unclosed group")
        return PREFIX + "".join(self.out)

    def escape(self) -> None:
        p, i = self.p, self.i
        if i + 1 >= len(p):
            self.refuse("a trailing backslash")
            self.i += 1
            return
        c = p[i + 1]
        self.i += 2
        if c in "dDwW":
            self.atom("\\" + c, "\\" + c if c in "dD" else ("[0-9A-Za-z_]" if c == "w" else "[^0-9A-Za-z_]"))
        elif c == "s":
            self.atom(f"[{_SPACE_ITEMS}]", "[\\t\\n\\f\\r ]")
        elif c == "S":
            self.atom(f"[^{_SPACE_ITEMS}]", "[^\\t\\n\\f\\r ]")
        elif c == "b":
            self.atom(_BOUNDARY, None)
        elif c == "B":
            self.atom(_NOT_BOUNDARY, None)
        elif c in "Az":
            self.atom("\\" + c, None)
        elif c in "pP":
            self.atom(self.property(c), None)
            self.last_atom = ("atom", None, None)
        elif c == "x":
            self.i -= 1
            code = self.hex_code()
            self.atom(f"\\x{{{code:X}}}", re.escape(chr(code)) if code <= 0x10FFFF else None)
        elif c == "Q":
            end = p.find("\\E", self.i)
            text = p[self.i:] if end < 0 else p[self.i:end]
            self.i = len(p) if end < 0 else end + 2
            for ch in text:
                self.atom(f"\\x{{{ord(ch):X}}}", re.escape(ch))
        elif c in _SIMPLE_ESCAPES:
            self.atom(_SIMPLE_ESCAPES[c], re.escape({"t": "\t", "n": "\n", "r": "\r", "f": "\f", "a": "\a",
                                                     "v": "\v"}[c]))
        elif c == "0" or c in "1234567":
            if c != "0":
                self.refuse(f"'\\{c}' (a back-reference in Java, an octal escape or an error in RE2)")
            digits = re.match(r"[0-7]{0,2}", p[self.i:]).group(0)
            self.i += len(digits)
            code = int(c + digits, 8)
            self.atom(f"\\x{{{code:X}}}", re.escape(chr(code)))
        elif not c.isalnum() and c.isascii():
            self.atom("\\" + c, re.escape(c))
        else:
            self.refuse(f"the escape '\\{c}' (not read the same by RE2 and Java)")

    def hex_code(self) -> int:
        """Read `x{HHHH}` or `xHH` at self.i (pointing at 'x')."""
        p = self.p
        m = re.match(r"x\{([0-9A-Fa-f]{1,8})\}|x([0-9A-Fa-f]{2})", p[self.i:])
        if not m:
            self.refuse("a malformed \\x escape")
            self.i += 1
            return 0
        self.i += len(m.group(0))
        return int(m.group(1) or m.group(2), 16)

    def property(self, c: str) -> str:
        p = self.p
        if self.i < len(p) and p[self.i] == "{":
            end = p.find("}", self.i)
            if end < 0:
                self.refuse("a malformed \\p{...}")
                return ""
            name = p[self.i + 1:end]
            self.i = end + 1
        elif self.i < len(p):
            name = p[self.i]
            self.i += 1
        else:
            self.refuse("a malformed \\p")
            return ""
        negate = c == "P"
        if name.startswith("^"):
            negate, name = not negate, name[1:]
        letter = "P" if negate else "p"
        if name == "Any":
            return "[^\\x{0}-\\x{10FFFF}]" if negate else "[\\x{0}-\\x{10FFFF}]"
        if name in _CATEGORIES:
            return f"\\{letter}{{{name}}}"
        if re.fullmatch(r"[A-Z][A-Za-z_]*", name):
            return f"\\{letter}{{Is{name}}}"
        self.refuse(f"the Unicode class \\p{{{name}}}")
        return ""

    # -- classes --------------------------------------------------------------------------------------------
    def char_class(self) -> None:
        p = self.p
        start = self.i
        self.i += 1
        negate = self.i < len(p) and p[self.i] == "^"
        if negate:
            self.i += 1
        items: list[str] = []
        first = True
        while self.i < len(p) and (p[self.i] != "]" or first):
            first = False
            if p.startswith("[:", self.i):
                end = p.find(":]", self.i)
                name = p[self.i + 2:end] if end > 0 else ""
                neg = name.startswith("^")
                name = name.lstrip("^")
                if end < 0 or name not in _POSIX and name != "word":
                    self.refuse(f"the POSIX class {p[self.i:end + 2]!r}")
                    self.i += 2
                    continue
                items.append(("[^0-9A-Za-z_]" if neg else "\\w") if name == "word" else
                             f"\\{'P' if neg else 'p'}{{{_POSIX[name]}}}")
                if neg and name == "word":
                    self.refuse("[[:^word:]] inside a class")
                self.i = end + 2
                continue
            lo = self.class_char()
            if lo is None:
                continue
            if self.i + 1 < len(p) and p[self.i] == "-" and p[self.i + 1] != "]":
                self.i += 1
                hi = self.class_char()
                items.append(f"{lo}-{hi}" if hi is not None else lo)
            else:
                items.append(lo)
        if self.i >= len(p):
            self.refuse("an unclosed character class")
            return
        self.i += 1
        java = "[" + ("^" if negate else "") + "".join(items) + "]"
        self.atom(java, _python_class(p[start:self.i]))

    def class_char(self) -> str | None:
        """One class member at self.i as Java text (None when it was a multi-character item already added)."""
        p = self.p
        c = p[self.i]
        if c != "\\":
            self.i += 1
            return _class_literal(c)
        if self.i + 1 >= len(p):
            self.refuse("a trailing backslash")
            self.i += 1
            return None
        e = p[self.i + 1]
        if e == "x":
            self.i += 1
            return f"\\x{{{self.hex_code():X}}}"
        self.i += 2
        if e in "dDwW":
            return "\\" + e
        if e == "s":
            return _SPACE_ITEMS
        if e == "S":
            return _NOT_SPACE_ITEMS
        if e in "pP":
            text = self.property(e)
            if text.startswith("["):
                self.refuse("\\p{Any} inside a class")
            return text
        if e in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[e]
        if not e.isalnum() and e.isascii():
            return _class_literal(e)
        self.refuse(f"the escape '\\{e}' inside a class")
        return None

    # -- groups and repetition ------------------------------------------------------------------------------
    def open_group(self) -> None:
        p = self.p
        rest = p[self.i:]
        m = re.match(r"\(\?P?<([A-Za-z][A-Za-z0-9]*)>", rest)
        if m:
            self.out.append(f"(?<{m.group(1)}>")
            self.i += len(m.group(0))
        elif rest.startswith("(?P<") or rest.startswith("(?<"):
            self.refuse("a group name other than letters and digits (Java allows no other)")
            self.i += 3
            self.out.append("(")
        elif rest.startswith("(?"):
            m = re.match(r"\(\?(-?[imsU]*(?:-[imsU]*)?)(:|\))", rest)
            if not m:
                self.refuse(f"the group syntax {rest[:4]!r}")
                self.i += 2
                self.out.append("(")
            else:
                flags = m.group(1)
                if "m" in flags:
                    self.refuse("multi-line mode (?m) (Java's ^ does not match after a final line break)")
                if "U" in flags:
                    self.refuse("(?U) (ungreedy in RE2, Unicode classes in Java)")
                self.i += len(m.group(0))
                if m.group(2) == ")":  # a flag switch, not a group
                    self.out.append(m.group(0))
                    return
                self.out.append(m.group(0))
        else:
            self.out.append("(")
            self.i += 1
        self.groups.append(_Group(len(self.out)))

    def close_group(self) -> None:
        self.i += 1
        if len(self.groups) == 1:
            self.refuse("an unmatched ')'")
            return
        group = self.groups.pop()
        self.out.append(")")
        parent = self.groups[-1]
        # the group's inner repetitions are also inside its parents
        parent.repeated_atoms += group.repeated_atoms
        parent.unknown_repeat |= group.unknown_repeat
        if not parent.first_set:
            parent.first_set = True
            parent.first = group.first if not group.alternation else None
        self.last_atom = ("group", None, group)

    def quantifier(self) -> None:
        p = self.p
        c = p[self.i]
        if c == "{":
            m = _REPEAT.match(p, self.i)
            if not m:
                self.refuse("a '{' that does not start a repetition (write \\{)")
                self.atom("\\{", re.escape("{"))
                self.i += 1
                return
            text = m.group(0)
            high = None if m.group(2) and not m.group(3) else int(m.group(3) or m.group(1))
            self.i += len(text)
        else:
            text, high = c, (1 if c == "?" else None)
            self.i += 1
        if self.i < len(p) and p[self.i] == "?":
            text += "?"
            self.i += 1
        if self.last_atom is None:
            self.refuse(f"a repetition {text!r} of nothing")
            return
        self.out.append(text)
        repeated = high is None or high > 1
        kind, python, group = self.last_atom
        self.last_atom = None
        if not repeated:
            if kind == "atom" and self.groups[-1].first == python and len(self.out) - 2 == self.groups[-1].start:
                self.groups[-1].first = None  # an optional first atom is not a delimiter
            return
        top = self.groups[-1]
        if group is not None:
            self.check_repeated_group(group)
            top.unknown_repeat = True  # a repeated group: the enclosing repetition cannot reason about it
        elif python is None:
            top.unknown_repeat = True
        else:
            top.repeated_atoms.append(python)

    def check_repeated_group(self, group: _Group) -> None:
        """A repeated group may hold repetitions (or alternatives) only when each repetition starts with a literal
        character that nothing repeated inside it can match: then each repetition's extent is fixed by that
        delimiter and Java cannot backtrack exponentially. `(?:\\.[a-z]+)*` passes, `(a+)+` and `(a|a)*` do not."""
        if group.alternation:
            self.refuse("alternatives inside a repeated group (Java backtracks over them; use a character class "
                        "or a bounded repetition like {0,5})")
            return
        if not group.repeated_atoms and not group.unknown_repeat:
            return
        delimiter = group.first
        safe = (delimiter is not None and not group.unknown_repeat
                and all(not _matches(atom, delimiter) for atom in group.repeated_atoms))
        if not safe:
            self.refuse("a repetition inside a repeated group, like (a+)+ (Java's backtracking can take "
                        "exponential time on it; RE2 does not; start each repetition with a character the inner "
                        "repetition cannot match, e.g. (?:\\.[a-z]+)*)")


def _single_char(python: str) -> bool:
    try:
        return re.fullmatch(r"\\?.", python, re.S) is not None and python != "."
    except re.error:
        return False


def _matches(atom: str, delimiter: str) -> bool:
    """Can the repeated atom (Python re text) match the delimiter character (Python re text)? True when unsure."""
    char = re.sub(r"^\\", "", delimiter) if len(delimiter) == 2 else delimiter
    try:
        return re.fullmatch(atom, char) is not None
    except re.error:
        return True


def _python_class(re2_class: str) -> str | None:
    """An RE2 class as Python re text when Python reads it the same (no \\p, POSIX or \\x{...}), else None."""
    if re.search(r"\\[pPx]|\[:|\\[A-Za-z]", re2_class.replace("\\d", "").replace("\\w", "").replace("\\s", "")):
        return None
    return re2_class.replace("\\w", "0-9A-Za-z_").replace("\\s", "\\t\\n\\f\\r ")


def _class_literal(c: str) -> str:
    if c in _CLASS_SPECIAL:
        return "\\" + c
    if ord(c) < 0x20 or c.isspace():
        return f"\\x{{{ord(c):X}}}"
    return c


def to_java(pattern: str) -> str:
    """The RE2 `pattern` as a java.util.regex pattern with the same matches; NotPortable when there is none."""
    translator = _Translator(pattern)
    java = translator.run()
    refused = [p for p in translator.problems if not p.startswith(("a repetition inside", "alternatives inside"))]
    if refused:
        raise NotPortable(f"regex {pattern!r}: {refused[0]}")
    return java


def problems(pattern: str) -> list[str]:
    """Why a user's RE2 `pattern` would not mean the same on Spark (Java), or could take exponential time there."""
    translator = _Translator(pattern)
    translator.run()
    return list(dict.fromkeys(translator.problems))


def java_replacement(replacement: str) -> str:
    """An RE2 replacement string (`\\1`, `\\0`, `\\\\`; `$` is literal) in java.util.regex.Matcher's syntax."""
    out, i = [], 0
    while i < len(replacement):
        c = replacement[i]
        if c == "\\" and i + 1 < len(replacement):
            nxt = replacement[i + 1]
            if nxt.isdigit():
                out.append("$" + nxt)
            elif nxt == "\\":
                out.append("\\\\")
            else:
                raise NotPortable(f"regex replacement {replacement!r}: the escape '\\{nxt}'")
            i += 2
        elif c == "\\":
            raise NotPortable(f"regex replacement {replacement!r}: a trailing backslash")
        elif c == "$":
            out.append("\\$")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)
