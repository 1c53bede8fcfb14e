"""Correcting production data: the ingest batches in the store, and retracting one.

Retracting a batch removes, in one transaction, every trace, feedback and event record it stored, and the live
(online) scores of traces that are gone with it; marks its quarantined records resolved ("retracted") and puts
back in the quarantine loop the records it had resolved; records the retraction; and marks as stale every
monitor run that read the removed records: a run that started after the batch was ingested and whose periods
overlap the removed records' timestamps. `flywheel monitor` lists stale runs in its result (`stale_runs`).
"""
from __future__ import annotations

import json
from datetime import datetime

import duckdb

from engine.errors import UserError
from engine.ingest.records import KINDS


def list_batches(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every ingest batch, oldest first: its files, times, counts at ingest, records stored now, retraction."""
    rows = con.execute("""
        SELECT b.batch_id, min(b.started_at), max(b.finished_at),
               list(b.source_file ORDER BY b.source_file), list(b.format ORDER BY b.source_file),
               sum(b.n_read), sum(b.n_accepted), sum(b.n_inserted), sum(b.n_duplicates), sum(b.n_quarantined),
               any_value(r.retracted_at), any_value(CAST(r.removed AS VARCHAR))
        FROM ingest_batches AS b LEFT JOIN ingest_retractions AS r ON r.batch_id = b.batch_id
        GROUP BY b.batch_id ORDER BY min(b.started_at), b.batch_id""").fetchall()
    stored: dict[str, dict[str, int]] = {}
    for kind in KINDS.values():
        for batch_id, n in con.execute(f'SELECT batch_id, count(*) FROM "{kind.table}" GROUP BY batch_id').fetchall():
            stored.setdefault(batch_id, {})[kind.name] = n
    open_quarantine = dict(con.execute("SELECT batch_id, count(*) FROM quarantine WHERE resolved_at IS NULL "
                                       "GROUP BY batch_id").fetchall())
    out = []
    for (batch_id, started, finished, files, formats, read, accepted, inserted, dups, quarantined, retracted_at,
         removed) in rows:
        out.append({
            "batch_id": batch_id, "started_at": started.isoformat(), "finished_at": finished.isoformat(),
            "sources": [{"path": f, "format": fmt} for f, fmt in zip(files, formats)],
            "counts": {"read": int(read), "accepted": int(accepted), "inserted": int(inserted),
                       "duplicates": int(dups), "quarantined": int(quarantined)},
            "stored_now": {k: stored.get(batch_id, {}).get(k, 0) for k in KINDS},
            "quarantine_open": int(open_quarantine.get(batch_id, 0)),
            "retracted_at": retracted_at.isoformat() if retracted_at else None,
            "removed": json.loads(removed) if removed else None,
        })
    return out


def _known(con: duckdb.DuckDBPyConnection) -> str:
    rows = con.execute("SELECT DISTINCT batch_id, started_at FROM ingest_batches ORDER BY started_at DESC "
                       "LIMIT 10").fetchall()
    return ", ".join(r[0] for r in rows) or "none"


def retract(con: duckdb.DuckDBPyConnection, batch_id: str, now: datetime) -> dict:
    """Remove one batch's records (see the module docstring). Run it inside one transaction."""
    found = con.execute("SELECT max(finished_at) FROM ingest_batches WHERE batch_id = ?", [batch_id]).fetchall()[0][0]
    if found is None:
        raise UserError(f"no ingest batch '{batch_id}' in the store; the latest: {_known(con)} "
                        f"(`flywheel store batches` lists them all)")
    done = con.execute("SELECT retracted_at FROM ingest_retractions WHERE batch_id = ?", [batch_id]).fetchall()
    if done:
        return {"batch_id": batch_id, "already_retracted_at": done[0][0].isoformat(), "removed": None,
                "data_from": None, "data_to": None, "stale_monitor_runs": []}
    spans = []
    removed: dict[str, int] = {}
    for kind in KINDS.values():
        n, first, last = con.execute(f'SELECT count(*), min("timestamp"), max("timestamp") FROM "{kind.table}" '
                                     f"WHERE batch_id = ?", [batch_id]).fetchall()[0]
        removed[kind.name] = n
        if n:
            spans.append((first, last))
    data_from = min((s[0] for s in spans), default=None)
    data_to = max((s[1] for s in spans), default=None)
    # Live scores belong to a trace: those of traces that leave the store with this batch go too.
    con.execute("CREATE OR REPLACE TEMPORARY TABLE fw_gone AS SELECT DISTINCT trace_id FROM traces WHERE batch_id = ?",
                [batch_id])
    for kind in KINDS.values():
        con.execute(f'DELETE FROM "{kind.table}" WHERE batch_id = ?', [batch_id])
    removed["live_scores"] = con.execute(
        "SELECT count(*) FROM live_scores WHERE trace_id IN (SELECT trace_id FROM fw_gone) "
        "AND trace_id NOT IN (SELECT trace_id FROM traces)").fetchall()[0][0]
    con.execute("DELETE FROM live_scores WHERE trace_id IN (SELECT trace_id FROM fw_gone) "
                "AND trace_id NOT IN (SELECT trace_id FROM traces)")
    # Tool-call steps (engine/agents/otel_steps.py) of this batch, and of the traces that left the store with it
    gone_steps = "batch_id = ? OR (trace_id IN (SELECT trace_id FROM fw_gone) AND trace_id NOT IN (SELECT trace_id FROM traces))"
    removed["tool_steps"] = con.execute(f"SELECT count(*) FROM trace_tool_steps WHERE {gone_steps}",
                                        [batch_id]).fetchall()[0][0]
    con.execute(f"DELETE FROM trace_tool_steps WHERE {gone_steps}", [batch_id])
    con.execute(f"DELETE FROM trace_conversations WHERE {gone_steps}", [batch_id])  # their earlier turns too
    removed["quarantine"] = con.execute("SELECT count(*) FROM quarantine WHERE batch_id = ? AND resolved_at IS NULL",
                                        [batch_id]).fetchall()[0][0]
    con.execute("UPDATE quarantine SET resolved_at = ?, resolved_by = ?, resolution = 'retracted' "
                "WHERE batch_id = ? AND resolved_at IS NULL", [now, batch_id, batch_id])
    removed["quarantine_reopened"] = con.execute(
        "SELECT count(*) FROM quarantine WHERE resolved_by = ? AND batch_id <> ?", [batch_id, batch_id]).fetchall()[0][0]
    con.execute("UPDATE quarantine SET resolved_at = NULL, resolved_by = NULL, resolution = NULL "
                "WHERE resolved_by = ? AND batch_id <> ?", [batch_id, batch_id])
    stale = _mark_stale(con, batch_id, found, data_from, data_to, now)
    con.execute("INSERT INTO ingest_retractions VALUES (?, ?, ?, ?, ?)",
                [batch_id, now, json.dumps(removed), data_from, data_to])
    return {"batch_id": batch_id, "already_retracted_at": None, "removed": removed,
            "data_from": data_from.isoformat() if data_from else None,
            "data_to": data_to.isoformat() if data_to else None, "stale_monitor_runs": stale}


def _mark_stale(con: duckdb.DuckDBPyConnection, batch_id: str, ingested: datetime, data_from, data_to,
                now: datetime) -> list[str]:
    """Monitor runs that read the removed records: started after the ingest, periods overlapping their span."""
    if data_from is None:
        return []
    runs = con.execute("""
        SELECT run_id FROM (
            SELECT run_id, started_at,
                   least(TRY_CAST(result->>'$.periods.first' AS TIMESTAMPTZ),
                         TRY_CAST(result->>'$.periods.ref_start' AS TIMESTAMPTZ),
                         TRY_CAST(result->>'$.periods.cur_start' AS TIMESTAMPTZ)) AS p_from,
                   greatest(TRY_CAST(result->>'$.periods.last' AS TIMESTAMPTZ),
                            TRY_CAST(result->>'$.periods.ref_end' AS TIMESTAMPTZ),
                            TRY_CAST(result->>'$.periods.cur_end' AS TIMESTAMPTZ)) AS p_to
            FROM monitor_runs)
        WHERE started_at >= ? AND p_from IS NOT NULL AND p_from <= ? AND p_to >= ?
        ORDER BY started_at""", [ingested, data_to, data_from]).fetchall()
    ids = [r[0] for r in runs]
    for run_id in ids:
        con.execute("INSERT INTO monitor_stale VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [run_id, batch_id, data_from, data_to, now])
    return ids


def stale_monitor_runs(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Stored monitor runs whose results are stale: they read records of a batch retracted since."""
    rows = con.execute("""
        SELECT s.run_id, m.started_at, list(s.batch_id ORDER BY s.batch_id), min(s.data_from), max(s.data_to),
               max(s.marked_at)
        FROM monitor_stale AS s JOIN monitor_runs AS m ON m.run_id = s.run_id
        GROUP BY s.run_id, m.started_at ORDER BY m.started_at""").fetchall()
    return [{"run_id": r[0], "started_at": r[1].isoformat(), "retracted_batches": list(r[2]),
             "data_from": r[3].isoformat() if r[3] else None, "data_to": r[4].isoformat() if r[4] else None,
             "marked_at": r[5].isoformat()} for r in rows]
