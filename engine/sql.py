"""The one place where SQL text is produced.

Everything else builds sqlglot ASTs; identifiers come from code or allowlisted config names, values travel
as bound parameters (`$name`) or sqlglot literals, never as formatted strings.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any, Callable, Mapping

import sqlglot
from sqlglot import exp

DIALECT = "duckdb"


_POSITION = frozenset({"line", "col", "start", "end"})  # where the parser found a token, in node.meta


@lru_cache(maxsize=2048)
def _parsed(text: str) -> exp.Expression:
    """A template's tree without the parser's token positions: nobody reads them in code-base SQL, and each is a
    dict that every later copy of the tree (each use, each builder step, each render) deep-copies: ~40 % of a
    copy's time."""
    tree = sqlglot.parse_one(text, dialect=DIALECT)
    for node in tree.walk():
        meta = node._meta
        if meta is not None and meta.keys() <= _POSITION:
            node._meta = None
    return tree


def template(text: str) -> exp.Expression:
    """A SQL template written in the code base (never user text), parsed once and copied on each use (a copy
    costs a fraction of a parse)."""
    return _parsed(text).copy()


parse = template  # the same: every caller gets its own tree to change


def parse_expression(template: str, **substitutions: exp.Expression) -> exp.Expression:
    """Parse a SQL template written in the code base and replace its `__name__` placeholders (bare columns, or
    tables) with AST nodes, e.g. parse_expression("length(__text__)", text=exp.column("output_text"))."""
    def substitute(node: exp.Expression) -> exp.Expression:
        if isinstance(node, (exp.Column, exp.Table)) and not (node.args.get("table") or node.args.get("db")):
            name = node.name
            if name.startswith("__") and name.endswith("__") and name[2:-2] in substitutions:
                return substitutions[name[2:-2]].copy()
        return node

    return _parsed(template).transform(substitute)


LET = "_let"  # the lambda parameter of `let`; templates inside a let body must not use it for their own lambdas


def let_field(name: str) -> exp.Expression:
    """A binding of the enclosing `let`, where `__name__` placeholders cannot reach (inside another substitution)."""
    # struct_extract(_let, 'k'), not _let.k: DuckDB resolves `_let.k` to a *column* named _let when the input has
    # one, while a bare lambda parameter shadows columns.
    return exp.func("struct_extract", exp.column(LET), exp.Literal.string(name))


def let(body: str, bindings: dict[str, exp.Expression], **substitutions: exp.Expression) -> exp.Expression:
    """Evaluate each binding once and use it several times in `body` (as `__name__` placeholders, like the
    substitutions). DuckDB has no LET; a one-element list of a struct mapped through a lambda does the job and
    keeps large expressions from being repeated (and recomputed per list element inside other lambdas)."""
    struct = exp.func("struct_pack", *[exp.PropertyEQ(this=exp.to_identifier(k), expression=v.copy())
                                       for k, v in bindings.items()])
    lam = parse_expression(body, **substitutions, **{k: let_field(k) for k in bindings})
    return parse_expression(f"list_transform([__struct__], {LET} -> __body__)[1]", struct=struct, body=lam)


def literal(value: Any) -> exp.Expression:
    """A Python value as a SQL literal AST node (strings are escaped by sqlglot)."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, (list, tuple)):
        return exp.Array(expressions=[literal(v) for v in value])
    raise TypeError(f"cannot make a SQL literal from {type(value).__name__}")


def param(name: str) -> exp.Expression:
    return exp.Placeholder(this=name)


def temp_table(name: str, query: exp.Expression, replace: bool = True) -> exp.Create:
    """CREATE [OR REPLACE] TEMPORARY TABLE name AS query: a plan step that materialises a relation later steps read."""
    return exp.Create(this=exp.to_table(name), kind="TABLE", replace=replace,
                      properties=exp.Properties(expressions=[exp.TemporaryProperty()]), expression=query)


def temp_relation(tree: exp.Expression) -> tuple[str, exp.Expression] | None:
    """(name, query) of a `CREATE [OR REPLACE] TEMP TABLE name AS query`, else None."""
    if not isinstance(tree, exp.Create) or str(tree.args.get("kind") or "").upper() != "TABLE":
        return None
    props = tree.args.get("properties")
    temporary = props is not None and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions)
    query = tree.expression
    if not temporary or query is None:
        return None
    return tree.this.name, query


def computed_part(tree: exp.Expression) -> tuple[exp.Expression, str]:
    """What another engine (Spark) computes of a plan statement, and what becomes of its rows: the SELECT of an
    INSERT ... SELECT (the store inserts them), of a COPY (SELECT ...) TO (the store writes the file), the query
    of a CREATE TEMP TABLE ... AS (kept there as a cached view); otherwise the statement itself ('')."""
    if isinstance(tree, exp.Insert) and isinstance(tree.expression, exp.Query):
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        return tree.expression, f"its rows are inserted into the store's `{target.name}` by DuckDB"
    if isinstance(tree, exp.Copy):
        query = tree.this.this if isinstance(tree.this, exp.Subquery) else tree.this
        if isinstance(query, exp.Query):
            return query, "its rows are written to the file by DuckDB"
    made = temp_relation(tree)
    if made is not None:
        return made[1], f"kept there as a cached view named {made[0]}"
    return tree, ""


def render(node: exp.Expression, pretty: bool = False, dialect: str = DIALECT) -> str:
    """The one place a tree becomes SQL text, in the backend's dialect (DuckDB, the store's, by default). Another
    engine's text is rendered from a rewritten copy (engine/dialects/: where the engines read SQL differently)."""
    if dialect != DIALECT:
        from engine.dialects import for_dialect

        node = for_dialect(node, dialect)
    return node.sql(dialect=dialect, pretty=pretty)


@dataclass(frozen=True)
class Statement:
    """One named SQL statement of a plan. `params` lists the `$name` parameters it expects.

    A statement rendered earlier and kept as text (a cache of compiled SQL: engine/ingest/compiled.py) has
    `rendered` and no tree; its `params` are then exactly the parameters the text uses."""

    name: str
    tree: exp.Expression | None
    params: tuple[str, ...] = ()
    description: str = ""
    only_when: str = ""  # a step that runs only in some cases says when (else it always runs)
    rendered: str = ""

    def conditional(self, when: str) -> "Statement":
        return replace(self, only_when=when)

    # Rendered once, pretty: the text that runs is the text plan.sql and `flywheel compile` print. A statement may
    # run many times (a what-if replay runs its rules per stored decision), and rendering a sqlglot tree (a deep
    # copy, then the generator) costs more than running a small query. Plans never change a tree once built.
    @cached_property
    def text(self) -> str:
        return self.rendered if self.tree is None else render(self.tree, pretty=True)

    @cached_property
    def placeholders(self) -> frozenset[str]:
        """The `$name` parameters the SQL really uses (what the executor binds)."""
        if self.tree is None:
            return frozenset(self.params)
        return frozenset(p.name for p in self.tree.find_all(exp.Placeholder))

    def sql(self, pretty: bool = False) -> str:
        """The statement's SQL: pretty (what runs), or on one line (rendered again, for a reader)."""
        return self.text if pretty or self.tree is None else render(self.tree)


@lru_cache(maxsize=2048)
def statement(name: str, text: str, description: str = "", only_when: str = "") -> Statement:
    """A plan statement from a SQL template written in the code base; its `$parameters` are read from the text.

    Built once per distinct template (statements are immutable, so callers share one): parsing, and rendering the
    statement to run it, would otherwise be paid each time a plan is built."""
    tree = parse(text)
    params = tuple(dict.fromkeys(p.name for p in tree.find_all(exp.Placeholder) if p.name))
    return Statement(name, tree, params, description, only_when)


@dataclass(frozen=True)
class PythonStep:
    """A named plan step that runs in Python: model and judge calls, reading golden files, a drift test's p-value.
    It has no SQL of its own; the statements it issues are recorded under its name in run_results.json
    (engine/journal.py)."""

    name: str
    description: str = ""
    only_when: str = ""
    params: tuple[str, ...] = ()

    def conditional(self, when: str) -> "PythonStep":
        return PythonStep(self.name, self.description, when, self.params)

    def sql(self, pretty: bool = False) -> str:
        return ""


@dataclass(frozen=True)
class Write:
    """A named plan step that writes an Arrow table into a store table (append, or upsert on the table's key),
    through the backend's bulk path (engine/backend.py)."""

    name: str
    table: str
    mode: str = "append"  # append | upsert
    description: str = ""
    only_when: str = ""
    params: tuple[str, ...] = ()

    def conditional(self, when: str) -> "Write":
        return Write(self.name, self.table, self.mode, self.description, when)

    def sql(self, pretty: bool = False) -> str:
        return ""


@dataclass(frozen=True)
class Plan:
    """Plain data: the statements a command will run, in order. The compiler makes it; the executor runs it."""

    command: str
    statements: tuple[Statement | PythonStep | Write, ...] = field(default_factory=tuple)

    def step(self, name: str) -> "Statement | PythonStep | Write":
        """The plan's step of that name (a command runs the steps of the plan it was handed, by name)."""
        for st in self.statements:
            if st.name == name:
                return st
        raise KeyError(f"plan '{self.command}' has no step '{name}'")

    def between(self, after: str, before: str) -> tuple["Statement | PythonStep | Write", ...]:
        """The steps strictly between two named steps, in order."""
        names = [st.name for st in self.statements]
        return self.statements[names.index(after) + 1:names.index(before)]

    def to_text(self, runs_on: Callable[[Statement], str] | None = None, notes: Mapping[str, str] | None = None
                ) -> str:
        """The plan as `flywheel compile` prints it. `runs_on(statement) -> dialect`: where each statement runs
        when the backend is not DuckDB alone (backend=spark), each printed in its engine's dialect: what that
        engine computes (`computed_part`) and what the store does with its rows. `notes`: why a statement runs on
        the store although the backend is another engine, by statement name."""
        parts = []
        for st in self.statements:
            header = f"-- {st.name}"
            if st.description:
                header += f": {st.description}"
            if st.params:
                header += f"\n-- parameters: {', '.join('$' + p for p in st.params)}"
            if st.only_when:
                header += f"\n-- runs only {st.only_when}"
            if isinstance(st, PythonStep):
                parts.append(f"{header}\n-- python step: its statements are recorded under this name")
                continue
            if isinstance(st, Write):
                parts.append(f"{header}\n-- write: {st.mode} into {st.table} from an Arrow table")
                continue
            dialect = runs_on(st) if runs_on is not None and st.tree is not None else DIALECT
            if dialect == DIALECT:
                where = "" if runs_on is None else "\n-- runs on: the store (duckdb)"
                if runs_on is not None and (notes or {}).get(st.name):
                    where += f": {notes[st.name]}"
                parts.append(f"{header}{where}\n{st.text};")
                continue
            from engine.dialects import NotPortable

            query, then = computed_part(st.tree)
            try:
                parts.append(f"{header}\n-- runs on: {dialect}{chr(10) + '-- ' + then if then else ''}\n"
                             f"{render(query, pretty=True, dialect=dialect)};")
            except NotPortable as e:
                parts.append(f"{header}\n-- runs on: {dialect}: NOT PORTABLE: {e}")
        return "\n\n".join(parts) + "\n"
