"""The statements of one ingest batch, per record kind (see engine/ingest/load.py for the order they run in)."""
from __future__ import annotations

import json

from sqlglot import exp

from engine.ingest import privacy
from engine.ingest.checks import CHUNK, FILES, KindChecks, _col
from engine.ingest.options import Options
from engine.ingest.records import KINDS, RecordKind
from engine.ingest.schema_sql import _e
from engine.sql import Statement, literal, param, parse, render


class KindSQL(KindChecks):
    """The compiled statements for one record kind under given options."""

    @staticmethod
    def _with(query: exp.Select, ctes: list[tuple[str, exp.Select]]) -> exp.Select:
        for name, cte in ctes:
            query = query.with_(name, as_=cte, copy=False)  # fresh trees: copying them is most of compiling
        return query

    def _params(self, *names: str) -> tuple[str, ...]:
        return names + (("salt",) if self.options.salt and self.options.hash_fields else ())

    def insert_accepted(self, where: exp.Expression | None = None) -> Statement:
        """INSERT INTO the kind's table every record of the chunk that passes the checks, typed, straight away.

        RETURNING tells which records went in: the others are explained by `validate`. Keys already stored or
        repeated in the batch are settled at the end of the batch (`settle`)."""
        k = self.kind
        out, ctes = self.verdict(where, accepted=True)
        typed = exp.select(*[exp.alias_(out[c.name], c.name, quoted=True) for c in k.columns],
                           exp.alias_(out["fw_key"], "fw_key"), exp.alias_(out["fw_hash"], "fw_hash"),
                           exp.alias_(_col("fw_extra"), "fw_extra"), _col("fw_line"), _col("fw_item")).from_(
            "fw_checked", copy=False).where(_col("fw_ok"), copy=False)
        a = "fw_a"
        values = [_col("fw_key", a) if c.name == k.key else _col(c.name, a) for c in k.columns]
        values += [d for _, d in k_derived(k, a)]
        values += [_col("fw_extra", a), _col("fw_hash", a), param("batch_id"), param("path"), _col("fw_line", a),
                   _col("fw_item", a)]
        query = self._with(exp.select(*values).from_(typed.subquery(a, copy=False), copy=False), ctes)
        tree = exp.Insert(this=exp.Schema(this=exp.to_table(k.table),
                                          expressions=[exp.to_identifier(n, quoted=True) for n in _targets(k)]),
                          expression=query,
                          returning=exp.Returning(expressions=[exp.column("source_line"), exp.column("source_item")]))
        return Statement(f"insert_{k.name}", tree, self._params("file_id", "batch_id", "path"),
                         f"records that pass the {len(self.rec.checks)} checks, typed, into {k.table}")

    def validate(self) -> Statement:
        """INSERT INTO the staging table the records `insert_accepted` did not take (set aside in the pending
        table as the chunks go), with the verdict and every reason: the same checks, run once per batch."""
        out, ctes = self.verdict(_e("fw_kind = __k__", k=literal(self.kind.name)), pending=True)
        select = [_col("fw_file"), _col("fw_line"), _col("fw_item"), exp.alias_(_col("raw"), "fw_raw"),
                  _col("fw_ok"), exp.alias_(out["fw_reasons"], "fw_reasons"), exp.alias_(out["fw_key"], "fw_key"),
                  exp.alias_(out["fw_hash"], "fw_hash")] + \
            [exp.alias_(out[c.name], c.name, quoted=True) for c in self.kind.columns] + \
            [exp.alias_(_col("fw_extra"), "extra"), exp.alias_(_col("raw_bytes"), "fw_raw_bytes")]
        query = self._with(exp.select(*select).from_("fw_checked", copy=False), ctes)
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
        key = render(exp.to_identifier(k.key, quoted=True))
        table = render(exp.to_table(k.table))
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
            DELETE FROM {render(exp.to_table(self.kind.table))} AS t
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
            FROM {render(exp.to_table(self.kind.table))} AS t JOIN {self.settled} AS s
              ON t.{render(exp.to_identifier(self.kind.key, quoted=True))} = s.fw_key
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
    inner = exp.select("line", "item", "problem", "raw", "raw_bytes", "strict", "kind",
                       exp.alias_(m, "fw_m")).from_(CHUNK)
    tree = exp.select("line", "item", "problem", "raw", exp.alias_(detected, "kind"), "raw_bytes", "strict").from_(
        inner.subquery("fw_d"))
    return Statement("detect", tree, (), "kind=auto: the record kind from its marker fields")


def quarantine_undetected(options: Options) -> Statement:
    reason = _e("CASE WHEN problem IS NOT NULL THEN [problem] WHEN NOT json_valid(raw) THEN ['invalid JSON'] "
                "WHEN NOT starts_with(ltrim(raw), '{') THEN ['not a JSON object'] "
                "ELSE ['cannot tell the record kind: no input (traces), kind (feedback) or type (events) field'] END")
    query = exp.select(param("batch_id"), exp.Null(), param("path"), "line", "item", reason, exp.Null(),
                       param("now"), *quarantine_text(_col("raw"), _col("raw_bytes"), options)).from_(
        CHUNK).where("kind IS NULL")  # the detected chunk
    names = ("batch_id", "path", "now") + (("salt",) if options.salt and options.hash_fields else ())
    return Statement("quarantine_undetected", _insert_quarantine(query), names, "")


def count_extra(kind: RecordKind) -> Statement:
    """How many of a batch's stored records kept unknown fields."""
    tree = exp.select(exp.alias_(exp.Count(this=exp.Star()), "n")).from_(exp.to_table(kind.table)).where(
        _e("batch_id = $batch_id AND extra IS NOT NULL"))
    return Statement(f"count_extra_{kind.name}", tree, ("batch_id",), "stored records that kept unknown fields")


def rows_to_json() -> Statement:
    """Parquet: each row of a chunk as a JSON record."""
    return Statement("rows_to_json", parse(f"SELECT CAST(to_json(fw_row) AS VARCHAR) AS raw FROM {CHUNK} AS fw_row"),
                     (), "Parquet rows as JSON records")
