"""Correcting production data: the ingest batches in the store, and retracting one.

Retracting a batch removes, in one transaction, every trace, feedback and event record it stored, and the live
(online) scores of traces that are gone with it; marks its quarantined records resolved ("retracted") and puts
back in the quarantine loop the records it had resolved; records the retraction; and marks as stale every
monitor run that read the removed records: a run that started after the batch was ingested and whose periods
overlap the removed records' timestamps. `flywheel monitor` lists stale runs in its result (`stale_runs`).

Both are compiled plans (`flywheel compile store batches`, `flywheel compile store retract B`): every statement is
a named plan statement with the batch id and times as bound parameters.
"""
from __future__ import annotations

import json
from datetime import datetime

from sqlglot import exp

from engine.errors import UserError
from engine.executor import execute
from engine.ingest.records import KINDS
from engine.sql import Plan, Statement, parse, statement

# --- store batches ---------------------------------------------------------------------------------------------
BATCHES = statement("batches", """
    SELECT b.batch_id, min(b.started_at) AS started_at, max(b.finished_at) AS finished_at,
           list(b.source_file ORDER BY b.source_file) AS files, list(b.format ORDER BY b.source_file) AS formats,
           sum(b.n_read) AS n_read, sum(b.n_accepted) AS n_accepted, sum(b.n_inserted) AS n_inserted,
           sum(b.n_duplicates) AS n_duplicates, sum(b.n_quarantined) AS n_quarantined,
           any_value(r.retracted_at) AS retracted_at, any_value(CAST(r.removed AS VARCHAR)) AS removed
    FROM ingest_batches AS b LEFT JOIN ingest_retractions AS r ON r.batch_id = b.batch_id
    GROUP BY b.batch_id ORDER BY min(b.started_at), b.batch_id""", "every ingest batch: files, times, counts")


def _stored_now() -> Statement:
    """Records stored now per batch and kind, one union over the kinds' tables."""
    parts = [exp.select("batch_id", exp.alias_(exp.Literal.string(k.name), "kind"),
                        exp.alias_(exp.Count(this=exp.Star()), "n")).from_(exp.to_table(k.table)).group_by("batch_id")
             for k in KINDS.values()]
    union = parts[0]
    for p in parts[1:]:
        union = exp.union(union, p, distinct=False)
    return Statement("stored_now", union, (), "records each batch has in the store now, per kind")


STORED_NOW = _stored_now()
OPEN_QUARANTINE = statement("quarantine_open", "SELECT batch_id, count(*) AS n FROM quarantine "
                            "WHERE resolved_at IS NULL GROUP BY batch_id", "open quarantined records per batch")
STALE_RUNS = statement("stale_monitor_runs", """
    SELECT s.run_id, m.started_at, list(s.batch_id ORDER BY s.batch_id) AS batches, min(s.data_from) AS data_from,
           max(s.data_to) AS data_to, max(s.marked_at) AS marked_at
    FROM monitor_stale AS s JOIN monitor_runs AS m ON m.run_id = s.run_id
    GROUP BY s.run_id, m.started_at ORDER BY m.started_at""", "monitor runs that read records retracted since")

# --- store retract BATCH -----------------------------------------------------------------------------------------
FOUND = statement("retract:batch", "SELECT max(finished_at) AS finished_at FROM ingest_batches "
                  "WHERE batch_id = $batch_id", "the batch, when it was ingested")
LATEST = statement("retract:latest", "SELECT DISTINCT batch_id, started_at FROM ingest_batches "
                   "ORDER BY started_at DESC LIMIT 10", "the latest batches, to name them",
                   "when the batch is unknown")
DONE = statement("retract:already", "SELECT retracted_at FROM ingest_retractions WHERE batch_id = $batch_id",
                 "an earlier retraction of the batch (then nothing else runs)")
_NEW = "when the batch was not retracted before"


def _span() -> Statement:
    parts = [exp.select(exp.alias_(exp.Literal.string(k.name), "kind"), exp.alias_(exp.Count(this=exp.Star()), "n"),
                        exp.alias_(exp.Min(this=exp.column("timestamp")), "first"),
                        exp.alias_(exp.Max(this=exp.column("timestamp")), "last"))
             .from_(exp.to_table(k.table)).where(parse("batch_id = $batch_id")) for k in KINDS.values()]
    union = parts[0]
    for p in parts[1:]:
        union = exp.union(union, p, distinct=False)
    return Statement("retract:span", union, ("batch_id",), "the batch's records per kind and their time span", _NEW)


def _deletes() -> tuple[Statement, ...]:
    return tuple(Statement(f"retract:delete:{k.name}", exp.delete(exp.to_table(k.table), parse("batch_id = $batch_id")),
                           ("batch_id",), f"the batch's {k.name} records", _NEW) for k in KINDS.values())


# Live scores and tool-call steps (engine/agents/otel_steps.py) belong to a trace: those of traces that leave the
# store with this batch go too.
_GONE_TRACE = "trace_id IN (SELECT trace_id FROM fw_gone) AND trace_id NOT IN (SELECT trace_id FROM traces)"
_GONE_STEP = f"batch_id = $batch_id OR ({_GONE_TRACE})"
RETRACT_STEPS = (
    statement("retract:gone", "CREATE OR REPLACE TEMPORARY TABLE fw_gone AS SELECT DISTINCT trace_id FROM traces "
              "WHERE batch_id = $batch_id", "the batch's traces", _NEW),
    *_deletes(),
    statement("retract:count:live_scores", f"SELECT count(*) AS n FROM live_scores WHERE {_GONE_TRACE}",
              "live scores of traces gone with the batch", _NEW),
    statement("retract:delete:live_scores", f"DELETE FROM live_scores WHERE {_GONE_TRACE}", "", _NEW),
    statement("retract:count:tool_steps", f"SELECT count(*) AS n FROM trace_tool_steps WHERE {_GONE_STEP}",
              "tool-call steps of the batch and of its traces", _NEW),
    statement("retract:delete:tool_steps", f"DELETE FROM trace_tool_steps WHERE {_GONE_STEP}", "", _NEW),
    statement("retract:delete:conversations", f"DELETE FROM trace_conversations WHERE {_GONE_STEP}",
              "their earlier turns too", _NEW),
    statement("retract:count:quarantine", "SELECT count(*) AS n FROM quarantine WHERE batch_id = $batch_id "
              "AND resolved_at IS NULL", "the batch's open quarantined records", _NEW),
    statement("retract:close_quarantine", "UPDATE quarantine SET resolved_at = $now, resolved_by = $batch_id, "
              "resolution = 'retracted' WHERE batch_id = $batch_id AND resolved_at IS NULL", "closed as retracted",
              _NEW),
    statement("retract:count:reopened", "SELECT count(*) AS n FROM quarantine WHERE resolved_by = $batch_id "
              "AND batch_id <> $batch_id", "records the batch had resolved", _NEW),
    statement("retract:reopen", "UPDATE quarantine SET resolved_at = NULL, resolved_by = NULL, resolution = NULL "
              "WHERE resolved_by = $batch_id AND batch_id <> $batch_id", "back in the quarantine loop", _NEW),
    statement("retract:stale_runs", """
        SELECT run_id FROM (
            SELECT run_id, started_at,
                   least(TRY_CAST(result->>'$.periods.first' AS TIMESTAMPTZ),
                         TRY_CAST(result->>'$.periods.ref_start' AS TIMESTAMPTZ),
                         TRY_CAST(result->>'$.periods.cur_start' AS TIMESTAMPTZ)) AS p_from,
                   greatest(TRY_CAST(result->>'$.periods.last' AS TIMESTAMPTZ),
                            TRY_CAST(result->>'$.periods.ref_end' AS TIMESTAMPTZ),
                            TRY_CAST(result->>'$.periods.cur_end' AS TIMESTAMPTZ)) AS p_to
            FROM monitor_runs)
        WHERE started_at >= $ingested AND p_from IS NOT NULL AND p_from <= $data_to AND p_to >= $data_from
        ORDER BY started_at""",
              "monitor runs that started after the ingest and whose periods overlap the removed records",
              "when the batch had records"),
    statement("retract:mark_stale", "INSERT INTO monitor_stale SELECT unnest($run_ids), $batch_id, $data_from, "
              "$data_to, $now ON CONFLICT DO NOTHING", "marked stale", "when such monitor runs exist"),
    statement("retract:record", "INSERT INTO ingest_retractions VALUES ($batch_id, $now, $removed, $data_from, "
              "$data_to)", "the retraction", _NEW),
)
SPAN = _span()


def compile_plan(args: list[str]) -> Plan:
    """`store batches` or `store retract BATCH` (without a subcommand: both)."""
    batches = (BATCHES, STORED_NOW, OPEN_QUARANTINE, STALE_RUNS)
    retract_ = (FOUND, LATEST, DONE, SPAN, *RETRACT_STEPS)
    if args[:1] == ["batches"]:
        return Plan("store", batches)
    if args[:1] == ["retract"]:
        return Plan("store", retract_)
    return Plan("store", batches + retract_)


def _n(con, st: Statement, params: dict) -> int:
    return int(execute(con, st, params)[0]["n"])


def list_batches(con) -> list[dict]:
    """Every ingest batch, oldest first: its files, times, counts at ingest, records stored now, retraction."""
    stored: dict[str, dict[str, int]] = {}
    for r in execute(con, STORED_NOW, {}):
        stored.setdefault(r["batch_id"], {})[r["kind"]] = r["n"]
    open_quarantine = {r["batch_id"]: r["n"] for r in execute(con, OPEN_QUARANTINE, {})}
    out = []
    for r in execute(con, BATCHES, {}):
        batch_id = r["batch_id"]
        out.append({
            "batch_id": batch_id, "started_at": r["started_at"].isoformat(), "finished_at": r["finished_at"].isoformat(),
            "sources": [{"path": f, "format": fmt} for f, fmt in zip(r["files"], r["formats"])],
            "counts": {"read": int(r["n_read"]), "accepted": int(r["n_accepted"]), "inserted": int(r["n_inserted"]),
                       "duplicates": int(r["n_duplicates"]), "quarantined": int(r["n_quarantined"])},
            "stored_now": {k: stored.get(batch_id, {}).get(k, 0) for k in KINDS},
            "quarantine_open": int(open_quarantine.get(batch_id, 0)),
            "retracted_at": r["retracted_at"].isoformat() if r["retracted_at"] else None,
            "removed": json.loads(r["removed"]) if r["removed"] else None,
        })
    return out


def retract(con, batch_id: str, now: datetime) -> dict:
    """Remove one batch's records (see the module docstring). Run it inside one transaction."""
    found = execute(con, FOUND, {"batch_id": batch_id})[0]["finished_at"]
    if found is None:
        known = ", ".join(r["batch_id"] for r in execute(con, LATEST, {})) or "none"
        raise UserError(f"no ingest batch '{batch_id}' in the store; the latest: {known} "
                        f"(`flywheel store batches` lists them all)")
    done = execute(con, DONE, {"batch_id": batch_id})
    if done:
        return {"batch_id": batch_id, "already_retracted_at": done[0]["retracted_at"].isoformat(), "removed": None,
                "data_from": None, "data_to": None, "stale_monitor_runs": []}
    spans = [r for r in execute(con, SPAN, {"batch_id": batch_id}) if r["n"]]
    removed: dict[str, int] = {k: 0 for k in KINDS}
    removed.update({r["kind"]: r["n"] for r in spans})
    data_from = min((r["first"] for r in spans), default=None)
    data_to = max((r["last"] for r in spans), default=None)
    params = {"batch_id": batch_id, "now": now, "data_from": data_from, "data_to": data_to, "ingested": found}
    counted = {"retract:count:live_scores": "live_scores", "retract:count:tool_steps": "tool_steps",
               "retract:count:quarantine": "quarantine", "retract:count:reopened": "quarantine_reopened"}
    stale: list[str] = []
    for st in RETRACT_STEPS:
        if st.name == "retract:stale_runs":
            stale = [r["run_id"] for r in execute(con, st, params)] if data_from is not None else []
        elif st.name == "retract:mark_stale":
            if stale:
                execute(con, st, {**params, "run_ids": stale})
        elif st.name == "retract:record":
            execute(con, st, {**params, "removed": json.dumps(removed)})
        elif st.name in counted:
            removed[counted[st.name]] = _n(con, st, params)
        else:
            execute(con, st, params)
    return {"batch_id": batch_id, "already_retracted_at": None, "removed": removed,
            "data_from": data_from.isoformat() if data_from else None,
            "data_to": data_to.isoformat() if data_to else None, "stale_monitor_runs": stale}


def stale_monitor_runs(con) -> list[dict]:
    """Stored monitor runs whose results are stale: they read records of a batch retracted since."""
    return [{"run_id": r["run_id"], "started_at": r["started_at"].isoformat(), "retracted_batches": list(r["batches"]),
             "data_from": r["data_from"].isoformat() if r["data_from"] else None,
             "data_to": r["data_to"].isoformat() if r["data_to"] else None,
             "marked_at": r["marked_at"].isoformat()} for r in execute(con, STALE_RUNS, {})]
