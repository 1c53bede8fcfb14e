"""JSON Schema -> SQL predicates over a column of raw JSON text.

The record schemas in schemas/ (trace, feedback, event) are the single source of truth for what a valid record
is. Instead of running a validator per record in Python, this module walks a schema once and produces SQL
expressions that DuckDB evaluates over a whole chunk of records:

* every path the schema names is read out of the raw text by two multi-path calls, one pass each:
  `json_type(raw, ['$."a"', '$."b"."c"', ...])` (the JSON type per path, NULL when absent) and
  `json_extract_string(raw, [...])` (the value: strings unescaped, numbers as text);
* each schema keyword becomes one `Check`: a violation predicate over those two lists (a comparison of
  short values, no further parsing) plus the reason text shown for a rejected record.

Supported keywords: type, enum, const, required, properties, additionalProperties (false), minimum, maximum,
exclusiveMinimum, exclusiveMaximum, minLength, maxLength, pattern, format (date-time), allOf, if/then/else.
Anything else raises at compile time, so a schema edit can never silently weaken the checks. The decisions
agree with `jsonschema` (Draft 2020-12) with format checking on; tests/ingest/test_schema_sql.py holds the
two side by side, and benchmarks/bench_ingest.py compares them on a million records.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlglot import exp

from engine.sql import literal, parse_expression

_ANNOTATIONS = {"$schema", "$id", "title", "description", "default", "examples", "$comment"}
_SUPPORTED = _ANNOTATIONS | {
    "type", "enum", "const", "required", "properties", "additionalProperties", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "format", "allOf",
    "if", "then", "else"}
_JSON_TYPES = ("string", "integer", "number", "boolean", "object", "array", "null")


@lru_cache(maxsize=None)
def _template(template: str) -> exp.Expression:
    return parse_expression(template)


def _e(template: str, **parts: exp.Expression) -> exp.Expression:
    """parse_expression with the parsed template cached: the compiler instantiates a few templates many times."""
    def substitute(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table:
            name = node.name
            if name.startswith("__") and name.endswith("__") and name[2:-2] in parts:
                part = parts[name[2:-2]]
                # A part already placed in a tree is copied; a fresh one is used as it is (then it has a parent,
                # so a second use copies it): compiling a schema makes thousands of these substitutions.
                return part.copy() if part.parent is not None else part
        return node

    return _template(template).transform(substitute)  # transform copies the template


def _or(items: list[exp.Expression]) -> exp.Expression:
    if not items:
        return exp.false()
    out = items[0]
    for item in items[1:]:
        out = exp.Or(this=out, expression=item)  # no copies: each item is a fresh tree
    return exp.Paren(this=out)


def _and(items: list[exp.Expression]) -> exp.Expression:
    if not items:
        return exp.true()
    out = items[0]
    for item in items[1:]:
        out = exp.And(this=out, expression=item)
    return exp.Paren(this=out)


def json_path(path: tuple[str, ...]) -> str:
    """`("attributes", "topic")` -> `$."attributes"."topic"` (quoted: any key is safe)."""
    return "$" + "".join("." + json.dumps(p, ensure_ascii=False) for p in path)


def dotted(path: tuple[str, ...]) -> str:
    return ".".join(path) if path else "<record>"


@dataclass(frozen=True)
class Check:
    """One schema rule: `violation` is true for a record that breaks it; `reason` explains it (SQL text value).

    Most rules are `coalesce(<scope> AND <when> AND <condition>, false)`: the scope (where the rule applies: the
    value is present, its parent objects are objects), the JSON type the rule is about (`when`, e.g. a string for
    maxLength) and the rule's own condition. They keep those parts apart, so that `RecordSQL.ok` can test a scope
    and a type once for all the rules of a path (`condition` None: the violation is all there is)."""

    path: tuple[str, ...]
    keyword: str
    violation: exp.Expression
    reason: exp.Expression
    scope: tuple[exp.Expression, ...] = ()
    when: exp.Expression | None = None
    condition: exp.Expression | None = None


class Value:
    """SQL views of the JSON value at one path. The query holds two lists per record, from one pass each:
    fw_t = json_type(raw, paths) (VARCHAR, BIGINT, UBIGINT, DOUBLE, BOOLEAN, NULL, OBJECT, ARRAY; NULL when
    the path is absent) and fw_w = json_extract_string(raw, paths) (strings unescaped, numbers and objects as
    JSON text). Every check is then a comparison on short values: no per-check parsing."""

    def __init__(self, rec: "RecordSQL | None", index: int, raw: exp.Expression | None = None):
        self.rec = rec
        self.i = index
        self._raw = raw  # index 0: the record itself

    def _item(self, column: exp.Expression) -> exp.Expression:
        if self.rec.split:  # one column per path, extracted once (see RecordSQL.split_columns)
            return exp.column(f"{column.name}_{self.i}")
        # sqlglot holds list indexes 0-based and renders DuckDB's 1-based form.
        return exp.Bracket(this=column.copy(), expressions=[exp.Literal.number(self.i - 1)])

    @property
    def type_name(self) -> exp.Expression:
        return self._item(self.rec.types)

    @property
    def node(self) -> exp.Expression:
        """The value as text (a string unescaped, anything else as JSON)."""
        return self._raw.copy() if self._raw is not None else self._item(self.rec.strings)

    def _t(self, template: str) -> exp.Expression:
        return _e(template, t=self.type_name)

    @property
    def present(self) -> exp.Expression:
        return self._t("__t__ IS NOT NULL")

    @property
    def is_null(self) -> exp.Expression:
        return self._t("__t__ = 'NULL'")

    @property
    def is_string(self) -> exp.Expression:
        return self._t("__t__ = 'VARCHAR'")

    @property
    def is_object(self) -> exp.Expression:
        return self._t("__t__ = 'OBJECT'")

    @property
    def is_array(self) -> exp.Expression:
        return self._t("__t__ = 'ARRAY'")

    @property
    def is_boolean(self) -> exp.Expression:
        return self._t("__t__ = 'BOOLEAN'")

    @property
    def is_number(self) -> exp.Expression:
        return self._t("__t__ IN ('BIGINT', 'UBIGINT', 'DOUBLE')")

    @property
    def is_integer(self) -> exp.Expression:
        # Draft 2020-12: 1.0 is an integer, i.e. a number whose value has no fractional part.
        return _e("(__t__ IN ('BIGINT', 'UBIGINT') OR (__t__ = 'DOUBLE' AND __n__ = trunc(__n__)))",
                  t=self.type_name, n=self.number)

    def is_type(self, name: str) -> exp.Expression:
        return {"string": lambda: self.is_string, "integer": lambda: self.is_integer,
                "number": lambda: self.is_number, "boolean": lambda: self.is_boolean,
                "object": lambda: self.is_object, "array": lambda: self.is_array,
                "null": lambda: self.is_null}[name]()

    @property
    def text(self) -> exp.Expression:
        """The unescaped string (meaningful where is_string)."""
        return self.node

    @property
    def number(self) -> exp.Expression:
        """The value as DOUBLE (meaningful where is_number)."""
        if self.rec is not None and self.rec.split:
            self.rec.numbers.add(self.i)
            return exp.column(f"fw_n_{self.i}")
        return _e("TRY_CAST(__w__ AS DOUBLE)", w=self.node)

    @property
    def kind_name(self) -> exp.Expression:
        """The JSON type of the value, for messages."""
        return self._t("CASE __t__ WHEN 'VARCHAR' THEN 'string' WHEN 'NULL' THEN 'null' WHEN 'OBJECT' THEN 'object' "
                       "WHEN 'ARRAY' THEN 'array' WHEN 'BOOLEAN' THEN 'boolean' ELSE 'number' END")

    @property
    def shown(self) -> exp.Expression:
        """The value as it appears in the record, cut to 60 characters, for messages."""
        return _e("CASE WHEN __t__ = 'NULL' THEN 'null' WHEN length(__x__) > 60 THEN __x__[1:57] || '...' ELSE __x__ END",
                  t=self.type_name, x=_e("CASE WHEN __t__ = 'VARCHAR' THEN '\"' || __w__ || '\"' ELSE __w__ END",
                                         t=self.type_name, w=self.node))


@dataclass
class RecordSQL:
    """The compiled form of a record schema: two lists per record (`extract()`) and one Check per rule."""

    schema_name: str
    raw: exp.Expression  # the raw JSON text column
    paths: list[tuple[str, ...]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    types: exp.Expression = field(default_factory=lambda: exp.column("fw_t"))  # column: json_type list
    strings: exp.Expression = field(default_factory=lambda: exp.column("fw_w"))  # column: json_extract_string list
    # split: the checks read one column per path (fw_t_<i>, fw_w_<i>, fw_n_<i>) that the query extracts from the
    # lists once, instead of indexing the lists in every check (see split_columns).
    split: bool = False
    numbers: set[int] = field(default_factory=set)  # split: the paths whose value is also needed as DOUBLE

    def index(self, path: tuple[str, ...]) -> int:
        if path not in self.paths:
            self.paths.append(path)
        return self.paths.index(path) + 1

    def value(self, path: tuple[str, ...]) -> Value:
        if not path:
            return Value(None, 0, self.raw)
        return Value(self, self.index(path))

    def _paths(self) -> exp.Expression:
        return exp.Array(expressions=[exp.Literal.string(json_path(p)) for p in self.paths])

    def extract(self, valid: exp.Expression | None = None) -> tuple[exp.Expression, exp.Expression]:
        """(json_type list, json_extract_string list); both NULL when the text is not valid JSON. `valid`: a
        column that already tells (default: json_valid of the text)."""
        # Guarded by json_valid, not try(): DuckDB re-runs a vector row by row when an error is caught, so
        # one broken line per 2,048 would make every vector slow.
        valid = valid if valid is not None else _e("json_valid(__raw__)", raw=self.raw)
        return (_e("CASE WHEN __v__ THEN json_type(__raw__, __paths__) END", v=valid, raw=self.raw,
                   paths=self._paths()),
                _e("CASE WHEN __v__ THEN json_extract_string(__raw__, __paths__) END", v=valid, raw=self.raw,
                   paths=self._paths()))

    def split_columns(self) -> list[exp.Expression]:
        """split: each path's type, text and (where a check compares numbers) DOUBLE value as its own column.

        Call it after every check and typed column is built: they register the numbers they need."""
        def item(column: str, i: int) -> exp.Expression:
            return exp.Bracket(this=exp.column(column), expressions=[exp.Literal.number(i - 1)])

        n = len(self.paths)
        out: list[exp.Expression] = [exp.alias_(item("fw_t", i), f"fw_t_{i}") for i in range(1, n + 1)]
        out += [exp.alias_(item("fw_w", i), f"fw_w_{i}") for i in range(1, n + 1)]
        out += [exp.alias_(_e("TRY_CAST(__w__ AS DOUBLE)", w=item("fw_w", i)), f"fw_n_{i}")
                for i in sorted(self.numbers)]
        return out

    def present_count(self, names: tuple[str, ...]) -> exp.Expression:
        """How many of the top-level fields `names` a record has (not counting repeated keys)."""
        top = [i for i, p in enumerate(self.paths, start=1) if len(p) == 1 and p[0] in names]
        if not top:
            return literal(0)
        return exp.Paren(this=_sum([_e("CAST(__t__ IS NOT NULL AS INTEGER)", t=Value(self, i).type_name) for i in top]))

    @property
    def not_json(self) -> exp.Expression:
        return _e("__v__ IS NULL", v=self.types)

    @property
    def not_object(self) -> exp.Expression:
        # ltrim copies the whole record (~14 % of the checks' filter): only a record that does not start with
        # `{` pays for it.
        return _e("CASE WHEN starts_with(__raw__, '{') THEN false ELSE NOT starts_with(ltrim(__raw__), '{') END",
                  raw=self.raw)

    def ok(self) -> exp.Expression:
        """True for a record that passes every check (evaluated for every record: kept cheap).

        The rules of one scope (a path, under its parents' guards) are folded into one test: the scope once, each
        JSON type a rule is about once, then the rules' conditions, instead of every rule testing them again
        (`coalesce(S AND T AND a, false) OR coalesce(S AND T AND b, false)` is true exactly when
        `coalesce(S AND T AND (a OR b), false)` is). A check without parts (`condition` None) stays as it is."""
        return _e("coalesce(NOT __b__, false)", b=_or([self.not_json, self.not_object] + folded(self.checks)))

    def reasons(self) -> exp.Expression:
        """The list of reasons a record fails (evaluated only for rejected records)."""
        detail = [exp.If(this=c.violation, true=c.reason) for c in self.checks]
        items = exp.Array(expressions=[exp.Case(ifs=[d]) for d in detail])
        listed = _e("list_filter(__items__, lambda r: r IS NOT NULL)", items=items)
        return exp.Case(ifs=[
            exp.If(this=self.not_json, true=exp.Array(expressions=[literal("invalid JSON")])),
            exp.If(this=self.not_object, true=exp.Array(expressions=[literal("not a JSON object")]))],
            default=listed)


def folded(checks: list[Check]) -> list[exp.Expression]:
    """The checks' violations with those of one scope folded into one (see RecordSQL.ok), in the checks' order."""
    scopes: dict[str, tuple[tuple[exp.Expression, ...], dict[str, tuple[exp.Expression | None, list]]]] = {}
    out: list[exp.Expression | str] = []
    for c in checks:
        if c.condition is None:
            out.append(c.violation.copy())
            continue
        key = "\x00".join(x.sql() for x in c.scope)
        if key not in scopes:
            scopes[key] = (c.scope, {})
            out.append(key)
        whens = scopes[key][1]
        when_key = c.when.sql() if c.when is not None else ""
        whens.setdefault(when_key, (c.when, []))[1].append(c.condition)
    result = []
    for item in out:
        if not isinstance(item, str):
            result.append(item)
            continue
        scope, whens = scopes[item]
        tests = []
        for when, conditions in whens.values():
            any_of = conditions[0].copy() if len(conditions) == 1 else _or([x.copy() for x in conditions])
            tests.append(any_of if when is None else _and([when.copy(), any_of]))
        broken = tests[0] if len(tests) == 1 else _or(tests)
        result.append(_e("coalesce(__c__, false)", c=_and([x.copy() for x in scope] + [broken])))
    return result


def _sum(items: list[exp.Expression]) -> exp.Expression:
    out = items[0]
    for item in items[1:]:
        out = exp.Add(this=out, expression=item)
    return out


def compile_schema(schema: dict, raw: exp.Expression, schema_name: str = "", split: bool = False) -> RecordSQL:
    """`raw`: the column of JSON text. The query must put `extract()` in the columns fw_t and fw_w (and, when
    `split`, `split_columns()` over them)."""
    rec = RecordSQL(schema_name, raw, split=split)
    rec.checks = _compile(schema, (), rec, guard=[])
    return rec


def _msg(*parts: exp.Expression | str) -> exp.Expression:
    nodes = [literal(p) if isinstance(p, str) else p for p in parts]
    out = nodes[0]
    for n in nodes[1:]:
        out = exp.DPipe(this=out, expression=n, safe=True)
    return out


def _types_of(schema: dict) -> list[str] | None:
    t = schema.get("type")
    if t is None:
        return None
    types = [t] if isinstance(t, str) else list(t)
    for name in types:
        if name not in _JSON_TYPES:
            raise ValueError(f"unsupported JSON type {name!r}")
    return types


def _matches_value(v: Value, value: Any) -> exp.Expression:
    if value is None:
        return v.is_null
    if isinstance(value, bool):
        return _e("__v__ = __lit__", v=v.node, lit=literal("true" if value else "false"))
    if isinstance(value, (int, float)):
        return _and([v.is_number, _e("__n__ = __lit__", n=v.number, lit=literal(value))])
    if isinstance(value, str):
        return _and([v.is_string, _e("__s__ = __lit__", s=v.text, lit=literal(value))])
    raise ValueError(f"unsupported enum/const value {value!r}")


def _compile(schema: dict | bool, path: tuple[str, ...], rec: RecordSQL, guard: list[exp.Expression]) -> list[Check]:
    """Checks for `schema` applied to the value at `path`, each applying only where `guard` holds."""
    if schema is True or schema == {}:
        return []
    if schema is False:
        raise ValueError("a `false` schema is not supported")
    unknown = set(schema) - _SUPPORTED
    if unknown:
        raise ValueError(f"schema keyword(s) {sorted(unknown)} at {dotted(path)} have no SQL translation")
    v = rec.value(path)
    where = dotted(path)
    checks: list[Check] = []

    def add(keyword: str, condition: exp.Expression, reason: exp.Expression, needs_present: bool = True,
            when: exp.Expression | None = None) -> None:
        """`when`: the JSON type test the rule applies under (its violation is `when AND condition`)."""
        scope = list(guard) + ([v.present] if needs_present and path else [])
        full = condition if when is None else _and([when, condition])
        checks.append(Check(path, keyword, _e("coalesce(__c__, false)", c=_and(scope + [full])), reason,
                            tuple(x.copy() for x in scope), when.copy() if when is not None else None,
                            condition.copy()))

    types = _types_of(schema)
    if types is not None and not (not path and types == ["object"]):  # the record itself: see not_object
        allowed = _or([v.is_type(t) for t in types])
        add("type", exp.not_(allowed), _msg(f"{where}: expected {' or '.join(types)}, got ", v.kind_name))

    if "enum" in schema or "const" in schema:
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        allowed = _or([_matches_value(v, x) for x in values])
        names = ", ".join("null" if x is None else str(x) for x in values)
        keyword = "enum" if "enum" in schema else "const"
        add(keyword, exp.not_(allowed), _msg(f"{where}: ", v.shown, f" is not allowed; allowed: {names}"))

    bounds = [("minimum", "<"), ("exclusiveMinimum", "<="), ("maximum", ">"), ("exclusiveMaximum", ">=")]
    for keyword, op in bounds:
        if keyword in schema:
            limit = schema[keyword]
            cond = _e(f"__n__ {op} __lit__", n=v.number, lit=literal(limit))
            word = {"minimum": "below the minimum", "exclusiveMinimum": "not above",
                    "maximum": "above the maximum", "exclusiveMaximum": "not below"}[keyword]
            add(keyword, cond, _msg(f"{where}: ", v.shown, f" is {word} {limit}"), when=v.is_number)

    if "minLength" in schema:
        n = int(schema["minLength"])
        add("minLength", _e("length(__s__) < __n__", s=v.text, n=literal(n)),
            _msg(f"{where}: shorter than {n} character(s)"), when=v.is_string)
    if "maxLength" in schema:
        n = int(schema["maxLength"])
        add("maxLength", _e("length(__s__) > __n__", s=v.text, n=literal(n)),
            _msg(f"{where}: longer than {n} characters"), when=v.is_string)
    if "pattern" in schema:
        add("pattern", _e("NOT regexp_matches(__s__, __p__)", s=v.text, p=literal(schema["pattern"])),
            _msg(f"{where}: ", v.shown, f" does not match the pattern {schema['pattern']}"), when=v.is_string)
    if schema.get("format") == "date-time":
        from engine.ingest.timestamps import sql_valid  # the rule shared with the reference validator

        add("format", exp.not_(sql_valid(v.text)), _msg(f"{where}: ", v.shown, " is not a valid date-time"),
            when=v.is_string)
    elif "format" in schema:
        raise ValueError(f"format {schema['format']!r} at {where} has no SQL translation")

    obj_guard = list(guard) + ([v.present, v.is_object] if path else [])
    for name in schema.get("required", []):
        child = rec.value(path + (name,))
        checks.append(Check(path + (name,), "required", _and(obj_guard + [exp.not_(child.present)]),
                            literal(f"{dotted(path + (name,))}: required but missing")))
    for name, sub in (schema.get("properties") or {}).items():
        checks.extend(_compile(sub, path + (name,), rec, obj_guard))
    extra = schema.get("additionalProperties", True)
    if extra is False:
        known = exp.Array(expressions=[literal(k) for k in (schema.get("properties") or {})])
        keys = _e("json_keys(__v__)", v=v.node)
        unknown_keys = _e("list_filter(__k__, lambda k: NOT list_contains(__known__, k))", k=keys, known=known)
        checks.append(Check(path, "additionalProperties",
                            _and(obj_guard + [_e("len(__u__) > 0", u=unknown_keys)]),
                            _msg(f"{where}: unknown field(s) ", _e("array_to_string(__u__, ', ')", u=unknown_keys))))
    elif extra is not True:
        raise ValueError(f"additionalProperties at {where}: only true/false have a SQL translation")

    for sub in schema.get("allOf", []):
        checks.extend(_compile(sub, path, rec, guard))
    if "if" in schema:
        cond_checks = _compile(schema["if"], path, rec, [])
        holds = exp.not_(_or([c.violation for c in cond_checks]))
        if "then" in schema:
            checks.extend(_compile(schema["then"], path, rec, list(guard) + [holds]))
        if "else" in schema:
            checks.extend(_compile(schema["else"], path, rec, list(guard) + [exp.not_(holds)]))
    return checks
