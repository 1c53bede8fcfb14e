"""Spark rewrites of list functions (DuckDB LIST -> Spark ARRAY); one function per difference, each run on both
engines by tests/parity/test_metric_kinds.py and tests/parity/test_dialect_rewrites.py."""
from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types

from engine.dialects.rewrites import NotPortable, bottom_up, rewrite

# Columns of the scored row (and of the trajectory facts) that hold lists.
_LIST_COLUMNS = {"expected_answers", "context", "tags", "forbidden_tools", "calls", "call_failed", "expected", "m",
                 "forbidden",
                 "fw_question_words", "fw_answer_words"}  # lexical_relevance's per-row bindings (MetricSQL.bindings)
_LIST_FUNCTIONS = {"regexp_split_to_array", "string_split_regex", "str_split_regex", "list_reverse", "split",
                   "list_distinct", "list_filter", "list_transform", "list_sort", "slice", "sequence", "string_split",
                   "str_split", "string_to_array", "list_concat", "flatten", "regexp_extract_all", "array"}
_LIST_NODES = (exp.Array, exp.ArrayFilter, exp.ArrayDistinct, exp.Transform, exp.Flatten, exp.Split,
               exp.RegexpExtractAll, exp.ArrayConcat, exp.ArraySort, exp.RegexpSplit, exp.GenerateSeries)


def _lambda_list(var: exp.Expression) -> exp.Expression | None:
    """The list a lambda parameter ranges over (the first argument of the function the lambda belongs to)."""
    node = var.parent
    while node is not None:
        if isinstance(node, exp.Lambda) and any(p.name == var.name for p in node.expressions[:1]):
            fn = node.parent
            return fn.this if fn is not None and isinstance(fn.this, exp.Expression) else None
        node = node.parent
    return None


def is_list(node: exp.Expression | None) -> bool:
    """Does `node` produce a list? (A wrong answer fails on Spark with a type error, never silently.)"""
    if node is None:
        return False
    if isinstance(node, exp.Paren):
        return is_list(node.this)
    if isinstance(node, _LIST_NODES):
        return True
    if isinstance(node, exp.Bracket):
        return isinstance(node.expressions[0], exp.Slice) or _elements_are_lists(node.this)
    if isinstance(node, exp.Anonymous):
        return node.name.lower() in _LIST_FUNCTIONS
    if isinstance(node, (exp.Coalesce, exp.Nullif)):
        return is_list(node.this)
    if isinstance(node, exp.Cast):
        return node.to.is_type(exp.DataType.Type.ARRAY) or bool(node.to.expressions)
    if isinstance(node, (exp.StructExtract, exp.Dot)) or (isinstance(node, exp.Anonymous)
                                                           and node.name.lower() == "struct_extract"):
        return _let_binding_is_list(node)
    if isinstance(node, (exp.Column, exp.Identifier)):
        if isinstance(node, exp.Identifier) or not node.table:
            source = _lambda_list(node)
            if source is not None:
                return _elements_are_lists(source)
        return node.name in _LIST_COLUMNS
    return False


def _elements_are_lists(node: exp.Expression) -> bool:
    if isinstance(node, exp.Array):
        return bool(node.expressions) and is_list(node.expressions[0])
    if isinstance(node, exp.Transform):
        lam = node.expression
        return isinstance(lam, exp.Lambda) and is_list(lam.this)
    return False


def _let_binding_is_list(node: exp.Expression) -> bool:
    """`struct_extract(_let, 'k')`: the `let` binding k (engine/sql.py `let`) is a list."""
    field = node.expression if isinstance(node, exp.StructExtract) else None
    if field is None and isinstance(node, exp.Anonymous):
        field = node.expressions[1]
    name = field.name if field is not None else ""
    holder = _lambda_list(node.this if not isinstance(node, exp.Anonymous) else node.expressions[0])
    if isinstance(holder, exp.Array) and holder.expressions:
        struct = holder.expressions[0]
        for prop in struct.expressions if isinstance(struct, (exp.Struct, exp.Anonymous)) else []:
            if isinstance(prop, (exp.PropertyEQ, exp.Alias)) and prop.alias_or_name == name:
                return is_list(prop.expression if isinstance(prop, exp.PropertyEQ) else prop.this)
    return False


@rewrite("spark")
def list_length(tree: exp.Expression) -> exp.Expression:
    """len(list): DuckDB's len()/length() take a list or a string; Spark's length() takes only strings and
    size() lists. A list argument becomes size()."""
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Length) and is_list(node.this):
            return exp.Anonymous(this="size", expressions=[node.this])
        return node
    return bottom_up(tree, swap)


def _one_based(index: exp.Expression) -> exp.Expression:
    """The DuckDB (1-based) index of a Bracket: sqlglot stores an integer-typed index 0-based, others as written."""
    probe = index.copy()
    annotate_types(probe)
    if probe.type is not None and probe.type.this in exp.DataType.INTEGER_TYPES:
        return exp.Add(this=index, expression=exp.Literal.number(1))
    return index


@rewrite("spark")
def list_element_or_null(tree: exp.Expression) -> exp.Expression:
    """list[i]: DuckDB is 1-based, counts a negative i from the end and gives NULL out of range; Spark's
    x[i] is 0-based and fails out of range in ANSI mode (and sqlglot shifts only literal indices). Spelled with
    Spark's get() (0-based, NULL out of range)."""
    def swap(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Bracket) or len(node.expressions) != 1 or \
                isinstance(node.expressions[0], exp.Slice):
            return node
        k = _one_based(node.expressions[0])
        if isinstance(k, exp.Add) and isinstance(k.this, exp.Literal) and isinstance(k.expression, exp.Literal):
            k = exp.Literal.number(int(k.this.name) + int(k.expression.name))
        if isinstance(k, exp.Literal) and int(k.name) > 0:
            return exp.Anonymous(this="get", expressions=[node.this, exp.Literal.number(int(k.name) - 1)])
        k = exp.paren(k)
        return exp.Case(ifs=[
            exp.If(this=exp.GT(this=k.copy(), expression=exp.Literal.number(0)),
                   true=exp.Anonymous(this="get", expressions=[node.this.copy(), exp.Sub(
                       this=k.copy(), expression=exp.Literal.number(1))])),
            exp.If(this=exp.LT(this=k.copy(), expression=exp.Literal.number(0)),
                   true=exp.Anonymous(this="get", expressions=[node.this.copy(), exp.Add(
                       this=exp.Anonymous(this="size", expressions=[node.this.copy()]), expression=k.copy())]))])
    return bottom_up(tree, swap)


@rewrite("spark")
def list_slice(tree: exp.Expression) -> exp.Expression:
    """list[a:b]: DuckDB's slice is 1-based and inclusive; Spark has slice(x, start, length). Translated for a
    positive start (a literal) and any end; other slices are refused."""
    def swap(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Bracket) or not isinstance(node.expressions[0], exp.Slice):
            return node
        s = node.expressions[0]
        start, end = s.this, s.expression
        if not (isinstance(start, exp.Literal) and not start.is_string and int(start.name) >= 1):
            raise NotPortable(f"the list slice {node.sql(dialect='duckdb')}: only a positive literal start is translated")
        if end is None:
            end = exp.Anonymous(this="size", expressions=[node.this.copy()])
        length = exp.func("greatest", exp.Add(this=exp.Sub(this=exp.paren(end), expression=start.copy()),
                                              expression=exp.Literal.number(1)), exp.Literal.number(0))
        return exp.Anonymous(this="slice", expressions=[node.this, start, length])
    return bottom_up(tree, swap)


@rewrite("spark")
def list_functions(tree: exp.Expression) -> exp.Expression:
    """DuckDB list functions Spark names or defines differently: list_position (NULL when absent; Spark's
    array_position gives 0), list_reverse (Spark: reverse), list_sum (NULL for an empty or all-NULL list, NULLs
    skipped; Spark: aggregate)."""
    def swap(node: exp.Expression) -> exp.Expression:
        name = node.name.lower() if isinstance(node, exp.Anonymous) else ""
        if name == "list_position":
            return exp.func("nullif", exp.Anonymous(this="array_position", expressions=node.expressions[:2]),
                            exp.Literal.number(0))
        if name == "list_reverse":
            return exp.Anonymous(this="reverse", expressions=node.expressions[:1])
        if name == "list_sum":
            x = node.expressions[0]
            present = exp.Anonymous(this="filter", expressions=[x, exp.Lambda(
                this=exp.column("_fw_y").is_(exp.null()).not_(), expressions=[exp.to_identifier("_fw_y")])])
            total = exp.Anonymous(this="aggregate", expressions=[
                present.copy(), exp.cast(exp.Literal.number(0), "BIGINT"),
                exp.Lambda(this=exp.Add(this=exp.column("_fw_a"), expression=exp.column("_fw_y")),
                           expressions=[exp.to_identifier("_fw_a"), exp.to_identifier("_fw_y")])])
            return exp.Case(ifs=[exp.If(this=exp.EQ(this=exp.Anonymous(this="size", expressions=[present]),
                                                    expression=exp.Literal.number(0)), true=exp.null())],
                            default=total)
        return node
    return bottom_up(tree, swap)


def _rebind(body: exp.Expression, name: str, value: exp.Expression) -> exp.Expression:
    """`body` with the free references to lambda parameter `name` replaced by `value`."""
    def visit(node: exp.Expression) -> None:
        for child in list(node.iter_expressions()):
            if isinstance(child, exp.Lambda) and any(p.name == name for p in child.expressions):
                continue  # a nested lambda that binds the same name
            if isinstance(child, (exp.Identifier, exp.Column)) and child.name == name and \
                    not (isinstance(child, exp.Column) and child.table) and not isinstance(child.parent, exp.Column):
                child.replace(value.copy())
            else:
                visit(child)
    if isinstance(body, (exp.Identifier, exp.Column)) and body.name == name:
        return value.copy()
    visit(body)
    return body


@rewrite("spark")
def one_based_lambda_index(tree: exp.Expression) -> exp.Expression:
    """list_transform(x, (e, i) -> ...) and list_filter: DuckDB's index parameter counts from 1, Spark's from 0.
    The index parameter is renamed and the body reads it plus one."""
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, (exp.Transform, exp.ArrayFilter)) and isinstance(node.expression, exp.Lambda) and \
                len(node.expression.expressions) == 2:
            lam = node.expression
            old = lam.expressions[1].name
            fresh = f"_fw_{old}0"
            lam.set("this", _rebind(lam.this, old, exp.paren(exp.Add(this=exp.column(fresh),
                                                                       expression=exp.Literal.number(1)))))
            lam.expressions[1].replace(exp.to_identifier(fresh))
        return node
    return bottom_up(tree, swap)


@rewrite("spark")
def struct_pack(tree: exp.Expression) -> exp.Expression:
    """struct_pack(k := v): DuckDB's name; Spark writes STRUCT(v AS k)."""
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.lower() == "struct_pack":
            return exp.Struct(expressions=[exp.alias_(p.expression, p.this.name) if isinstance(p, exp.PropertyEQ)
                                           else p for p in node.expressions])
        return node
    return bottom_up(tree, swap)


# DuckDB functions with no Spark spelling of the same meaning (yet): a statement using one is refused.
_UNPORTED = {
    "json_valid": "json_valid() (Spark has no JSON validity test with DuckDB's grammar)",
    "list_cosine_similarity": "list_cosine_similarity() (no Spark function; embedding_similarity is not ported)",
    "list_reduce": "list_reduce() (Spark's aggregate() differs in its initial value; the trajectory metrics are "
                   "not ported)",
}


@rewrite("spark")
def unported(tree: exp.Expression) -> exp.Expression:
    """Constructs without a Spark spelling of the same meaning: json_valid/json_type/json_extract (DuckDB's JSON
    text vs Spark's get_json_object, which unquotes strings: '"0.5"' would read as 0.5), list_cosine_similarity,
    list_reduce and HUGEINT bit masks (the trajectory metrics). Refused rather than rendered approximately."""
    for node in tree.walk():
        name = node.name.lower() if isinstance(node, exp.Anonymous) else ""
        if name in _UNPORTED:
            raise NotPortable(_UNPORTED[name])
        if isinstance(node, exp.JSONType) or (isinstance(node, exp.JSONExtract)
                                              and not isinstance(node, exp.JSONExtractScalar)):
            raise NotPortable(f"{node.key}() (DuckDB returns JSON text, Spark's get_json_object unquotes strings)")
        if isinstance(node, exp.DataType) and node.this in (exp.DataType.Type.INT128, exp.DataType.Type.UINT128):
            raise NotPortable("HUGEINT (no 128-bit integer in Spark)")
    return tree


@rewrite("spark")
def list_membership_without_null(tree: exp.Expression) -> exp.Expression:
    """list_contains / list_has_any: DuckDB ignores NULL elements (false when nothing matches); Spark's
    array_contains / arrays_overlap return NULL when the list holds a NULL and nothing matches."""
    def swap(node: exp.Expression) -> exp.Expression:
        name = node.name.lower() if isinstance(node, exp.Anonymous) else ""
        if isinstance(node, exp.ArrayContains) or name in ("list_contains", "list_has", "array_contains"):
            a, x = (node.this, node.expression) if isinstance(node, exp.ArrayContains) else node.expressions[:2]
            found = exp.Anonymous(this="array_contains", expressions=[a.copy(), x.copy()])
        elif isinstance(node, exp.ArrayOverlaps) or name in ("list_has_any", "array_has_any"):
            a, x = (node.this, node.expression) if isinstance(node, exp.ArrayOverlaps) else node.expressions[:2]
            found = exp.Anonymous(this="arrays_overlap", expressions=[a.copy(), x.copy()])
        else:
            return node
        either_null = exp.or_(a.copy().is_(exp.null()), x.copy().is_(exp.null()))
        return exp.Case(ifs=[exp.If(this=either_null, true=exp.null())],
                        default=exp.func("coalesce", found, exp.false()))
    return bottom_up(tree, swap)


@rewrite("spark")
def ordered_list_aggregate(tree: exp.Expression) -> exp.Expression:
    """list(x ORDER BY k, ...) / array_agg(x ORDER BY k): sqlglot renders Spark's collect_list, which drops the
    ORDER BY (the list comes in whatever order the rows arrive), drops NULL elements, and gives [] over no rows
    where DuckDB gives NULL. Spelled as the sorted list of (keys..., x) records, then their x: nulls ordered as
    DuckDB orders them (last unless NULLS FIRST), ties broken by x. Descending keys, DISTINCT, FILTER and window
    frames are refused rather than approximated."""
    def swap(node: exp.Expression) -> exp.Expression:
        if not (isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order)):
            return node
        order = node.this
        shown = node.sql(dialect="duckdb")
        if isinstance(order.this, exp.Distinct) or isinstance(node.parent, (exp.Filter, exp.Window)) \
                or any(o.args.get("desc") for o in order.expressions):
            raise NotPortable(f"{shown}: an ordered list aggregate with DISTINCT, FILTER, OVER or a descending key "
                              "has no Spark spelling that keeps its order")
        fields: list[exp.Expression] = []
        for i, o in enumerate(order.expressions):
            key = o.this
            null_flag = key.copy().is_(exp.null()) if not o.args.get("nulls_first") else \
                exp.Not(this=key.copy().is_(exp.null()))
            fields += [exp.Literal.string(f"fw_n{i}"), null_flag, exp.Literal.string(f"fw_k{i}"), key.copy()]
        fields += [exp.Literal.string("fw_v"), order.this.copy()]
        rows = exp.Anonymous(this="sort_array", expressions=[
            exp.Anonymous(this="collect_list", expressions=[exp.Anonymous(this="named_struct", expressions=fields)])])
        values = exp.Anonymous(this="transform", expressions=[rows, exp.Lambda(
            this=exp.column("fw_v", table="fw_e"), expressions=[exp.to_identifier("fw_e")])])
        return exp.Case(ifs=[exp.If(this=exp.EQ(this=exp.func("size", rows.copy()), expression=exp.Literal.number(0)),
                                    true=exp.null())], default=values)
    return bottom_up(tree, swap)
