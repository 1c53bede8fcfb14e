"""Quarantined records out of the store, to be fixed and ingested again, and how the loop settles.

The export is a JSONL file holding each quarantined record once, exactly as the quarantine keeps it (CSV and
Parquet rows as the JSON records they were converted to; a line that is not UTF-8 as its original bytes, so that
it is rejected again rather than accepted with replacement characters; with privacy settings, hashed and
redacted). Fixing a record means editing its line in place and running `flywheel ingest path=THAT_FILE`.
Beside it, `<name>.reasons.jsonl` says for each line where the record came from and why it was rejected.

Identity: a quarantined record is the hash of what the quarantine keeps (`content_hash`): the same bad line read
again (its file ingested again, or the export re-ingested unfixed) is the same record, exported once.

Resolution (marked at the end of every batch, `mark_resolved`): an unresolved record of an earlier batch is
  * accepted   when this batch stored a record with its key (its id, or for a record without an id its
               content hash), or accepted a record at its source line or at the export line it was written to;
  * read again when this batch quarantined a record at one of those places, or the same record (content hash)
               anywhere: the newer occurrence is the live one.
At a place, a record with an id only counts when the record read there has the same id. Resolved records are
left out of later exports (`ingest.export.include_resolved=true` shows them).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pyarrow as pa

from engine import executor
from engine.ingest import arrow_scan
from engine.ingest.records import KINDS
from engine.outputs import quarantine_reasons_path
from engine.sql import Statement, parse, statement

FILES = "fw_files"  # the batch's files (engine/ingest/load.py)
NO_ID = "(q.record_key IS NULL OR starts_with(q.record_key, 'h-'))"


def _places_sql() -> str:
    """Where each unresolved quarantined record of an earlier batch may be read again: its source line and the
    export lines it was written to, restricted to the files this batch read."""
    return f"""
        CREATE OR REPLACE TEMPORARY TABLE fw_places AS
        SELECT q.rowid AS fw_q, q.source_file AS fw_path, q.source_line AS fw_line, q.source_item AS fw_item,
               q.record_key AS fw_key
        FROM quarantine AS q
        WHERE q.resolved_at IS NULL AND q.batch_id <> $batch_id AND q.source_line IS NOT NULL
          AND q.source_file IN (SELECT fw_path FROM {FILES})
        UNION ALL
        SELECT q.rowid, e.path, e.line, NULL, q.record_key
        FROM quarantine AS q JOIN quarantine_exports AS e ON e.content_hash = q.content_hash
        WHERE q.resolved_at IS NULL AND q.batch_id <> $batch_id AND e.path IN (SELECT fw_path FROM {FILES})"""


def _same_record(new_key: str) -> str:
    """At a place: a quarantined record with an id only matches a record with the same id."""
    return f"(p.fw_key IS NULL OR starts_with(p.fw_key, 'h-') OR p.fw_key = {new_key})"


def _matches_sql(kinds: list[str], settled: list[str]) -> str:
    parts = []
    for name in kinds:
        k = KINDS[name]
        key = f't."{k.key}"'
        parts.append(f"""
            SELECT q.rowid AS fw_q, 'accepted' AS fw_how FROM quarantine AS q
            JOIN "{k.table}" AS t ON t."{k.key}" = q.record_key
            WHERE t.batch_id = $batch_id AND q.resolved_at IS NULL AND q.batch_id <> $batch_id AND q.kind = '{name}'""")
        parts.append(f"""
            SELECT p.fw_q, 'accepted' FROM fw_places AS p JOIN "{k.table}" AS t
              ON t.source_file = p.fw_path AND t.source_line = p.fw_line AND t.source_item IS NOT DISTINCT FROM p.fw_item
            WHERE t.batch_id = $batch_id AND {_same_record(key)}""")
        if name in settled:  # accepted duplicates are not stored again: the settle table knows where they were
            parts.append(f"""
            SELECT p.fw_q, 'accepted' FROM fw_places AS p JOIN fw_settle_{name} AS s
              ON s.fw_line = p.fw_line AND s.fw_item IS NOT DISTINCT FROM p.fw_item
            JOIN {FILES} AS f ON f.fw_file = s.fw_file AND f.fw_path = p.fw_path
            WHERE s.fw_outcome = 'duplicate' AND {_same_record('s.fw_key')}""")
    parts.append(f"""
            SELECT p.fw_q, 'read again' FROM fw_places AS p JOIN quarantine AS n
              ON n.source_file = p.fw_path AND n.source_line = p.fw_line AND n.source_item IS NOT DISTINCT FROM p.fw_item
            WHERE n.batch_id = $batch_id AND {_same_record('n.record_key')}""")
    parts.append("""
            SELECT q.rowid, 'read again' FROM quarantine AS q JOIN quarantine AS n ON n.content_hash = q.content_hash
            WHERE n.batch_id = $batch_id AND q.batch_id <> $batch_id AND q.resolved_at IS NULL""")
    # 'accepted' sorts before 'read again': a record both accepted and read again somewhere counts as accepted
    return ("CREATE OR REPLACE TEMPORARY TABLE fw_resolved AS SELECT fw_q, min(fw_how) AS fw_how FROM ("
            + " UNION ALL ".join(parts) + ") GROUP BY fw_q")


_WAITING = statement("quarantine:waiting", "SELECT count(*) AS n FROM quarantine WHERE resolved_at IS NULL "
                     "AND batch_id <> $batch_id", "records of earlier batches still quarantined")
_RESOLVED_COUNTS = statement("quarantine:resolved_counts", "SELECT fw_how, count(*) AS n FROM fw_resolved "
                             "GROUP BY fw_how", "how this batch resolved them")
_MARK_RESOLVED = statement("quarantine:mark_resolved", "UPDATE quarantine SET resolved_at = $now, resolved_by = "
                           "$batch_id, resolution = r.fw_how FROM fw_resolved AS r WHERE quarantine.rowid = r.fw_q",
                           "each resolved record marked with the batch that resolved it")


def mark_resolved(con: duckdb.DuckDBPyConnection, batch_id: str, now, kinds: list[str],
                  settled: list[str]) -> dict[str, int]:
    """Mark the quarantined records of earlier batches that this batch resolved (see the module docstring).
    `settled`: the kinds whose settle table exists in this batch. Returns {resolution: count}."""
    if not executor.execute(con, _WAITING, {"batch_id": batch_id})[0]["n"]:
        return {}
    con.execute(_places_sql(), {"batch_id": batch_id})
    con.execute(_matches_sql(kinds, settled), {"batch_id": batch_id})
    counts = {r["fw_how"]: r["n"] for r in executor.execute(con, _RESOLVED_COUNTS, {})}
    if counts:
        executor.execute(con, _MARK_RESOLVED, {"now": now, "batch_id": batch_id})
    return counts


def export_statements(batch: str | None, kind: str | None, include_resolved: bool) -> list[Statement]:
    """The export's statements: each quarantined record once (by content hash: its latest occurrence, and how
    often it was seen), which record went to which export line, and how many privacy withheld."""
    conditions = ["(raw IS NOT NULL OR raw_bytes IS NOT NULL)"]
    if batch:
        conditions.append("batch_id = $batch")
    if kind:
        conditions.append("kind = $kind")
    if not include_resolved:
        conditions.append("resolved_at IS NULL")
    select = f"""
        SELECT kind, source_file, source_line, source_item, raw, raw_bytes, reasons, batch_id, record_key,
               content_hash, occurrences, resolution
        FROM (SELECT *, count(*) OVER (PARTITION BY content_hash) AS occurrences,
                     row_number() OVER (PARTITION BY content_hash ORDER BY quarantined_at DESC, batch_id DESC,
                                        source_file, source_line, source_item) AS fw_rank
              FROM quarantine WHERE {' AND '.join(conditions)})
        WHERE fw_rank = 1
        ORDER BY source_file, source_line, source_item"""
    return [
        Statement("export_records", parse(select), ("batch",) * bool(batch) + ("kind",) * bool(kind),
                  "each quarantined record once (ingest.export.batch, .kind, .include_resolved)"),
        Statement("export_forget", parse("DELETE FROM quarantine_exports WHERE path = $path"), ("path",),
                  "the lines an earlier export to the same file recorded"),
        Statement("export_lines", parse(f"INSERT INTO quarantine_exports SELECT $path, line, content_hash, $now "
                                        f"FROM {arrow_scan.TABLE}"), ("path", "now"),
                  "which record went to which line of the export", "when records were exported"),
        Statement("export_withheld", parse("SELECT count(*) AS n FROM quarantine WHERE resolved_at IS NULL AND "
                                           "raw IS NULL AND raw_bytes IS NULL AND source_line IS NOT NULL"), (),
                  "unresolved quarantined records whose text privacy withheld: they cannot be exported"),
    ]


def export_quarantine(con: duckdb.DuckDBPyConnection, path: Path, shown: str, now, batch: str | None = None,
                      kind: str | None = None, include_resolved: bool = False) -> dict:
    """Write the export and its reasons file, and record which record went to which line (`shown`: the path as
    a later `ingest path=` will name it), so that a fixed line resolves its record. Run it in a transaction."""
    select, forget, lines_st, withheld = export_statements(batch, kind, include_resolved)
    rows = [tuple(r.values()) for r in executor.execute(con, select, {"batch": batch, "kind": kind})]
    path.parent.mkdir(parents=True, exist_ok=True)
    reasons_path = quarantine_reasons_path(path)
    tmp, tmp_reasons = path.with_name(path.name + ".tmp"), reasons_path.with_name(reasons_path.name + ".tmp")
    with open(tmp, "wb") as out, open(tmp_reasons, "w", encoding="utf-8") as why:
        for line, (kind_, source_file, source_line, source_item, raw, raw_bytes, reasons, batch_id, key, _, seen,
                   resolution) in enumerate(rows, 1):
            data = bytes(raw_bytes) if raw_bytes is not None else raw.encode("utf-8")
            out.write(data.replace(b"\n", b" ") + b"\n")
            why.write(json.dumps({"line": line, "kind": kind_, "source_file": source_file,
                                  "source_line": source_line, "source_item": source_item, "batch_id": batch_id,
                                  "record_key": key, "reasons": list(reasons), "times_quarantined": seen,
                                  "not_valid_utf8": raw_bytes is not None, "resolution": resolution},
                                 ensure_ascii=False) + "\n")
    executor.execute(con, forget, {"path": shown})
    if rows:
        lines = pa.table({"line": pa.array(range(1, len(rows) + 1), pa.int64()),
                          "content_hash": pa.array([r[9] for r in rows], pa.string())})
        executor.execute_over(con, lines_st, {"path": shown, "now": now}, lines)
    os.replace(tmp, path)
    os.replace(tmp_reasons, reasons_path)
    return {"path": str(path), "reasons_path": str(reasons_path), "records": len(rows),
            "withheld": executor.execute(con, withheld, {})[0]["n"]}
