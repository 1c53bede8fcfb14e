"""The plan of `flywheel ingest`: every statement an ingest runs, named, in the order it first runs.

`flywheel compile ingest` prints it and the run writes it (plan.sql): the same Plan object, built once from the
compiled statements (engine/ingest/compiled.py: read from the store's cache, or compiled and then stored), so
that a run never compiles its SQL twice. The batch (engine/ingest/batch.py) runs these statements through the
executor with the values that depend on the data (batch id, file, chunk, kind) as bound parameters; what must
be Python is a named PythonStep (resolving earlier quarantined records, the agents' tool spans).
"""
from __future__ import annotations

from functools import lru_cache

from sqlglot import exp

from engine.ingest.checks import CHUNK, FILES, PENDING
from engine.ingest.compiled import KIND_STATEMENTS, kind_statement, kind_sql
from engine.ingest.options import ExportSpec, Options
from engine.ingest.quarantine import export_statements
from engine.ingest.records import KINDS
from engine.ingest.statements import (_insert_quarantine, count_extra, detect_sql, quarantine_undetected,
                                      rows_to_json)
from engine.sql import Plan, PythonStep, Statement, param, template

RESOLVE = PythonStep("resolve_quarantine", "quarantined records of earlier batches that this batch accepted or "
                                           "read again are marked resolved (engine/ingest/quarantine.py)")
TOOL_STEPS = PythonStep("tool_steps", "OTLP input: the agents' execute_tool spans and conversations "
                                      "(engine/agents/otel_steps.py)")
LOAD_COMPILED = "load_compiled_sql"
SAVE_COMPILED = "save_compiled_sql"


def _st(name: str, sql: str, params: tuple[str, ...] = (), description: str = "", when: str = "") -> Statement:
    return Statement(name, template(sql), params, description, when)


@lru_cache(maxsize=None)
def fixed() -> dict[str, Statement]:
    """The statements that do not depend on the options (cheap to build)."""
    chunk_kinds = exp.select("kind").distinct().from_(detect_sql().tree.subquery("fw_k"))
    statements = [
        _st(LOAD_COMPILED, "SELECT statement, sql, params FROM ingest_sql_cache WHERE cache_key = $cache_key",
            ("cache_key",), "a kind's compiled statements, stored by an earlier ingest (key: schema, compiler, "
                            "options)"),
        _st("memory_limit", "SET memory_limit = $limit", ("limit",), "DuckDB's memory during the batch "
                                                                     "(ingest.memory_mb; it spills beyond)"),
        _st("timezone", "SET TimeZone = 'UTC'", (), "a timestamp without an offset is UTC"),
        _st("files_table", f"CREATE OR REPLACE TEMPORARY TABLE {FILES} (fw_file INTEGER, fw_path VARCHAR)", (),
            "the batch's files"),
        _st("pending_table", f"CREATE OR REPLACE TEMPORARY TABLE {PENDING} (fw_file INTEGER, fw_kind VARCHAR, "
                             f"line BIGINT, item INTEGER, problem VARCHAR, raw VARCHAR, raw_bytes BLOB)", (),
            "records that did not pass the checks, until validate explains them"),
        _st("add_file", f"INSERT INTO {FILES} VALUES ($file_id, $path)", ("file_id", "path"), "one per file"),
        Statement("quarantine_unreadable", _insert_quarantine(exp.select(
            param("batch_id"), param("kind"), param("path"), exp.Null(), exp.Null(),
            exp.Array(expressions=[param("reason")]), exp.Null(), param("now"), exp.Null(), exp.Null(),
            exp.Null())), ("batch_id", "kind", "path", "reason", "now"), "a file that cannot be read, quarantined",
            "when a file cannot be read and ingest.on_unreadable_file=quarantine"),
        rows_to_json().conditional("for Parquet files"),
        Statement("chunk_kinds", chunk_kinds, (), "kind=auto: the kinds of a chunk's records",
                  "when kind=auto and a chunk's records carry no kind (JSONL, CSV, Parquet)"),
        detect_sql().conditional("when a chunk holds records of several kinds (kind=auto, OTLP)"),
        _st("set_aside", f"INSERT INTO {PENDING} SELECT $file_id, $kind, line, item, problem, raw, raw_bytes "
                         f"FROM {CHUNK}", ("file_id", "kind"), "a chunk's records that did not pass the checks",
            "when a chunk has records that did not pass the checks"),
        _st("pending_counts", f"SELECT fw_kind, count(*) AS n FROM {PENDING} GROUP BY fw_kind", (),
            "the set-aside records per kind"),
        _st(SAVE_COMPILED, "INSERT INTO ingest_sql_cache VALUES ($cache_key, $kind, $statement, $sql, $params, "
                           "now()) ON CONFLICT DO NOTHING", ("cache_key", "kind", "statement", "sql", "params"),
            "statements this process compiled, kept for the next ingest",
            "when this process compiled statements the store did not hold"),
        _st("quarantine_reasons", "SELECT r, count(*) AS n FROM (SELECT unnest(reasons) AS r FROM quarantine "
                                  "WHERE batch_id = $batch_id) GROUP BY r ORDER BY count(*) DESC, r",
            ("batch_id",), "the batch's quarantine reasons, most frequent first"),
        Statement("reset_memory_limit", exp.Command(this="RESET", expression=" memory_limit"), (),
                  "back to DuckDB's default"),
        _st("earlier_ingests", "SELECT DISTINCT batch_id FROM ingest_batches WHERE file_sha256 = $sha256 AND "
                               "batch_id NOT IN (SELECT batch_id FROM ingest_retractions) ORDER BY batch_id",
            ("sha256",), "the batches that ingested the same file before", "for each file read whole"),
        _st("record_batch", "INSERT INTO ingest_batches VALUES ($batch_id, $path, $sha256, $bytes, $format, "
                            "$started, $finished, $read, $accepted, $inserted, $duplicates, $quarantined, $options)",
            ("batch_id", "path", "sha256", "bytes", "format", "started", "finished", "read", "accepted", "inserted",
             "duplicates", "quarantined", "options"), "one row per file"),
        _st("quarantine_examples", "SELECT source_file, source_line, source_item FROM quarantine WHERE batch_id = "
                                   "$batch_id AND list_contains(reasons, $reason) ORDER BY source_file, source_line, "
                                   "source_item LIMIT $limit", ("batch_id", "reason", "limit"),
            "where the first records quarantined for a reason are (printed)",
            "when records were quarantined and ingest.show_reasons > 0"),
    ]
    return {st.name: st for st in statements}


def undetected(options: Options) -> Statement:
    return quarantine_undetected(options).conditional("when a chunk holds records of several kinds "
                                                      "(kind=auto, OTLP)")


_WHEN = {"insert": "when a chunk holds {k} records",
         "insert_of_kind": "when a chunk holds {k} records among records of other kinds (kind=auto, OTLP)",
         "validate": "when {k} records did not pass the checks",
         "quarantine_rejected": "when {k} records did not pass the checks",
         "settle": "when {k} records were accepted",
         "settled_counts": "when {k} records were accepted",
         "drop_settled": "when {k} records repeat a stored key (duplicates or conflicts)",
         "conflicting_batches": "when {k} records conflict with stored ones",
         "quarantine_conflicts": "when {k} records conflict with stored ones"}


def of_kind(kind: str, options: Options, name: str) -> Statement:
    """One of a kind's compiled statements, with when it runs."""
    st = kind_statement(kind, options, name)
    return st.conditional(_WHEN[name].format(k=kind)) if name in _WHEN else st


def plan(options: Options, ingest: bool = True, export: ExportSpec | None = None) -> Plan:
    """The whole plan: an ingest with these options (kind statements compiled or read from the cache), and/or an
    export of the quarantine (`export`: ingest.export; None: no export)."""
    steps: list = []
    if ingest:
        f = fixed()
        kinds = list(KINDS) if options.kind == "auto" else [options.kind]
        steps += [f[LOAD_COMPILED], f["memory_limit"], f["timezone"], f["files_table"]]
        steps += [kind_sql(KINDS[k], options).create_stage() for k in kinds]
        steps += [f["pending_table"], f["add_file"], f["quarantine_unreadable"], f["rows_to_json"]]
        if options.kind == "auto":
            steps.append(f["chunk_kinds"])
        steps += [f["detect"], undetected(options)]
        steps += [of_kind(k, options, n) for n in ("insert", "insert_of_kind") for k in kinds]
        steps += [f["set_aside"], f["pending_counts"]]
        steps += [of_kind(k, options, n) for k in kinds for n in KIND_STATEMENTS
                  if n not in ("insert", "insert_of_kind")]
        steps += [RESOLVE, f[SAVE_COMPILED], f["quarantine_reasons"], f["reset_memory_limit"], TOOL_STEPS,
                  f["earlier_ingests"], f["record_batch"]]
        if options.unknown_fields == "keep":
            steps += [count_extra(KINDS[k]) for k in kinds]
        steps.append(f["quarantine_examples"])
    if export is not None:
        steps += export_statements(export.batch, export.kind, export.include_resolved)
    return Plan("ingest", tuple(steps))
