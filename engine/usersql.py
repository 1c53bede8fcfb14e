"""User-written SQL expressions (custom metrics, monitor features, KPI aggregates): parse and police them.

The text is parsed by sqlglot and must be a single expression over an allowlist of columns: no statements,
subqueries, table references, parameters, window or set-returning functions. Every function it calls must be
on the allowlist of engine/usersql_functions.py (pure string, regex, math, date, list, struct and JSON
functions; aggregates only where the caller says so, i.e. KPIs). Nondeterministic functions (random(), uuid(),
now(), ...) are refused with that reason, since a score must be reproducible.

Functions are checked by the names DuckDB sees: the sqlglot tree is rendered, and DuckDB's own parser
(json_serialize_sql, which parses without binding or running anything) lists every function, operator and
expression node in it. So a spelling sqlglot rewrites (gen_random_uuid() -> uuid(), today() -> current_date)
is checked as what will actually run. The parsed tree (never the text) is placed into compiled statements.
"""
from __future__ import annotations

import difflib
import json
import threading

import sqlglot
from sqlglot import exp

from engine.sql import DIALECT, render, statement
from engine.usersql_functions import AGGREGATE_NAMES, NONDETERMINISTIC, OPERATOR_NAMES, SCALAR_NAMES

USER_SQL_META = "user_sql"  # key in an expression's sqlglot meta: the user's text

_STATEMENTS = (exp.Query, exp.DDL, exp.DML, exp.Create, exp.Drop, exp.Alter, exp.Insert, exp.Update, exp.Delete,
               exp.Merge, exp.Command, exp.Set, exp.Pragma, exp.Use, exp.Transaction, exp.Commit, exp.Rollback,
               exp.Copy, exp.Describe, exp.Attach, exp.Detach, exp.Install, exp.Summarize, exp.Cache, exp.Kill)
_FORBIDDEN = (
    ((exp.Subquery, exp.Query), "subqueries"),
    ((exp.Table, exp.From, exp.Join, exp.Lateral), "table references"),
    ((exp.Placeholder, exp.Parameter, exp.SessionParameter), "parameters"),
    ((exp.Star, exp.Columns), "*"),
    ((exp.Window,), "window functions{per_row}"),
    ((exp.Explode, exp.Unnest), "set-returning functions"),
)
# DuckDB expression classes a scalar expression is made of; anything else (SUBQUERY, STAR, WINDOW, PARAMETER,
# COLLATE, ...) is refused.
_DUCKDB_CLASSES = {"CONSTANT", "COLUMN_REF", "FUNCTION", "OPERATOR", "COMPARISON", "CONJUNCTION", "CASE", "CAST",
                   "BETWEEN", "LAMBDA", "TYPE"}
_DUCKDB_CLASS_MESSAGES = {"SUBQUERY": "subqueries are not allowed", "STAR": "* is not allowed",
                          "WINDOW": "window functions{per_row} are not allowed",
                          "PARAMETER": "parameters are not allowed"}
_NONDETERMINISTIC_REASON = ("it is nondeterministic (random, time of day or row order), and scores must be "
                            "reproducible")

_parser_lock = threading.Lock()
_parser = None


def parse_expression(text: str, columns: tuple[str, ...], *, aggregates: bool = False,
                     what: str = "expression", per_row: str = "the expression is per row",
                     hint: str = "") -> tuple[exp.Expression | None, list[str]]:
    """The parsed expression and the problems found (empty when it is acceptable).

    `what` names the expression in messages ("metric expression"), `per_row` says why aggregates and windows
    are refused, `hint` is appended to the message about qualified columns."""
    try:
        trees = [t for t in sqlglot.parse(text, dialect=DIALECT) if t is not None]
    except sqlglot.errors.SqlglotError as e:
        return None, [f"not a valid SQL expression: {str(e).splitlines()[0]}"]
    if len(trees) != 1:
        return None, [f"must be a single SQL expression, got {len(trees)} statements"]
    tree = trees[0]
    if isinstance(tree, _STATEMENTS):
        return None, [f"must be a scalar expression, not a statement ({tree.key.upper()})"]
    allowed = {c.lower() for c in columns}
    problems: list[str] = []
    seen_columns: set[str] = set()
    for node in tree.walk():
        if aggregates and isinstance(node, exp.Star) and isinstance(node.parent, exp.Count):
            continue  # count(*) in a KPI aggregate
        for classes, name in _FORBIDDEN:
            if isinstance(node, classes):
                name = name.format(per_row=f" ({per_row})")
                problems.append(f"{name} are not allowed" if name != "*" else "* is not allowed")
        if not aggregates and isinstance(node, exp.AggFunc):
            problems.append(f"aggregate functions ({per_row}) are not allowed")
        if isinstance(node, exp.Column):
            seen_columns.add(node.name.lower())
            if node.table:
                problems.append(f"column '{render(node)}' must be unqualified{hint}")
            elif node.name.lower() not in allowed:
                problems.append(f"unknown column '{node.name}'; allowed: {', '.join(columns)}")
    problems += _function_problems(tree, allowed, seen_columns, aggregates=aggregates, what=what,
                                   per_row=per_row)
    # Mark the tree as the user's: a DuckDB error while running a statement that holds it is the user's SQL
    # failing on the data (exit 2, naming the expression), not a Flywheel bug (engine/executor.py).
    tree.meta[USER_SQL_META] = text
    return tree, list(dict.fromkeys(problems))


def _function_problems(tree: exp.Expression, allowed_columns: set[str], seen_columns: set[str], *,
                       aggregates: bool, what: str, per_row: str) -> list[str]:
    """Problems with the functions and expression kinds DuckDB will see when it runs the rendered tree."""
    parsed = _duckdb_parse(render(exp.select(tree.copy())))
    if "error" in parsed:
        return [f"not a valid SQL expression: {parsed['error']}"]
    problems = []
    for cls, node, params in _nodes(parsed["expression"], frozenset()):
        if cls == "FUNCTION":
            problems += _function_name_problems(node, aggregates=aggregates, what=what, per_row=per_row)
        elif cls == "COLUMN_REF":
            names = [n.lower() for n in node.get("column_names", [])]
            name = ".".join(names)
            if len(names) == 1 and (name in allowed_columns or name in params):
                continue
            if name in NONDETERMINISTIC:
                problems.append(f"{name} is not allowed in a {what}: {_NONDETERMINISTIC_REASON}")
            elif names and names[-1] not in seen_columns:  # sqlglot took it for a function, DuckDB for a name
                problems.append(f"{name} is not allowed in a {what}")
        elif cls == "OPERATOR" and node.get("type") == "OPERATOR_UNPACK":
            problems.append("* is not allowed")
        elif cls not in _DUCKDB_CLASSES:
            message = _DUCKDB_CLASS_MESSAGES.get(cls, f"{cls.lower().replace('_', ' ')} expressions are not allowed")
            problems.append(message.format(per_row=f" ({per_row})"))
    return problems


def _function_name_problems(node: dict, *, aggregates: bool, what: str, per_row: str) -> list[str]:
    name = str(node.get("function_name", "")).lower()
    if node.get("schema") or node.get("catalog"):
        qualified = ".".join(p for p in (node.get("catalog"), node.get("schema"), name) if p)
        return [f"function {qualified}() is not allowed in a {what}: call functions by their plain name"]
    if name in NONDETERMINISTIC:
        return [f"function {name}() is not allowed in a {what}: {_NONDETERMINISTIC_REASON}"]
    if name in AGGREGATE_NAMES:
        return [] if aggregates else [f"aggregate functions ({per_row}) are not allowed"]
    if name in SCALAR_NAMES or name in OPERATOR_NAMES:
        return []
    callable_names = SCALAR_NAMES | AGGREGATE_NAMES if aggregates else SCALAR_NAMES
    close = difflib.get_close_matches(name, sorted(callable_names), n=1, cutoff=0.8)
    kinds = "string, regex, math, date, list, struct and JSON functions" + (
        " and order-independent aggregates" if aggregates else "")
    return [f"function {name}() is not allowed in a {what}"
            f"{f'; did you mean {close[0]}()?' if close else ''}: user SQL may call only the allowlisted pure "
            f"{kinds} (README, 'User SQL')"]


def _nodes(node, params: frozenset[str]):
    """(class, node, lambda parameters in scope) for every DuckDB expression node under `node`."""
    if isinstance(node, list):
        for item in node:
            yield from _nodes(item, params)
        return
    if not isinstance(node, dict):
        return
    cls = node.get("class")
    if cls == "LAMBDA":
        # `lambda x, i: ...` binds x and i inside its body; the parameter list itself is not an expression.
        yield cls, node, params
        yield from _nodes(node.get("expr"), params | _lambda_parameters(node.get("lhs")))
        return
    if cls is not None:
        yield cls, node, params
    for value in node.values():
        yield from _nodes(value, params)


def _lambda_parameters(lhs) -> frozenset[str]:
    if isinstance(lhs, dict) and lhs.get("class") == "COLUMN_REF":
        return frozenset(n.lower() for n in lhs.get("column_names", []))
    if isinstance(lhs, dict) and lhs.get("class") == "FUNCTION" and lhs.get("function_name") == "row":
        names: frozenset[str] = frozenset()
        for argument in lhs.get("arguments", []):
            names |= _lambda_parameters(argument.get("expression") if isinstance(argument, dict) else None)
        return names
    return frozenset()


_NO_EXTERNAL_ACCESS = statement("usersql:no_external_access", "SET enable_external_access = false",
                                "the parser's own connection reads no files")
_SERIALIZE = statement("usersql:parse", "SELECT json_serialize_sql($sql) AS tree", "DuckDB's parse tree of the text")


def _duckdb_parse(select_sql: str) -> dict:
    """DuckDB's parse tree of `SELECT <expression>` (nothing is bound or run): {"expression": node} or
    {"error": message}. The statement is passed as a value to json_serialize_sql, never executed."""
    global _parser
    import duckdb

    with _parser_lock:
        if _parser is None:
            _parser = duckdb.connect(":memory:")
            _parser.execute(_NO_EXTERNAL_ACCESS.text)  # a private connection (engine.executor imports this module)
        raw = _parser.execute(_SERIALIZE.text, {"sql": select_sql}).fetchall()[0][0]
    parsed = json.loads(raw)
    if parsed.get("error"):
        return {"error": str(parsed.get("error_message", "DuckDB cannot parse it")).splitlines()[0]}
    statements = parsed.get("statements") or []
    node = statements[0].get("node", {}) if len(statements) == 1 else {}
    select_list = node.get("select_list") or []
    from_table = (node.get("from_table") or {}).get("type")
    if (node.get("type") != "SELECT_NODE" or len(select_list) != 1 or from_table != "EMPTY"
            or any(node.get(k) for k in ("where_clause", "group_expressions", "having", "qualify", "modifiers"))
            or (node.get("cte_map") or {}).get("map")):
        return {"error": "not a single scalar expression"}
    return {"expression": select_list[0]}
