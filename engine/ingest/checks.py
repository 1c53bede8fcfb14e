"""Validation and typing of one record kind, as SQL: the checks compiled from the kind's schema, the typed and
privacy-treated columns, unknown fields, duplicate keys, the record key and hash (`KindChecks.verdict`).

Every record of a chunk gets its verdict in one query (engine/ingest/statements.py wraps it in the statements
that insert, stage and quarantine)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

from sqlglot import exp

from engine.ingest import arrow_scan, privacy, strict
from engine.ingest.options import Options
from engine.ingest.records import Column, RecordKind
from engine.ingest.schema_sql import RecordSQL, compile_schema
from engine.ingest.schema_sql import _e  # parse_expression with cached templates
from engine.ingest.timestamps import sql_instant
from engine.schemas import load_schema
from engine.sql import DIALECT, Statement, literal, param

CHUNK = arrow_scan.TABLE  # the chunk being loaded (an Arrow table, engine/ingest/arrow_scan.py)
PENDING = "fw_pending"  # records of the batch that did not pass the checks, until validate explains them
FILES = "fw_files"
CONTROL = {"fw_file", "fw_line", "fw_item", "fw_raw", "fw_ok", "fw_reasons", "fw_key", "fw_hash"}


# The JSON types a column type takes its value from (engine/ingest/records.py Column.type)
_PLAIN_TYPES = {"VARCHAR": {"string"}, "DOUBLE": {"number", "integer"}, "BIGINT": {"number", "integer"},
                "TIMESTAMPTZ": {"string"}, "JSON": {"object"}}


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


@dataclass
class KindChecks:
    """The checks and typed columns of one record kind under given options."""

    kind: RecordKind
    options: Options

    @cached_property
    def rec(self) -> RecordSQL:
        """The checks compiled from the kind's schema (only the statements that validate need them)."""
        rec = compile_schema(load_schema(self.kind.schema), _col("raw"), self.kind.schema, split=True)
        # Typed columns may name paths the checks do not (none today): registered before extraction is built.
        for c in self.kind.columns:
            rec.value(c.path)
        return rec

    @property
    def stage(self) -> str:
        return f"fw_stage_{self.kind.name}"

    def stage_columns(self) -> list[tuple[str, str]]:
        base = [("fw_file", "INTEGER"), ("fw_line", "BIGINT"), ("fw_item", "INTEGER"), ("fw_raw", "VARCHAR"),
                ("fw_ok", "BOOLEAN"), ("fw_reasons", "VARCHAR[]"), ("fw_key", "VARCHAR"), ("fw_hash", "UBIGINT")]
        return base + [(c.name, c.type) for c in self.kind.columns] + [("extra", "JSON"), ("fw_raw_bytes", "BLOB")]

    def create_stage(self) -> Statement:
        cols = [exp.ColumnDef(this=exp.to_identifier(n, quoted=True), kind=exp.DataType.build(t, dialect=DIALECT))
                for n, t in self.stage_columns()]
        tree = exp.Create(this=exp.Schema(this=exp.to_table(self.stage), expressions=cols), kind="TABLE",
                          replace=True, properties=exp.Properties(expressions=[exp.TemporaryProperty()]))
        return Statement(f"stage_{self.kind.name}", tree, (), "staging table for one batch")

    def _declared_types(self, path: tuple[str, ...]) -> set[str] | None:
        """The JSON types the schema allows at `path` (through `properties`), None when it does not say."""
        schema: dict = load_schema(self.kind.schema)
        for name in path:
            schema = (schema.get("properties") or {}).get(name)
            if not isinstance(schema, dict):
                return None
        t = schema.get("type")
        return None if t is None else set([t] if isinstance(t, str) else t)

    def _typed(self, column: Column, accepted: bool = False) -> exp.Expression:
        v = self.rec.value(column.path)
        # A record that passed the checks has, at this path, one of the types the schema allows there. When those
        # are the column's own type (and null, absent: NULL either way), the value needs no test of its type.
        declared = self._declared_types(column.path) if accepted else None
        plain = declared is not None and declared <= _PLAIN_TYPES[column.type] | {"null"}
        if plain and column.type in ("VARCHAR", "DOUBLE"):
            value: exp.Expression = v.text if column.type == "VARCHAR" else v.number
        elif plain and column.type == "BIGINT":
            value = _e("TRY_CAST(__n__ AS BIGINT)", n=v.number)
        elif plain and column.type == "TIMESTAMPTZ":
            value = sql_instant(v.text)
        elif plain and column.type == "JSON":
            value = _e("CAST(__v__ AS JSON)", v=v.text)
        elif column.type == "VARCHAR":
            value = exp.Case(ifs=[exp.If(this=v.is_string, true=v.text)])
        elif column.type == "DOUBLE":
            value = exp.Case(ifs=[exp.If(this=v.is_number, true=v.number)])
        elif column.type == "BIGINT":
            value = exp.Case(ifs=[exp.If(this=v.is_number, true=_e("TRY_CAST(__n__ AS BIGINT)", n=v.number))])
        elif column.type == "TIMESTAMPTZ":
            value = exp.Case(ifs=[exp.If(this=v.is_string, true=sql_instant(v.text))])
        elif column.type == "JSON":
            value = exp.Case(ifs=[exp.If(this=v.is_object, true=_e("CAST(__v__ AS JSON)", v=v.text))])
        else:
            raise ValueError(f"unknown column type {column.type}")
        if column.type == "JSON":
            for dotted_path in self.options.redact:
                parent, _, child = dotted_path.partition(".")
                if child and (parent,) == column.path:
                    patch = literal(json.dumps({child: self.options.redaction}, ensure_ascii=False))
                    jpath = literal("$." + json.dumps(child, ensure_ascii=False))
                    value = _e("CASE WHEN json_exists(__j__, __p__) THEN json_merge_patch(__j__, __patch__) "
                               "ELSE __j__ END", j=value, p=jpath, patch=patch)
        if ".".join(column.path) in self.options.redact:
            value = _e("CASE WHEN __x__ IS NULL THEN NULL ELSE __r__ END", x=value, r=literal(self.options.redaction))
        if column.name in self.options.hash_fields and self.options.salt and column.type == "VARCHAR":
            value = privacy.hash_value(value)
        return value

    def _extra(self) -> exp.Expression:
        """The unknown top-level fields as a JSON object (merge-patching the known ones away), or NULL."""
        if self.options.unknown_fields == "ignore":
            return exp.cast(exp.Null(), exp.DataType.build("JSON"))
        fields = self.kind.top_level_fields
        remove = literal(json.dumps({k: None for k in fields}))
        known = exp.Array(expressions=[literal(k) for k in fields])
        # More keys (fw_k) than known fields present: an unknown or a repeated key. Only those records pay for
        # another parse (json_keys) and the slow merge patch; nested CASEs, as DuckDB evaluates every operand
        # of an AND.
        return _e("CASE WHEN fw_k > __n__ THEN CASE WHEN NOT list_has_all(__known__, json_keys(__raw__)) "
                  "THEN nullif(CAST(json_merge_patch(CAST(__raw__ AS JSON), __rm__) AS VARCHAR), '{}') END END",
                  n=self.rec.present_count(fields), raw=_col("raw"), rm=remove, known=known)

    def verdict(self, where: exp.Expression | None, pending: bool = False, accepted: bool = False
                 ) -> tuple[dict[str, exp.Expression], list[tuple[str, exp.Select]]]:
        """The columns every record of the chunk (or, `pending`, every record set aside for its reasons) gets,
        and the CTEs they are computed in. (The trees are fresh: built with copy=False, as sqlglot's builders
        otherwise copy the whole query at each step, most of the time it takes to compile a kind.)

        fw_in reads each record once per list: fw_t (types), fw_w (values) and, unless unknown fields are ignored,
        fw_k (the number of top-level keys); it is not materialised (DuckDB 2 computes each list once either way
        and streams; materialising copied every chunk's text and lists: ~7 % more CPU, 150 MB held per chunk).
        fw_cols splits the lists into one column per path (and DOUBLE values where checks compare numbers), so
        that the checks compare plain columns; fw_checked adds the unknown fields, duplicate keys (fw_dup) and the
        verdict fw_ok. The returned expressions (over
        fw_checked) are the reasons (rejected records only), key, hash and the typed, privacy-treated columns.
        `accepted`: the columns are only wanted for records that passed (the insert). The key then does not look at
        fw_ok, which DuckDB would otherwise evaluate twice, in the filter and once more for the key (~10 % of the
        insert), and a typed column skips the test of its JSON type where the schema allows no other (`_typed`).
        """
        rec = self.rec
        out: dict[str, exp.Expression] = {c.name: self._typed(c, accepted) for c in self.kind.columns}
        key_value = rec.value((self.kind.key,))
        ok = _e("__p__ IS NULL AND __ok__ AND NOT fw_dup", p=_col("fw_problem"), ok=rec.ok())
        if self.options.unknown_fields == "quarantine":
            ok = _e("__ok__ AND __x__ IS NULL", ok=ok, x=_col("fw_extra"))
        reasons = rec.reasons()
        if self.options.unknown_fields == "quarantine":
            reasons = _e("CASE WHEN __x__ IS NULL THEN __r__ ELSE list_concat(__r__, ['unknown field(s): ' || "
                         "array_to_string(json_keys(__x__), ', ')]) END", x=_col("fw_extra"), r=reasons)
        out["fw_reasons"] = _e("CASE WHEN __ok__ THEN NULL WHEN __p__ IS NOT NULL THEN [__p__] "
                               "WHEN fw_dup THEN [__d__] ELSE __r__ END",
                               ok=_col("fw_ok"), p=_col("fw_problem"), r=reasons, d=self._duplicate_reason())
        # The key: the id (hashed like the stored column when it is a hash field), else the content hash, which
        # a rejected record gets too (when its text parses): a later accepted copy resolves its quarantine.
        content_key = _e("'h-' || md5(CAST(json(__raw__) AS VARCHAR))", raw=_col("raw"))
        hashed_key = self.kind.key in self.options.hash_fields and self.options.salt
        if accepted:  # a record that passed the checks is JSON
            out["fw_key"] = _e("CASE WHEN __s__ THEN __t__ ELSE __h__ END", s=key_value.is_string,
                               t=out[self.kind.key] if hashed_key else key_value.text, h=content_key)
        else:
            out["fw_key"] = _e("CASE WHEN __s__ THEN __t__ WHEN __ok__ OR json_valid(__raw__) THEN __h__ END",
                               s=key_value.is_string, t=out[self.kind.key] if hashed_key else key_value.text,
                               ok=_col("fw_ok"), h=content_key, raw=_col("raw"))
        out["fw_hash"] = _e("hash(fw_t, fw_w)") if self.options.unknown_fields == "ignore" else \
            _e("hash(fw_t, fw_w, fw_extra)")
        extra = self._extra()
        types, strings = rec.extract(valid=_col("fw_valid"))
        # Whether the text parses: the reader's strict check recognised most records (engine/ingest/strict.py,
        # the chunk's `strict`), which are JSON by construction; json_valid only for the others (set-aside
        # records are few: all of them).
        valid = _e("json_valid(raw)") if pending else _e("CASE WHEN strict THEN true ELSE json_valid(raw) END")
        source = exp.select("*", exp.alias_(valid, "fw_valid")).from_(PENDING if pending else CHUNK, copy=False)
        inner = exp.select(
            _col("fw_file") if pending else exp.alias_(param("file_id"), "fw_file"),
            exp.alias_(_col("line"), "fw_line"),
            exp.alias_(_col("item"), "fw_item"), exp.alias_(_col("problem"), "fw_problem"), _col("raw"),
            exp.alias_(types, "fw_t"), exp.alias_(strings, "fw_w"),
            exp.alias_(_e("CASE WHEN fw_valid THEN len(json_keys(raw)) END"), "fw_k"),
        ).from_(source.subquery("fw_src", copy=False), copy=False)
        if pending:
            inner = inner.select(_col("raw_bytes"), copy=False)
        if where is not None:
            inner = inner.where(where, copy=False)
        duplicates = self._duplicate_keys()
        cols = exp.select("*", *rec.split_columns()).from_("fw_in", copy=False)  # after every check and typed column
        # The keys of each top-level object field, once per record (the duplicate check reads them twice or more)
        keyed = exp.select("*", *[exp.alias_(_e("CASE WHEN __g__ THEN json_keys(__w__) END", g=self.rec.value(path)
                                                .is_object, w=self.rec.value(path).node), _keys_column(path))
                                  for path in self._object_paths() if path]).from_("fw_cols", copy=False)
        checked = exp.select("*", exp.alias_(extra, "fw_extra"), exp.alias_(duplicates, "fw_dup")).from_(
            keyed.subquery("fw_kk", copy=False), copy=False)
        checked = exp.select("*", exp.alias_(ok, "fw_ok")).from_(checked.subquery("fw_x", copy=False), copy=False)
        return out, [("fw_in", inner), ("fw_cols", cols), ("fw_checked", checked)]

    def _object_paths(self) -> list[tuple[str, ...]]:
        """The record itself and its top-level object fields: where a strictly-lexed record (see
        engine/ingest/strict.py) can still repeat a key. Deeper objects were parsed strictly in Python."""
        fields = set(self.kind.top_level_fields)
        return [()] + [(name,) for name in strict.object_fields() if name in fields]

    def _keys_of(self, path: tuple[str, ...]) -> tuple[exp.Expression, exp.Expression]:
        """(the keys of the object at `path` as a list, when it is an object there)"""
        if not path:
            return _e("json_keys(raw)"), _e("fw_k > __n__", n=self.rec.present_count(self.kind.top_level_fields))
        v = self.rec.value(path)
        return _e("json_keys(__w__)", w=v.node), v.is_object

    def _duplicate_keys(self) -> exp.Expression:
        """True when an object of the record repeats a key (which value counts is ambiguous). The top level is
        only looked at when it has more keys than known fields present (an unknown or a repeated key); a
        top-level object field's keys are in their own column (fw_keys_<field>, see verdict)."""
        found = []
        for path in self._object_paths():
            if path:
                found.append(_repeats(_col(_keys_column(path))))
                continue
            keys, guard = self._keys_of(path)
            found.append(_e("CASE WHEN __g__ THEN len(list_distinct(__k__)) < len(__k__) END", g=guard, k=keys))
        return _e("coalesce(__x__, false)", x=_or_all(found))

    def _duplicate_reason(self) -> exp.Expression:
        ifs = []
        for path in self._object_paths():
            keys, guard = self._keys_of(path)
            first = _e("list_filter(list_distinct(__k__), lambda fw_x: len(list_filter(__k__, lambda fw_y: "
                       "fw_y = fw_x)) > 1)[1]", k=keys)
            where = f" in {'.'.join(path)}" if path else ""
            ifs.append(exp.If(this=_e("coalesce(__g__ AND len(list_distinct(__k__)) < len(__k__), false)",
                                      g=guard, k=keys),
                              true=_e("'ambiguous JSON: duplicate key ''' || __f__ || ''' in one object' || __w__",
                                      f=first, w=literal(where))))
        return exp.Case(ifs=ifs, default=literal("ambiguous JSON: duplicate key"))


def _keys_column(path: tuple[str, ...]) -> str:
    return "fw_keys_" + "_".join(path)


UNROLLED_KEYS = 8


def _repeats(keys: exp.Expression) -> exp.Expression:
    """True when the list `keys` holds a value twice (false for a NULL list). Up to UNROLLED_KEYS keys, by where
    each key is first found: list_distinct builds a hash table per row, ~2 microseconds a record."""
    first_elsewhere = _or_all([_e(f"list_position(__k__, __k__[{i}]) < {i}", k=keys)
                               for i in range(2, UNROLLED_KEYS + 1)])
    return _e("CASE WHEN len(__k__) > __n__ THEN len(list_distinct(__k__)) < len(__k__) "
              "ELSE coalesce(__f__, false) END", k=keys, n=literal(UNROLLED_KEYS), f=first_elsewhere)


def _or_all(items: list[exp.Expression]) -> exp.Expression:
    out = items[0]
    for item in items[1:]:
        out = exp.Or(this=out, expression=item)
    return exp.Paren(this=out)

