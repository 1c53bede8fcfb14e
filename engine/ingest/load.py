"""One ingest batch: read files in chunks, validate each chunk in SQL, load everything in one transaction.

The statements (all sqlglot ASTs, rendered by engine.sql):

  detect      kind=auto: which kind each record is, from its marker fields (one JSON parse)
  insert      per chunk and kind: the schema checks derived from schemas/<kind>.schema.json, and the records
              that pass them, typed, privacy-treated (salted hash, redaction), with key and record hash, straight
              into the kind's table; it returns which records went in. The others are set aside (pending).
  validate    once per batch: the same checks on the set-aside records, with every reason -> a staging table
  quarantine  rejected staged records -> quarantine (with file, line, raw and every reason)
  settle      the batch's records whose key is stored already or came earlier in the batch (file, line, item
              order): duplicate (same content) or conflict (other content)
  drop        those leave the kind's table again: the record stored first stays
  conflicts   conflicts -> quarantine ("conflicting duplicate"), their raw text read again from the file;
              exact repeats are duplicates: accepted, counted, not inserted

Only rejected records are explained in detail; an accepted record costs one pass of the checks.
Counting rule, per file and per kind:  read = accepted + quarantined,  accepted = inserted + duplicates.
A batch is one DuckDB transaction: killed half way, the store holds none of it.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Callable

import duckdb
import numpy as np
import pyarrow as pa
from sqlglot import exp

from engine.ingest import privacy, readers, strict
from engine.ingest.quarantine import mark_resolved
from engine.ingest.records import KINDS, Column, RecordKind
from engine.ingest.schema_sql import RecordSQL, compile_schema
from engine.ingest.schema_sql import _e  # parse_expression with cached templates
from engine.ingest.timestamps import sql_instant
from engine.schemas import load_schema
from engine.sql import Statement, literal, param, parse, render

CHUNK = "fw_chunk"
PENDING = "fw_pending"  # records of the batch that did not pass the checks, until validate explains them
FILES = "fw_files"
CONTROL = {"fw_file", "fw_line", "fw_item", "fw_raw", "fw_ok", "fw_reasons", "fw_key", "fw_hash"}
UNKNOWN_FIELDS = ("keep", "ignore", "quarantine")
SCAN_BATCH_ROWS = 16_384


@dataclass(frozen=True)
class Options:
    """The resolved `ingest` config."""

    kind: str = "auto"
    format: str = "auto"
    unknown_fields: str = "keep"
    on_unreadable_file: str = "fail"
    chunk_bytes: int = 64 << 20
    chunk_rows: int = 100_000
    salt: str | None = None
    hash_fields: tuple[str, ...] = ("user_id",)
    redact: tuple[str, ...] = ()
    redaction: str = "[REDACTED]"
    keep_raw: bool = False  # quarantine keeps raw lines despite privacy settings (ingest.quarantine.keep_raw)

    @classmethod
    def from_config(cls, cfg: dict) -> "Options":
        ing = cfg.get("ingest") or {}
        privacy = ing.get("privacy") or {}
        kind = cfg.get("kind") or ing.get("kind") or "auto"
        return cls(kind=kind, format=ing.get("format") or "auto",
                   unknown_fields=ing.get("unknown_fields") or "keep",
                   on_unreadable_file=ing.get("on_unreadable_file") or "fail",
                   chunk_bytes=int(ing.get("chunk_bytes") or (64 << 20)),
                   chunk_rows=int(ing.get("chunk_rows") or 100_000),
                   salt=privacy.get("salt") or None,
                   hash_fields=tuple(privacy.get("hash_fields") or ()),
                   redact=tuple(privacy.get("redact") or ()),
                   redaction=str(privacy.get("redaction", "[REDACTED]")),
                   keep_raw=bool((ing.get("quarantine") or {}).get("keep_raw", False)))

    def privacy_summary(self) -> dict:
        """What the batch did for privacy, storable: the salt's fingerprint, never the salt."""
        import hashlib

        fp = hashlib.sha256(("flywheel-salt-fingerprint:" + self.salt).encode()).hexdigest()[:12] if self.salt else None
        return {"salt_fingerprint": fp, "hashed_fields": list(self.hash_fields) if self.salt else [],
                "redacted_fields": list(self.redact), "quarantine_keeps_raw": not privacy.active(self)}


# ---------------------------------------------------------------------------------------------- compile


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


@dataclass
class KindSQL:
    """The compiled statements for one record kind under given options."""

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
        cols = [exp.ColumnDef(this=exp.to_identifier(n, quoted=True), kind=exp.DataType.build(t, dialect="duckdb"))
                for n, t in self.stage_columns()]
        tree = exp.Create(this=exp.Schema(this=exp.to_table(self.stage), expressions=cols), kind="TABLE",
                          replace=True, properties=exp.Properties(expressions=[exp.TemporaryProperty()]))
        return Statement(f"stage_{self.kind.name}", tree, (), "staging table for one batch")

    def _typed(self, column: Column) -> exp.Expression:
        v = self.rec.value(column.path)
        if column.type == "VARCHAR":
            value: exp.Expression = exp.Case(ifs=[exp.If(this=v.is_string, true=v.text)])
        elif column.type == "DOUBLE":
            value = exp.Case(ifs=[exp.If(this=v.is_number, true=v.number)])
        elif column.type == "BIGINT":
            value = exp.Case(ifs=[exp.If(this=v.is_number, true=_e("TRY_CAST(__n__ AS BIGINT)", n=v.number))])
        elif column.type == "TIMESTAMPTZ":
            value = exp.Case(ifs=[exp.If(this=v.is_string, true=sql_instant(v.text))])
        elif column.type == "JSON":
            value = exp.Case(ifs=[exp.If(this=v.is_object, true=_e("CAST(__v__ AS JSON)", v=v.text))])
            for dotted_path in self.options.redact:
                parent, _, child = dotted_path.partition(".")
                if child and (parent,) == column.path:
                    patch = literal(json.dumps({child: self.options.redaction}, ensure_ascii=False))
                    jpath = literal("$." + json.dumps(child, ensure_ascii=False))
                    value = _e("CASE WHEN json_exists(__j__, __p__) THEN json_merge_patch(__j__, __patch__) "
                               "ELSE __j__ END", j=value, p=jpath, patch=patch)
        else:
            raise ValueError(f"unknown column type {column.type}")
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

    def _verdict(self, where: exp.Expression | None, pending: bool = False
                 ) -> tuple[dict[str, exp.Expression], list[tuple[str, exp.Select]]]:
        """The columns every record of the chunk (or, `pending`, every record set aside for its reasons) gets,
        and the CTEs they are computed in.

        fw_in (materialised: DuckDB would otherwise inline the JSON passes into every check that uses them)
        reads each record once per list: fw_t (types), fw_w (values) and, unless unknown fields are ignored,
        fw_k (the number of top-level keys). fw_cols splits the lists into one column per path (and DOUBLE
        values where checks compare numbers), so that the checks compare plain columns; fw_checked adds the
        unknown fields, duplicate keys (fw_dup) and the verdict fw_ok. The returned expressions (over
        fw_checked) are the reasons (rejected records only), key, hash and the typed, privacy-treated columns.
        """
        rec = self.rec
        out: dict[str, exp.Expression] = {c.name: self._typed(c) for c in self.kind.columns}
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
        out["fw_key"] = _e("CASE WHEN __s__ THEN __t__ WHEN __ok__ OR json_valid(__raw__) THEN __h__ END",
                           s=key_value.is_string, t=out[self.kind.key] if hashed_key else key_value.text,
                           ok=_col("fw_ok"), h=content_key, raw=_col("raw"))
        out["fw_hash"] = _e("hash(fw_t, fw_w)") if self.options.unknown_fields == "ignore" else \
            _e("hash(fw_t, fw_w, fw_extra)")
        extra = self._extra()
        types, strings = rec.extract()
        inner = exp.select(
            _col("fw_file") if pending else exp.alias_(param("file_id"), "fw_file"),
            exp.alias_(_col("line"), "fw_line"),
            exp.alias_(_col("item"), "fw_item"), exp.alias_(_col("problem"), "fw_problem"), _col("raw"),
            exp.alias_(types, "fw_t"), exp.alias_(strings, "fw_w"),
            exp.alias_(_e("CASE WHEN json_valid(raw) THEN len(json_keys(raw)) END"), "fw_k"),
        ).from_(PENDING if pending else CHUNK)
        if pending:
            inner = inner.select(_col("raw_bytes"))
        if where is not None:
            inner = inner.where(where)
        duplicates = self._duplicate_keys()
        cols = exp.select("*", *rec.split_columns()).from_("fw_in")  # after every check and typed column
        checked = exp.select("*", exp.alias_(extra, "fw_extra"), exp.alias_(duplicates, "fw_dup")).from_("fw_cols")
        checked = exp.select("*", exp.alias_(ok, "fw_ok")).from_(checked.subquery("fw_x"))
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
        only looked at when it has more keys than known fields present (an unknown or a repeated key)."""
        found = []
        for path in self._object_paths():
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

    @staticmethod
    def _with(query: exp.Select, ctes: list[tuple[str, exp.Select]]) -> exp.Select:
        for name, cte in ctes:
            query = query.with_(name, as_=cte, materialized=True if name == "fw_in" else None)
        return query

    def _params(self, *names: str) -> tuple[str, ...]:
        return names + (("salt",) if self.options.salt and self.options.hash_fields else ())

    def insert_accepted(self, where: exp.Expression | None = None) -> Statement:
        """INSERT INTO the kind's table every record of the chunk that passes the checks, typed, straight away.

        RETURNING tells which records went in: the others are explained by `validate`. Keys already stored or
        repeated in the batch are settled at the end of the batch (`settle`)."""
        k = self.kind
        out, ctes = self._verdict(where)
        typed = exp.select(*[exp.alias_(out[c.name], c.name, quoted=True) for c in k.columns],
                           exp.alias_(out["fw_key"], "fw_key"), exp.alias_(out["fw_hash"], "fw_hash"),
                           exp.alias_(_col("fw_extra"), "fw_extra"), _col("fw_line"), _col("fw_item")).from_(
            "fw_checked").where(_col("fw_ok"))
        a = "fw_a"
        values = [_col("fw_key", a) if c.name == k.key else _col(c.name, a) for c in k.columns]
        values += [d for _, d in k_derived(k, a)]
        values += [_col("fw_extra", a), _col("fw_hash", a), param("batch_id"), param("path"), _col("fw_line", a),
                   _col("fw_item", a)]
        query = self._with(exp.select(*values).from_(typed.subquery(a)), ctes)
        tree = exp.Insert(this=exp.Schema(this=exp.to_table(k.table),
                                          expressions=[exp.to_identifier(n, quoted=True) for n in _targets(k)]),
                          expression=query,
                          returning=exp.Returning(expressions=[exp.column("source_line"), exp.column("source_item")]))
        return Statement(f"insert_{k.name}", tree, self._params("file_id", "batch_id", "path"),
                         f"records that pass the {len(self.rec.checks)} checks, typed, into {k.table}")

    def validate(self) -> Statement:
        """INSERT INTO the staging table the records `insert_accepted` did not take (set aside in the pending
        table as the chunks go), with the verdict and every reason: the same checks, run once per batch."""
        out, ctes = self._verdict(_e("fw_kind = __k__", k=literal(self.kind.name)), pending=True)
        select = [_col("fw_file"), _col("fw_line"), _col("fw_item"), exp.alias_(_col("raw"), "fw_raw"),
                  _col("fw_ok"), exp.alias_(out["fw_reasons"], "fw_reasons"), exp.alias_(out["fw_key"], "fw_key"),
                  exp.alias_(out["fw_hash"], "fw_hash")] + \
            [exp.alias_(out[c.name], c.name, quoted=True) for c in self.kind.columns] + \
            [exp.alias_(_col("fw_extra"), "extra"), exp.alias_(_col("raw_bytes"), "fw_raw_bytes")]
        query = self._with(exp.select(*select).from_("fw_checked"), ctes)
        columns = [exp.to_identifier(n, quoted=True) for n, _ in self.stage_columns()]
        tree = exp.Insert(this=exp.Schema(this=exp.to_table(self.stage), expressions=columns), expression=query)
        return Statement(f"validate_{self.kind.name}", tree, self._params(),
                         f"{len(self.rec.checks)} checks derived from schemas/{self.kind.schema}.schema.json, "
                         f"with every reason, for the records insert_{self.kind.name} did not take")

    def quarantine_rejected(self) -> Statement:
        s = "fw_s"
        query = exp.select(
            param("batch_id"), literal(self.kind.name), _col("fw_path", "fw_f"), _col("fw_line", s),
            _col("fw_item", s), _col("fw_reasons", s), _col("fw_key", s), param("now"),
            *quarantine_text(_col("fw_raw", s), _col("fw_raw_bytes", s), self.options),
        ).from_(exp.to_table(self.stage).as_(s)).join(
            exp.to_table(FILES).as_("fw_f"), on=_e("fw_f.fw_file = fw_s.fw_file")).where(
            exp.not_(_col("fw_ok", s)))
        return Statement(f"quarantine_{self.kind.name}", _insert_quarantine(query), self._params("batch_id", "now"),
                         "rejected records, with every reason (privacy-treated as stored records are)")

    @property
    def settled(self) -> str:
        return f"fw_settle_{self.kind.name}"

    def settle(self) -> Statement:
        """The batch's records whose key was stored before or came earlier in the batch (file, line, item
        order): each is a duplicate (same content as that record) or a conflict (other content)."""
        k = self.kind
        key = exp.to_identifier(k.key, quoted=True).sql(dialect="duckdb")
        table = exp.to_table(k.table).sql(dialect="duckdb")
        tree = parse(f"""
            CREATE OR REPLACE TEMPORARY TABLE {self.settled} AS
            WITH fw_m AS (
                SELECT t.{key} AS fw_key, t.record_hash AS fw_hash, f.fw_file, t.source_line AS fw_line,
                       t.source_item AS fw_item, t.source_file AS fw_path
                FROM {table} AS t JOIN {FILES} AS f ON f.fw_path = t.source_file WHERE t.batch_id = $batch_id),
            fw_o AS (
                SELECT o.{key} AS fw_key, o.record_hash AS fw_hash, o.source_file || ':' ||
                       coalesce(CAST(o.source_line AS VARCHAR), '?') || ' (batch ' || o.batch_id || ')' AS fw_at
                FROM {table} AS o WHERE o.batch_id <> $batch_id AND o.{key} IN (SELECT fw_key FROM fw_m)
                QUALIFY row_number() OVER (PARTITION BY o.{key} ORDER BY o.batch_id, o.source_file, o.source_line,
                                           o.source_item) = 1),
            fw_r AS (
                SELECT *, row_number() OVER (PARTITION BY fw_key ORDER BY fw_file, fw_line, fw_item) AS fw_rank
                FROM fw_m WHERE fw_key IN (SELECT fw_key FROM fw_m GROUP BY fw_key HAVING count(*) > 1
                                           UNION ALL SELECT fw_key FROM fw_o)),
            fw_first AS (
                SELECT fw_key, fw_hash, fw_path || ':' || coalesce(CAST(fw_line AS VARCHAR), '?') || ' in this batch'
                       AS fw_at FROM fw_r WHERE fw_rank = 1)
            SELECT r.fw_file, r.fw_line, r.fw_item, r.fw_key,
                   CASE WHEN r.fw_hash = coalesce(o.fw_hash, f.fw_hash) THEN 'duplicate' ELSE 'conflict' END
                   AS fw_outcome, coalesce(o.fw_at, f.fw_at) AS fw_at
            FROM fw_r AS r LEFT JOIN fw_o AS o ON o.fw_key = r.fw_key LEFT JOIN fw_first AS f ON f.fw_key = r.fw_key
            WHERE o.fw_key IS NOT NULL OR r.fw_rank > 1""")
        return Statement(f"settle_{k.name}", tree, ("batch_id",),
                         "accepted records whose key is stored or came earlier in the batch: duplicate or conflict")

    def settled_counts(self) -> Statement:
        tree = parse(f"SELECT fw_file, fw_outcome, count(*) AS n FROM {self.settled} GROUP BY fw_file, fw_outcome")
        return Statement(f"settled_{self.kind.name}", tree, (), "")

    def drop_settled(self) -> Statement:
        """Duplicates and conflicts leave the table: the record stored first stays."""
        tree = parse(f"""
            DELETE FROM {exp.to_table(self.kind.table).sql(dialect="duckdb")} AS t
            USING {self.settled} AS s, {FILES} AS f
            WHERE t.batch_id = $batch_id AND f.fw_file = s.fw_file AND t.source_file = f.fw_path
              AND t.source_line IS NOT DISTINCT FROM s.fw_line AND t.source_item IS NOT DISTINCT FROM s.fw_item""")
        return Statement(f"drop_{self.kind.name}", tree, ("batch_id",),
                         "duplicates and conflicts out of the table: the record stored first stays")

    def quarantine_conflicts(self) -> Statement:
        """Conflicting duplicates of one file into the quarantine, as read: their raw text comes from reading
        the file again (conflicts are rare; the batch keeps no copy of accepted records)."""
        reason = _e("['conflicting duplicate: ' || __key__ || ' ' || fw_s.fw_key || ' is already taken by "
                    "different content at ' || fw_s.fw_at]", key=literal(self.kind.key))
        query = exp.select(param("batch_id"), literal(self.kind.name), param("path"), _col("line", "fw_c"),
                           _col("item", "fw_c"), reason, _col("fw_key", "fw_s"), param("now"),
                           *quarantine_text(_col("raw", "fw_c"), exp.Null(), self.options)
                           ).from_(exp.to_table(CHUNK).as_("fw_c")).join(
            exp.to_table(self.settled).as_("fw_s"),
            on=_e("fw_s.fw_file = $file_id AND fw_s.fw_outcome = 'conflict' AND fw_s.fw_line = fw_c.line "
                  "AND fw_s.fw_item IS NOT DISTINCT FROM fw_c.item"))
        return Statement(f"conflicts_{self.kind.name}", _insert_quarantine(query),
                         self._params("batch_id", "path", "now", "file_id"),
                         "same key, different content: quarantined as read, the stored record is kept")

    def conflicting_batches(self) -> Statement:
        """The earlier batches whose stored records this batch's conflicts collide with (to retract them)."""
        tree = parse(f"""
            SELECT t.batch_id, count(DISTINCT s.fw_key) AS n
            FROM {exp.to_table(self.kind.table).sql(dialect="duckdb")} AS t JOIN {self.settled} AS s
              ON t.{exp.to_identifier(self.kind.key, quoted=True).sql(dialect="duckdb")} = s.fw_key
            WHERE s.fw_outcome = 'conflict' AND t.batch_id <> $batch_id GROUP BY t.batch_id ORDER BY t.batch_id""")
        return Statement(f"conflicting_batches_{self.kind.name}", tree, ("batch_id",), "")

    def rejected_counts(self) -> Statement:
        tree = parse(f"SELECT fw_file, count(*) FILTER (WHERE NOT fw_ok) AS rejected, count(*) AS staged "
                     f"FROM {self.stage} GROUP BY fw_file")
        return Statement(f"rejected_{self.kind.name}", tree, (), "")


def _targets(kind: RecordKind) -> list[str]:
    return [c.name for c in kind.columns] + [n for n, _ in k_derived(kind)] + \
        ["extra", "record_hash", "batch_id", "source_file", "source_line", "source_item"]


def k_derived(kind: RecordKind, table: str | None = None) -> list[tuple[str, exp.Expression]]:
    """Columns computed from the record at load time (none but feedback.score for now)."""
    if kind.name != "feedback":
        return []
    c = lambda n: _col(n, table)  # noqa: E731
    score = _e("CASE __k__ WHEN 'rating' THEN (__r__ - 1) / 4.0 WHEN 'thumbs' THEN CASE WHEN __t__ = 'up' THEN 1.0 "
               "ELSE 0.0 END WHEN 'correction' THEN 0.0 WHEN 'ticket' THEN 0.0 END",
               k=c("kind"), r=c("rating"), t=c("thumbs"))
    return [("score", score)]


def quarantine_text(raw: exp.Expression, raw_bytes: exp.Expression, options: Options) -> list[exp.Expression]:
    """raw, raw_bytes and content_hash of a quarantine row: what is kept of the record (engine/ingest/privacy.py)."""
    kept = privacy.kept_raw(raw, raw_bytes, options)
    kept_b = privacy.kept_bytes(raw_bytes, options)
    return [kept, kept_b, privacy.content_hash(kept, kept_b, raw, options)]


def _insert_quarantine(query: exp.Select) -> exp.Insert:
    cols = ["batch_id", "kind", "source_file", "source_line", "source_item", "reasons", "record_key",
            "quarantined_at", "raw", "raw_bytes", "content_hash"]
    return exp.Insert(this=exp.Schema(this=exp.to_table("quarantine"),
                                      expressions=[exp.to_identifier(c) for c in cols]), expression=query)


def detect_sql() -> Statement:
    """kind=auto: each record's kind from its marker fields (traces: input, feedback: kind, events: type)."""
    markers = [(k.name, k.marker[0]) for k in KINDS.values()]
    paths = exp.Array(expressions=[literal("$." + json.dumps(m)) for _, m in markers])
    m = _e("CASE WHEN json_valid(raw) THEN CAST(json_extract(raw, __p__) AS VARCHAR[]) END", p=paths)
    ifs = [exp.If(this=_e(f"fw_m[{i}] IS NOT NULL"), true=literal(name)) for i, (name, _) in enumerate(markers, 1)]
    detected = exp.Coalesce(this=_col("kind"), expressions=[exp.Case(ifs=ifs)])
    inner = exp.select("line", "item", "problem", "raw", "raw_bytes", "kind", exp.alias_(m, "fw_m")).from_(CHUNK)
    tree = exp.select("line", "item", "problem", "raw", exp.alias_(detected, "kind"), "raw_bytes").from_(
        inner.subquery("fw_d"))
    return Statement("detect", tree, (), "kind=auto: the record kind from its marker fields")


def quarantine_undetected(options: Options) -> Statement:
    reason = _e("CASE WHEN problem IS NOT NULL THEN [problem] WHEN NOT json_valid(raw) THEN ['invalid JSON'] "
                "WHEN NOT starts_with(ltrim(raw), '{') THEN ['not a JSON object'] "
                "ELSE ['cannot tell the record kind: no input (traces), kind (feedback) or type (events) field'] END")
    query = exp.select(param("batch_id"), exp.Null(), param("path"), "line", "item", reason, exp.Null(),
                       param("now"), *quarantine_text(_col("raw"), _col("raw_bytes"), options)).from_(
        "fw_detected").where("kind IS NULL")
    names = ("batch_id", "path", "now") + (("salt",) if options.salt and options.hash_fields else ())
    return Statement("quarantine_undetected", _insert_quarantine(query), names, "")


def count_extra_sql(kind: RecordKind) -> str:
    """How many of a batch's stored records kept unknown fields."""
    tree = exp.select(exp.Count(this=exp.Star())).from_(exp.to_table(kind.table)).where(
        _e("batch_id = $batch_id AND extra IS NOT NULL"))
    return render(tree)


def rows_to_json_sql(table: str) -> str:
    return render(parse(f"SELECT CAST(to_json(fw_row) AS VARCHAR) AS raw FROM {table} AS fw_row"))


_COMPILING = threading.Lock()  # one compilation at a time: a caller waits for one under way instead of redoing it


def insert_sql(kind: str, options: Options, only_that_kind: bool) -> str:
    """The rendered insert_accepted statement (compiling it takes a while: once per process)."""
    with _COMPILING:
        return _insert_sql(kind, options, only_that_kind)


@lru_cache(maxsize=None)
def _insert_sql(kind: str, options: Options, only_that_kind: bool) -> str:
    where = _e("kind = __k__", k=literal(kind)) if only_that_kind else None
    return kind_sql(KINDS[kind], options).insert_accepted(where=where).sql()


def validate_sql(kind: str, options: Options) -> str:
    """The rendered validate statement (once per process, as insert_sql)."""
    with _COMPILING:
        return _validate_sql(kind, options)


@lru_cache(maxsize=None)
def _validate_sql(kind: str, options: Options) -> str:
    return kind_sql(KINDS[kind], options).validate().sql()


def batch_sql(kind: str, options: Options) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The other statements of a batch, rendered, with their parameters: {KindSQL method: (sql, params)}."""
    with _COMPILING:
        return _batch_sql(kind, options)


@lru_cache(maxsize=None)
def _batch_sql(kind: str, options: Options) -> dict[str, tuple[str, tuple[str, ...]]]:
    ks = kind_sql(KINDS[kind], options)
    statements = {"rejected_counts": ks.rejected_counts(),
                  "quarantine_rejected": ks.quarantine_rejected(), "settle": ks.settle(),
                  "settled_counts": ks.settled_counts(), "drop_settled": ks.drop_settled(),
                  "quarantine_conflicts": ks.quarantine_conflicts(), "conflicting_batches": ks.conflicting_batches()}
    return {name: (st.sql(), st.params) for name, st in statements.items()}


def _compile_ahead(kinds: tuple[str, ...], options: Options) -> None:
    """The statements a batch will most likely run (kind=auto: those of a file of one kind), compiled ahead."""
    for name in kinds:
        insert_sql(name, options, False)
    for name in kinds:
        batch_sql(name, options)
    if len(kinds) == 1:
        validate_sql(kinds[0], options)


def kind_sql(kind: RecordKind, options: Options) -> KindSQL:
    return KindSQL(kind, options)


def compile_plan(options: Options) -> list[Statement]:
    """Every statement an ingest with these options runs, in order (for `flywheel compile ingest`)."""
    statements: list[Statement] = []
    kinds = list(KINDS) if options.kind == "auto" else [options.kind]
    if options.kind == "auto":
        statements += [detect_sql(), quarantine_undetected(options)]
    for name in kinds:
        ks = kind_sql(KINDS[name], options)
        statements += [ks.create_stage(), ks.insert_accepted(), ks.validate(), ks.quarantine_rejected(),
                       ks.settle(), ks.drop_settled(), ks.quarantine_conflicts()]
    return statements


# ---------------------------------------------------------------------------------------------- execute


@dataclass
class FileCounts:
    path: str
    format: str
    sha256: str | None = None
    bytes: int = 0
    read: int = 0
    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    skipped: int = 0  # left out by the reader (Chunk.skipped): not read, but counted in the quarantine share
    unreadable: str | None = None
    previously_ingested_in: list[str] = field(default_factory=list)
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    otlp: dict | None = None  # OTLP files: spans per layout, traces, skipped spans (engine/ingest/otel.py)

    @property
    def accepted(self) -> int:
        return self.inserted + self.duplicates

    def add(self, kind: str, what: str, n: int) -> None:
        counts = self.by_kind.setdefault(kind, {"read": 0, "accepted": 0, "inserted": 0, "duplicates": 0,
                                                "quarantined": 0})
        counts[what] += n
        if what in ("inserted", "duplicates"):
            counts["accepted"] += n

    def to_json(self) -> dict:
        return {"path": self.path, "format": self.format, "sha256": self.sha256, "bytes": self.bytes,
                "read": self.read, "accepted": self.accepted, "inserted": self.inserted,
                "duplicates": self.duplicates, "quarantined": self.quarantined, "skipped": self.skipped,
                "unreadable": self.unreadable,
                "previously_ingested_in": self.previously_ingested_in, "by_kind": self.by_kind,
                **({"otlp": self.otlp} if self.otlp is not None else {})}


def _run(con: duckdb.DuckDBPyConnection, st: Statement, params: dict[str, Any]) -> list[tuple]:
    bound = {n: params[n] for n in st.params}
    return con.execute(st.sql(), bound).fetchall()


class Batch:
    """One `flywheel ingest`: every file in one transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection, options: Options, batch_id: str, now: Any,
                 on_chunk: Callable[[readers.SourceFile, int, int], None] | None = None):
        self.con = con
        self.options = options
        self.batch_id = batch_id
        self.now = now
        self.on_chunk = on_chunk or (lambda source, n_records, bytes_done: None)
        self.kinds = list(KINDS) if options.kind == "auto" else [options.kind]
        # Compiling the statements takes a while: done in a thread while the first chunk is read and checked.
        threading.Thread(target=_compile_ahead, args=(tuple(self.kinds), options), name="flywheel-ingest-compile",
                         daemon=True).start()
        self.files: list[FileCounts] = []
        self.sources: dict[int, readers.SourceFile] = {}
        self.accepted: dict[tuple[int, str], int] = {}  # (file id, kind) -> records that went straight in
        self.quarantine_reasons: dict[str, int] = {}
        self.conflicts_with: dict[str, int] = {}  # earlier batch -> records of this batch conflicting with its records
        self.resolved: dict[str, int] = {}  # quarantined records of earlier batches this batch resolved, by how

    def params(self, **extra: Any) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "now": self.now, "salt": self.options.salt, **extra}

    def run(self, sources: list[readers.SourceFile]) -> list[FileCounts]:
        con = self.con
        con.execute("SET TimeZone = 'UTC'")  # a timestamp without an offset is UTC
        con.execute(render(parse(f"CREATE OR REPLACE TEMPORARY TABLE {FILES} (fw_file INTEGER, fw_path VARCHAR)")))
        for name in self.kinds:
            con.execute(kind_sql(KINDS[name], self.options).create_stage().sql())  # needs no compiled checks
        con.execute(render(parse(f"CREATE OR REPLACE TEMPORARY TABLE {PENDING} (fw_file INTEGER, fw_kind VARCHAR, "
                                 f"line BIGINT, item INTEGER, problem VARCHAR, raw VARCHAR, raw_bytes BLOB)")))
        for file_id, source in enumerate(sources, start=1):
            counts = FileCounts(source.shown, source.format, bytes=source.size)
            self.files.append(counts)
            self.sources[file_id] = source
            con.execute(render(parse(f"INSERT INTO {FILES} VALUES ($file_id, $path)")),
                        {"file_id": file_id, "path": source.shown})
            try:
                for chunk in self._chunks(source):
                    counts.read += chunk.table.num_rows
                    counts.skipped += chunk.skipped
                    self._load_chunk(chunk.table, file_id, source, counts)
                    self.on_chunk(source, counts.read, chunk.bytes_done)
            except readers.UnreadableFile as e:
                if self.options.on_unreadable_file != "quarantine":
                    raise readers.UnreadableFile(f"{source.shown}: {e}") from e
                counts.unreadable = str(e)
                counts.read += 1
                counts.quarantined += 1
                con.execute(render(_insert_quarantine(exp.select(
                    param("batch_id"), literal(None if self.options.kind == "auto" else self.options.kind),
                    param("path"), exp.Null(), exp.Null(), exp.Array(expressions=[param("reason")]),
                    exp.Null(), param("now"), exp.Null(), exp.Null(), exp.Null()))),
                    {"batch_id": self.batch_id, "path": source.shown, "reason": f"unreadable file: {e}",
                     "now": self.now})
            counts.sha256 = source.sha256
            counts.otlp = source.otlp
        self._finalize()
        return self.files

    def _chunks(self, source: readers.SourceFile):
        o = self.options
        # Every chunk is checked for strict JSON (engine/ingest/strict.py) in the reader thread.
        if source.format == "jsonl":
            return readers.prefetched(strict.checked(readers.read_jsonl(source, o.chunk_bytes)))
        if source.format == "otlp":
            return readers.prefetched(strict.checked(readers.read_otlp(source, o.chunk_bytes)))
        if source.format == "csv":
            types = {name: _field_types(KINDS[name]) for name in KINDS}
            return readers.prefetched(strict.checked(readers.read_csv(source, o.chunk_rows, types,
                                                                      None if o.kind == "auto" else o.kind)))
        if source.format == "parquet":
            return strict.checked(readers.read_parquet(source, o.chunk_rows, self.con))
        raise ValueError(source.format)

    def _load_chunk(self, table: pa.Table, file_id: int, source: readers.SourceFile, counts: FileCounts) -> None:
        con = self.con
        if table.num_rows == 0:
            return
        # DuckDB scans an Arrow table one record batch per thread: slices (zero copy) let every thread work.
        table = pa.Table.from_batches(table.to_batches(max_chunksize=SCAN_BATCH_ROWS), table.schema)
        con.register(CHUNK, table)
        try:
            if self.options.kind != "auto":
                if table.column("kind").null_count == table.num_rows:
                    self._validate(self.options.kind, table, file_id, source, only_that_kind=False)
                else:  # OTLP: spans and their feedback events; only the declared kind is wanted
                    self._route(table, file_id, source, counts, only=self.options.kind)
                return
            self._route(table, file_id, source, counts)
        finally:
            _unregister(con, CHUNK)

    def _route(self, table: pa.Table, file_id: int, source: readers.SourceFile, counts: FileCounts,
               only: str | None = None) -> None:
        """kind=auto (or an OTLP chunk of spans and feedback events): each record is validated as its kind.

        A chunk holding one kind (the usual case: a file of traces) is validated as that kind as a whole,
        so a broken line in a traces file is a rejected trace. A mixed chunk is split by kind; a record whose
        kind cannot be told is quarantined with kind NULL."""
        con = self.con
        detect = detect_sql()
        if only is None and table.column("kind").null_count == table.num_rows:
            found = [k for (k,) in con.execute(render(
                exp.select("kind").distinct().from_(detect.tree.subquery("fw_k")))).fetchall()]
            named = [k for k in found if k is not None]
            if len(named) <= 1:
                kind = named[0] if named else None
                if kind is not None:
                    self._validate(kind, table, file_id, source, only_that_kind=False)
                    return
        detected = con.sql(detect.sql()).to_arrow_table()
        if only is not None:  # records of another kind than the declared one are not this ingest's business
            import pyarrow.compute as pc
            mask = pc.fill_null(pc.equal(detected.column("kind"), only), False)
            counts.read -= table.num_rows - pc.sum(mask).as_py() if table.num_rows else 0
            detected = detected.filter(mask)
        kinds = set(detected.column("kind").drop_null().to_pylist())
        con.register("fw_detected", detected)
        try:
            n = _run(con, quarantine_undetected(self.options), self.params(path=source.shown))
            undetected = n[0][0] if n else 0
            if undetected:
                counts.quarantined += undetected
                counts.add("unknown", "read", undetected)
                counts.add("unknown", "quarantined", undetected)
            con.unregister(CHUNK)
            con.register(CHUNK, detected)
            for name in sorted(kinds & set(self.kinds)):
                self._validate(name, detected, file_id, source, only_that_kind=True)
        finally:
            _unregister(con, "fw_detected")

    def _validate(self, name: str, table: pa.Table, file_id: int, source: readers.SourceFile,
                  only_that_kind: bool) -> None:
        """The records of kind `name` in the chunk (registered as CHUNK: `table`): those that pass the checks go
        straight into the kind's table; the others (usually few) are set aside in the pending table, for
        `validate` to explain at the end of the batch."""
        con = self.con
        insert = insert_sql(name, self.options, only_that_kind)
        got = con.execute(insert, {**self._bind(file_id), "batch_id": self.batch_id,
                                   "path": source.shown}).fetchnumpy()
        n_got = len(got["source_line"])
        self.accepted[(file_id, name)] = self.accepted.get((file_id, name), 0) + n_got
        if only_that_kind:
            import pyarrow.compute as pc
            candidates = pc.fill_null(pc.equal(table.column("kind"), name), False).to_numpy(zero_copy_only=False)
        else:
            candidates = np.ones(table.num_rows, dtype=bool)
        if n_got == int(candidates.sum()):
            return
        read = _positions(table.column("line").to_numpy(), table.column("item").fill_null(-1).to_numpy())
        went_in = _positions(np.asarray(got["source_line"]), np.ma.filled(got["source_item"], -1))
        rest = table.filter(pa.array(candidates & ~np.isin(read, went_in)))  # filter, unlike take, keeps chunks
        con.register("fw_rest", rest)
        try:
            con.execute(render(parse(f"INSERT INTO {PENDING} SELECT $file_id, $kind, line, item, problem, raw, "
                                     f"raw_bytes FROM fw_rest")), {"file_id": file_id, "kind": name})
        finally:
            _unregister(con, "fw_rest")

    def _bind(self, file_id: int | None) -> dict[str, Any]:
        bound: dict[str, Any] = {} if file_id is None else {"file_id": file_id}
        if self.options.salt and self.options.hash_fields:
            bound["salt"] = self.options.salt
        return bound

    def _finalize(self) -> None:
        con = self.con
        by_id = {i: f for i, f in enumerate(self.files, start=1)}
        for (file_id, name), n in self.accepted.items():
            by_id[file_id].add(name, "read", n)
        pending = dict(con.execute(render(parse(f"SELECT fw_kind, count(*) FROM {PENDING} GROUP BY fw_kind")))
                       .fetchall())
        settled_kinds: list[str] = []
        for name in self.kinds:
            if pending.get(name):
                con.execute(validate_sql(name, self.options), self._bind(None))
            rejected_total = 0
            for file_id, rejected, staged in self._run(name, "rejected_counts"):
                if rejected != staged:  # insert_accepted and validate apply the same checks: a bug if they differ
                    raise AssertionError(f"{name}: {staged - rejected} record(s) passed the checks on the second try")
                f = by_id[file_id]
                f.add(name, "read", staged)
                f.add(name, "quarantined", rejected)
                f.quarantined += rejected
                rejected_total += rejected
            if rejected_total:
                self._run(name, "quarantine_rejected")
            if not any(n for (_, kind), n in self.accepted.items() if kind == name):
                continue
            self._run(name, "settle")
            settled_kinds.append(name)
            settled: dict[int, dict[str, int]] = {}
            for file_id, outcome, n in self._run(name, "settled_counts"):
                settled.setdefault(file_id, {})[outcome] = n
            for (file_id, kind), n in self.accepted.items():
                if kind != name:
                    continue
                f = by_id[file_id]
                duplicates = settled.get(file_id, {}).get("duplicate", 0)
                conflicts = settled.get(file_id, {}).get("conflict", 0)
                f.inserted += n - duplicates - conflicts
                f.add(name, "inserted", n - duplicates - conflicts)
                f.duplicates += duplicates
                f.add(name, "duplicates", duplicates)
                f.quarantined += conflicts
                f.add(name, "quarantined", conflicts)
            if any(o.get("conflict") for o in settled.values()):
                for batch, n in self._run(name, "conflicting_batches"):
                    self.conflicts_with[batch] = self.conflicts_with.get(batch, 0) + n
            if settled:
                self._run(name, "drop_settled")
            for file_id in sorted(i for i, outcomes in settled.items() if outcomes.get("conflict")):
                self._quarantine_conflicts(name, file_id)
        self.resolved = mark_resolved(con, self.batch_id, self.now, self.kinds, settled_kinds)
        for f in self.files:
            if f.read != f.accepted + f.quarantined:  # the counting rule is the contract: a bug if broken
                raise AssertionError(f"{f.path}: read {f.read} != accepted {f.accepted} + quarantined {f.quarantined}")
        rows = con.execute("SELECT r, count(*) FROM (SELECT unnest(reasons) AS r FROM quarantine WHERE batch_id = ?) "
                           "GROUP BY r ORDER BY count(*) DESC, r", [self.batch_id]).fetchall()
        self.quarantine_reasons = {r: n for r, n in rows}

    def _sql(self, kind: str, statement: str) -> tuple[str, tuple[str, ...]]:
        return batch_sql(kind, self.options)[statement]

    def _run(self, kind: str, statement: str, **extra: Any) -> list[tuple]:
        sql, names = self._sql(kind, statement)
        params = self.params(**extra)
        return self.con.execute(sql, {n: params[n] for n in names}).fetchall()

    def _quarantine_conflicts(self, kind: str, file_id: int) -> None:
        """Conflicting records are quarantined as read: the file is read again for their raw text (the batch
        keeps no copy of accepted records). A file that changed meanwhile fails the batch."""
        source = self.sources[file_id]
        first_read = source.sha256
        for chunk in self._chunks(source):
            if chunk.table.num_rows == 0:
                continue
            self.con.register(CHUNK, chunk.table)
            try:
                self._run(kind, "quarantine_conflicts", path=source.shown, file_id=file_id)
            finally:
                _unregister(self.con, CHUNK)
        if source.sha256 != first_read:
            raise readers.UnreadableFile(f"{source.shown}: the file changed while it was being ingested")


def _or_all(items: list[exp.Expression]) -> exp.Expression:
    out = items[0]
    for item in items[1:]:
        out = exp.Or(this=out, expression=item)
    return exp.Paren(this=out)


def _positions(lines: np.ndarray, items: np.ndarray) -> np.ndarray:
    """(line, item) pairs (item -1 when there is none) as one int64 each, to compare sets of records."""
    lines = lines.astype(np.int64)
    items = items.astype(np.int64) + 1
    if len(items) and (items.max() >= 1 << 24 or lines.max() >= 1 << 39):
        raise AssertionError("a line or item number beyond what a record position can hold")
    return lines << 24 | items


def _unregister(con: duckdb.DuckDBPyConnection, name: str) -> None:
    try:
        con.unregister(name)
    except duckdb.Error:  # an aborted transaction: the original error is the one to report
        pass


def _field_types(kind: RecordKind) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name, sub in load_schema(kind.schema).get("properties", {}).items():
        t = sub.get("type", [])
        out[name] = set([t] if isinstance(t, str) else t)
    return out
