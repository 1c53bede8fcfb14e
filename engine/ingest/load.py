"""One ingest batch: read files in chunks, validate each chunk in SQL, load everything in one transaction.

The statements (all sqlglot ASTs, rendered by engine.sql):

  detect      kind=auto: which kind each record is, from its marker fields (one JSON parse)
  validate    per chunk and kind: schema checks derived from schemas/<kind>.schema.json, typed columns,
              privacy (salted hash, redaction), key and record hash -> a staging table
  quarantine  rejected staged records -> quarantine (with file, line, raw and every reason)
  insert      accepted records whose key is new (not stored, first in the batch) -> the kind's table
  outcome     every accepted record against the stored one with its key: inserted | duplicate | conflict
  conflicts   same key, different content -> quarantine ("conflicting duplicate"); exact repeats are
              duplicates: accepted, counted, not inserted

Counting rule, per file and per kind:  read = accepted + quarantined,  accepted = inserted + duplicates.
A batch is one DuckDB transaction: killed half way, the store holds none of it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

import duckdb
import pyarrow as pa
from sqlglot import exp

from engine.ingest import readers
from engine.ingest.records import KINDS, Column, RecordKind
from engine.ingest.schema_sql import RecordSQL, compile_schema
from engine.ingest.schema_sql import _e  # parse_expression with cached templates
from engine.schemas import load_schema
from engine.sql import Statement, literal, param, parse, render

CHUNK = "fw_chunk"
FILES = "fw_files"
CONTROL = {"fw_file", "fw_line", "fw_item", "fw_raw", "fw_ok", "fw_reasons", "fw_key", "fw_hash"}
UNKNOWN_FIELDS = ("keep", "ignore", "quarantine")


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
                   redaction=str(privacy.get("redaction", "[REDACTED]")))

    def privacy_summary(self) -> dict:
        """What the batch did for privacy, storable: the salt's fingerprint, never the salt."""
        import hashlib

        fp = hashlib.sha256(("flywheel-salt-fingerprint:" + self.salt).encode()).hexdigest()[:12] if self.salt else None
        return {"salt_fingerprint": fp, "hashed_fields": list(self.hash_fields) if self.salt else [],
                "redacted_fields": list(self.redact)}


# ---------------------------------------------------------------------------------------------- compile


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


@dataclass
class KindSQL:
    """The compiled statements for one record kind under given options."""

    kind: RecordKind
    rec: RecordSQL
    options: Options

    @property
    def stage(self) -> str:
        return f"fw_stage_{self.kind.name}"

    def stage_columns(self) -> list[tuple[str, str]]:
        base = [("fw_file", "INTEGER"), ("fw_line", "BIGINT"), ("fw_item", "INTEGER"), ("fw_raw", "VARCHAR"),
                ("fw_ok", "BOOLEAN"), ("fw_reasons", "VARCHAR[]"), ("fw_key", "VARCHAR"), ("fw_hash", "UBIGINT")]
        return base + [(c.name, c.type) for c in self.kind.columns] + [("extra", "JSON")]

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
            value = exp.Case(ifs=[exp.If(this=v.is_string, true=_e("TRY_CAST(__s__ AS TIMESTAMPTZ)", s=v.text))])
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
            value = _e("CASE WHEN __x__ IS NULL THEN NULL ELSE sha256($salt || __x__) END", x=value)
        return value

    def _extra(self) -> exp.Expression:
        """The unknown top-level fields as a JSON object (merge-patching the known ones away), or NULL."""
        if self.options.unknown_fields == "ignore":
            return exp.cast(exp.Null(), exp.DataType.build("JSON"))
        fields = self.kind.top_level_fields
        remove = literal(json.dumps({k: None for k in fields}))
        known = exp.Array(expressions=[literal(k) for k in fields])
        # json_keys is one more parse; the merge patch (slow) runs only on records that have unknown keys.
        return _e("CASE WHEN starts_with(ltrim(__raw__), '{') AND json_valid(__raw__) "
                  "AND NOT list_has_all(__known__, json_keys(__raw__)) "
                  "THEN nullif(CAST(json_merge_patch(CAST(__raw__ AS JSON), __rm__) AS VARCHAR), '{}') END",
                  raw=_col("raw"), rm=remove, known=known)

    def validate(self, where: exp.Expression | None = None) -> Statement:
        """INSERT INTO the staging table: one row per record of the chunk, with its verdict and typed columns.

        fw_in (materialised: DuckDB would otherwise inline the JSON passes into every check that uses them)
        reads each record once per list: fw_t (types), fw_w (values), fw_extra (unknown fields, when kept).
        fw_checked adds the verdict; the outer query the reasons (rejected records only), key, hash and the
        typed, privacy-treated columns.
        """
        rec = self.rec
        typed = [exp.alias_(self._typed(c), c.name, quoted=True) for c in self.kind.columns]
        key_value = rec.value((self.kind.key,))
        ok = _e("__p__ IS NULL AND __ok__", p=_col("fw_problem"), ok=rec.ok())
        if self.options.unknown_fields == "quarantine":
            ok = _e("__ok__ AND __x__ IS NULL", ok=ok, x=_col("fw_extra"))
        reasons = rec.reasons()
        if self.options.unknown_fields == "quarantine":
            reasons = _e("CASE WHEN __x__ IS NULL THEN __r__ ELSE list_concat(__r__, ['unknown field(s): ' || "
                         "array_to_string(json_keys(__x__), ', ')]) END", x=_col("fw_extra"), r=reasons)
        reasons = _e("CASE WHEN __ok__ THEN NULL WHEN __p__ IS NOT NULL THEN [__p__] ELSE __r__ END",
                     ok=_col("fw_ok"), p=_col("fw_problem"), r=reasons)
        types, strings = rec.extract()
        inner = exp.select(
            exp.alias_(param("file_id"), "fw_file"), exp.alias_(_col("line"), "fw_line"),
            exp.alias_(_col("item"), "fw_item"), exp.alias_(_col("problem"), "fw_problem"), _col("raw"),
            exp.alias_(types, "fw_t"), exp.alias_(strings, "fw_w"), exp.alias_(self._extra(), "fw_extra"),
        ).from_(CHUNK)
        if where is not None:
            inner = inner.where(where)
        checked = exp.select("*", exp.alias_(ok, "fw_ok")).from_("fw_in")
        content_key = _e("'h-' || md5(CAST(json(__raw__) AS VARCHAR))", raw=_col("raw"))
        key = _e("CASE WHEN __s__ THEN __t__ WHEN __ok__ THEN __h__ END", s=key_value.is_string, t=key_value.text,
                 ok=_col("fw_ok"), h=content_key)
        hashed = _e("hash(fw_t, fw_w)") if self.options.unknown_fields == "ignore" else \
            _e("hash(fw_t, fw_w, fw_extra)")
        # Every staged row keeps its raw text: rejected ones for the quarantine, accepted ones for the rare
        # conflicting duplicate (same key, other content), which is quarantined as read.
        select = [_col("fw_file"), _col("fw_line"), _col("fw_item"), exp.alias_(_col("raw"), "fw_raw"),
                  _col("fw_ok"), exp.alias_(reasons, "fw_reasons"), exp.alias_(key, "fw_key"),
                  exp.alias_(hashed, "fw_hash")] + typed + [exp.alias_(_col("fw_extra"), "extra")]
        query = exp.select(*select).from_("fw_checked")
        query = query.with_("fw_in", as_=inner, materialized=True).with_("fw_checked", as_=checked)
        columns = [exp.to_identifier(n, quoted=True) for n, _ in self.stage_columns()]
        tree = exp.Insert(this=exp.Schema(this=exp.to_table(self.stage), expressions=columns), expression=query)
        params = ("file_id", "salt") if self.options.salt and self.options.hash_fields else ("file_id",)
        return Statement(f"validate_{self.kind.name}", tree, params,
                         f"{len(rec.checks)} checks derived from schemas/{self.kind.schema}.schema.json")

    def quarantine_rejected(self) -> Statement:
        s = "fw_s"
        query = exp.select(
            param("batch_id"), literal(self.kind.name), _col("fw_path", "fw_f"), _col("fw_line", s),
            _col("fw_item", s), _e("rtrim(fw_s.fw_raw, chr(10) || chr(13))"), _col("fw_reasons", s),
            _col("fw_key", s), param("now"),
        ).from_(exp.to_table(self.stage).as_(s)).join(
            exp.to_table(FILES).as_("fw_f"), on=_e("fw_f.fw_file = fw_s.fw_file")).where(
            exp.not_(_col("fw_ok", s)))
        return Statement(f"quarantine_{self.kind.name}", _insert_quarantine(query), ("batch_id", "now"),
                         "rejected records, with every reason")

    def insert_new(self) -> Statement:
        k = self.kind
        s, t = "fw_s", "fw_t"
        targets = [c.name for c in k.columns] + [n for n, _ in k_derived(k)] + \
            ["extra", "record_hash", "batch_id", "source_file", "source_line", "source_item"]
        values: list[exp.Expression] = []
        for c in k.columns:
            values.append(_col("fw_key", s) if c.name == k.key else _col(c.name, s))
        values += [d for _, d in k_derived(k, s)]
        values += [_col("extra", s), _col("fw_hash", s), param("batch_id"), _col("fw_path", "fw_f"),
                   _col("fw_line", s), _col("fw_item", s)]
        stored = exp.select("1").from_(exp.to_table(k.table).as_(t)).where(
            exp.EQ(this=_col(k.key, t), expression=_col("fw_key", s)))
        first = _e("row_number() OVER (PARTITION BY fw_s.fw_key ORDER BY fw_s.fw_file, fw_s.fw_line, fw_s.fw_item) = 1")
        query = exp.select(*values).from_(exp.to_table(self.stage).as_(s)).join(
            exp.to_table(FILES).as_("fw_f"), on=_e("fw_f.fw_file = fw_s.fw_file")).where(
            exp.and_(_col("fw_ok", s), exp.not_(exp.Exists(this=stored)))).qualify(first)
        tree = exp.Insert(this=exp.Schema(this=exp.to_table(k.table),
                                          expressions=[exp.to_identifier(n, quoted=True) for n in targets]),
                          expression=query)
        return Statement(f"insert_{k.name}", tree, ("batch_id",),
                         "accepted records whose key is new: not stored, first in the batch")

    def _outcome_query(self) -> exp.Select:
        k = self.kind
        outcome = _e("CASE WHEN fw_t.batch_id = $batch_id AND fw_t.source_file = fw_f.fw_path "
                     "AND fw_t.source_line IS NOT DISTINCT FROM fw_s.fw_line "
                     "AND fw_t.source_item IS NOT DISTINCT FROM fw_s.fw_item THEN 'inserted' "
                     "WHEN fw_t.record_hash = fw_s.fw_hash THEN 'duplicate' ELSE 'conflict' END")
        return exp.select(_col("fw_file", "fw_s"), exp.alias_(outcome, "fw_outcome")).from_(
            exp.to_table(self.stage).as_("fw_s")).join(
            exp.to_table(FILES).as_("fw_f"), on=_e("fw_f.fw_file = fw_s.fw_file")).join(
            exp.to_table(k.table).as_("fw_t"), on=exp.EQ(this=_col(k.key, "fw_t"), expression=_col("fw_key", "fw_s"))
        ).where(_col("fw_ok", "fw_s"))

    def outcome_counts(self) -> Statement:
        q = self._outcome_query()
        tree = exp.select(_col("fw_file"), _col("fw_outcome"), exp.alias_(exp.Count(this=exp.Star()), "n")).from_(
            q.subquery("fw_o")).group_by(_col("fw_file"), _col("fw_outcome"))
        return Statement(f"outcome_{self.kind.name}", tree, ("batch_id",),
                         "each accepted record: inserted, duplicate (same content) or conflict")

    def quarantine_conflicts(self) -> Statement:
        k = self.kind
        q = self._outcome_query()
        q = q.select(_col("fw_line", "fw_s"), _col("fw_item", "fw_s"), _col("fw_raw", "fw_s"), _col("fw_key", "fw_s"),
                     exp.alias_(_col("fw_path", "fw_f"), "fw_path"),
                     exp.alias_(_e("fw_t.source_file || ':' || coalesce(CAST(fw_t.source_line AS VARCHAR), '?') "
                                   "|| CASE WHEN fw_t.batch_id = $batch_id THEN ' in this batch' "
                                   "ELSE ' (batch ' || fw_t.batch_id || ')' END"), "fw_first"))
        reason = _e("['conflicting duplicate: ' || __key__ || ' ' || fw_c.fw_key || ' is already taken by "
                    "different content at ' || fw_c.fw_first]", key=literal(k.key))
        query = exp.select(param("batch_id"), literal(k.name), _col("fw_path", "fw_c"), _col("fw_line", "fw_c"),
                           _col("fw_item", "fw_c"), _e("rtrim(fw_c.fw_raw, chr(10) || chr(13))"), reason,
                           _col("fw_key", "fw_c"),
                           param("now")).from_(q.subquery("fw_c")).where(_e("fw_c.fw_outcome = 'conflict'"))
        return Statement(f"conflicts_{k.name}", _insert_quarantine(query), ("batch_id", "now"),
                         "same key, different content: quarantined, the stored record is kept")

    def rejected_counts(self) -> Statement:
        tree = parse(f"SELECT fw_file, count(*) FILTER (WHERE NOT fw_ok) AS rejected, count(*) AS staged "
                     f"FROM {self.stage} GROUP BY fw_file")
        return Statement(f"rejected_{self.kind.name}", tree, (), "")


def k_derived(kind: RecordKind, table: str | None = None) -> list[tuple[str, exp.Expression]]:
    """Columns computed from the record at load time (none but feedback.score for now)."""
    if kind.name != "feedback":
        return []
    c = lambda n: _col(n, table)  # noqa: E731
    score = _e("CASE __k__ WHEN 'rating' THEN (__r__ - 1) / 4.0 WHEN 'thumbs' THEN CASE WHEN __t__ = 'up' THEN 1.0 "
               "ELSE 0.0 END WHEN 'correction' THEN 0.0 WHEN 'ticket' THEN 0.0 END",
               k=c("kind"), r=c("rating"), t=c("thumbs"))
    return [("score", score)]


def _insert_quarantine(query: exp.Select) -> exp.Insert:
    cols = ["batch_id", "kind", "source_file", "source_line", "source_item", "raw", "reasons", "record_key",
            "quarantined_at"]
    return exp.Insert(this=exp.Schema(this=exp.to_table("quarantine"),
                                      expressions=[exp.to_identifier(c) for c in cols]), expression=query)


def detect_sql() -> Statement:
    """kind=auto: each record's kind from its marker fields (traces: input, feedback: kind, events: type)."""
    markers = [(k.name, k.marker[0]) for k in KINDS.values()]
    paths = exp.Array(expressions=[literal("$." + json.dumps(m)) for _, m in markers])
    m = _e("CASE WHEN json_valid(raw) THEN CAST(json_extract(raw, __p__) AS VARCHAR[]) END", p=paths)
    ifs = [exp.If(this=_e(f"fw_m[{i}] IS NOT NULL"), true=literal(name)) for i, (name, _) in enumerate(markers, 1)]
    detected = exp.Coalesce(this=_col("kind"), expressions=[exp.Case(ifs=ifs)])
    inner = exp.select("line", "item", "problem", "raw", "kind", exp.alias_(m, "fw_m")).from_(CHUNK)
    tree = exp.select("line", "item", "problem", "raw", exp.alias_(detected, "kind")).from_(inner.subquery("fw_d"))
    return Statement("detect", tree, (), "kind=auto: the record kind from its marker fields")


def quarantine_undetected() -> Statement:
    reason = _e("CASE WHEN problem IS NOT NULL THEN [problem] WHEN NOT json_valid(raw) THEN ['invalid JSON'] "
                "WHEN NOT starts_with(ltrim(raw), '{') THEN ['not a JSON object'] "
                "ELSE ['cannot tell the record kind: no input (traces), kind (feedback) or type (events) field'] END")
    query = exp.select(param("batch_id"), exp.Null(), param("path"), "line", "item",
                       _e("rtrim(raw, chr(10) || chr(13))"), reason, exp.Null(), param("now")).from_(
        "fw_detected").where("kind IS NULL")
    return Statement("quarantine_undetected", _insert_quarantine(query), ("batch_id", "path", "now"), "")


def count_extra_sql(kind: RecordKind) -> str:
    """How many of a batch's stored records kept unknown fields."""
    tree = exp.select(exp.Count(this=exp.Star())).from_(exp.to_table(kind.table)).where(
        _e("batch_id = $batch_id AND extra IS NOT NULL"))
    return render(tree)


def rows_to_json_sql(table: str) -> str:
    return render(parse(f"SELECT CAST(to_json(fw_row) AS VARCHAR) AS raw FROM {table} AS fw_row"))


@lru_cache(maxsize=None)
def validate_sql(kind: str, options: Options, only_that_kind: bool) -> str:
    """The rendered validation statement (compiling it takes a while: done once per process)."""
    where = _e("kind = __k__", k=literal(kind)) if only_that_kind else None
    return kind_sql(KINDS[kind], options).validate(where=where).sql()


def kind_sql(kind: RecordKind, options: Options) -> KindSQL:
    rec = compile_schema(load_schema(kind.schema), _col("raw"), kind.schema)
    ks = KindSQL(kind, rec, options)
    # Typed columns may name paths the checks do not (none today); register them before extraction is built.
    for c in kind.columns:
        rec.value(c.path)
    return ks


def compile_plan(options: Options) -> list[Statement]:
    """Every statement an ingest with these options runs, in order (for `flywheel compile ingest`)."""
    statements: list[Statement] = []
    kinds = list(KINDS) if options.kind == "auto" else [options.kind]
    if options.kind == "auto":
        statements += [detect_sql(), quarantine_undetected()]
    for name in kinds:
        ks = kind_sql(KINDS[name], options)
        statements += [ks.create_stage(), ks.validate(), ks.quarantine_rejected(), ks.insert_new(),
                       ks.outcome_counts(), ks.quarantine_conflicts()]
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
    unreadable: str | None = None
    previously_ingested_in: list[str] = field(default_factory=list)
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)

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
                "duplicates": self.duplicates, "quarantined": self.quarantined, "unreadable": self.unreadable,
                "previously_ingested_in": self.previously_ingested_in, "by_kind": self.by_kind}


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
        self.kinds = {name: kind_sql(KINDS[name], options)
                      for name in (KINDS if options.kind == "auto" else [options.kind])}
        self.files: list[FileCounts] = []
        self.quarantine_reasons: dict[str, int] = {}

    def params(self, **extra: Any) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "now": self.now, "salt": self.options.salt, **extra}

    def run(self, sources: list[readers.SourceFile]) -> list[FileCounts]:
        con = self.con
        con.execute("SET TimeZone = 'UTC'")  # a timestamp without an offset is UTC
        con.execute(render(parse(f"CREATE OR REPLACE TEMPORARY TABLE {FILES} (fw_file INTEGER, fw_path VARCHAR)")))
        for ks in self.kinds.values():
            con.execute(ks.create_stage().sql())
        self._prepared = {name: validate_sql(name, self.options, False) for name in self.kinds}
        for file_id, source in enumerate(sources, start=1):
            counts = FileCounts(source.shown, source.format, bytes=source.size)
            self.files.append(counts)
            con.execute(render(parse(f"INSERT INTO {FILES} VALUES ($file_id, $path)")),
                        {"file_id": file_id, "path": source.shown})
            try:
                for chunk in self._chunks(source):
                    counts.read += chunk.table.num_rows
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
                    param("path"), exp.Null(), exp.Null(), exp.Null(), exp.Array(expressions=[param("reason")]),
                    exp.Null(), param("now")))),
                    {"batch_id": self.batch_id, "path": source.shown, "reason": f"unreadable file: {e}",
                     "now": self.now})
            counts.sha256 = source.sha256
        self._finalize()
        return self.files

    def _chunks(self, source: readers.SourceFile):
        o = self.options
        if source.format == "jsonl":
            return readers.read_jsonl(source, o.chunk_bytes)
        if source.format == "otlp":
            return readers.read_otlp(source, o.chunk_bytes)
        if source.format == "csv":
            types = {name: _field_types(KINDS[name]) for name in KINDS}
            return readers.read_csv(source, o.chunk_rows, types, None if o.kind == "auto" else o.kind)
        if source.format == "parquet":
            return readers.read_parquet(source, o.chunk_rows, self.con)
        raise ValueError(source.format)

    def _load_chunk(self, table: pa.Table, file_id: int, source: readers.SourceFile, counts: FileCounts) -> None:
        con = self.con
        if table.num_rows == 0:
            return
        con.register(CHUNK, table)
        try:
            if self.options.kind != "auto":
                if table.column("kind").null_count == table.num_rows:
                    con.execute(self._prepared[self.options.kind], self._bind(file_id))
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
                    con.execute(self._prepared[kind], self._bind(file_id))
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
            n = _run(con, quarantine_undetected(), self.params(path=source.shown))
            undetected = n[0][0] if n else 0
            if undetected:
                counts.quarantined += undetected
                counts.add("unknown", "read", undetected)
                counts.add("unknown", "quarantined", undetected)
            con.unregister(CHUNK)
            con.register(CHUNK, detected)
            for name in kinds & set(self.kinds):
                con.execute(validate_sql(name, self.options, True), self._bind(file_id))
        finally:
            _unregister(con, "fw_detected")

    def _bind(self, file_id: int) -> dict[str, Any]:
        bound: dict[str, Any] = {"file_id": file_id}
        if self.options.salt and self.options.hash_fields:
            bound["salt"] = self.options.salt
        return bound

    def _finalize(self) -> None:
        con = self.con
        by_id = {i: f for i, f in enumerate(self.files, start=1)}
        for name, ks in self.kinds.items():
            for file_id, rejected, staged in _run(con, ks.rejected_counts(), {}):
                f = by_id[file_id]
                f.add(name, "read", staged)
                f.add(name, "quarantined", rejected)
                f.quarantined += rejected
            _run(con, ks.quarantine_rejected(), self.params())
            _run(con, ks.insert_new(), self.params())
            for file_id, outcome, n in _run(con, ks.outcome_counts(), self.params()):
                f = by_id[file_id]
                if outcome == "inserted":
                    f.inserted += n
                    f.add(name, "inserted", n)
                elif outcome == "duplicate":
                    f.duplicates += n
                    f.add(name, "duplicates", n)
                else:
                    f.quarantined += n
                    f.add(name, "quarantined", n)
            _run(con, ks.quarantine_conflicts(), self.params())
        for f in self.files:
            if f.read != f.accepted + f.quarantined:  # the counting rule is the contract: a bug if broken
                raise AssertionError(f"{f.path}: read {f.read} != accepted {f.accepted} + quarantined {f.quarantined}")
        rows = con.execute("SELECT r, count(*) FROM (SELECT unnest(reasons) AS r FROM quarantine WHERE batch_id = ?) "
                           "GROUP BY r ORDER BY count(*) DESC, r", [self.batch_id]).fetchall()
        self.quarantine_reasons = {r: n for r, n in rows}


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
