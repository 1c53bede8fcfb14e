"""`flywheel store batches | retract BATCH`: the ingest batches in the store, and removing a bad one.

    flywheel store batches [out=batches.json]     each batch: files, time, counts, records stored now, retraction
    flywheel store retract BATCH [out=r.json]     remove that batch's records in one transaction (see
                                                  engine/ingest/batches.py); monitor runs that read them are stale

The correct-and-reingest loop: `ingest` of corrected records says which batch holds the stored versions; retract
it, then ingest the corrected data again. Exit codes: 0 done (retracting a batch twice is a no-op that says so),
2 unknown batch or bad arguments.
"""
from __future__ import annotations

from rich.table import Table

from engine.commands.registry import Outcome, command
from engine.config import Composed
from engine.console import console
from engine.errors import UserError
from engine.evaluation import store_path
from engine.ingest.batches import compile_plan, list_batches, retract, stale_monitor_runs
from engine.journal import running_plan
from engine.sql import Plan
from engine.provenance import utc_now
from engine.store import Store

USAGE = "usage: flywheel store batches | flywheel store retract BATCH_ID"


def _batches(store: Store) -> Outcome:
    batches = list_batches(store.con)
    t = Table(title="Ingest batches", title_justify="left")
    for c in ("batch", "ingested", "files", "read", "inserted", "duplicates", "quarantined", "stored now", "retracted"):
        t.add_column(c, overflow="fold")
    for b in batches:
        c = b["counts"]
        files = ", ".join(s["path"] for s in b["sources"][:3]) + (f" (+{len(b['sources']) - 3})"
                                                                 if len(b["sources"]) > 3 else "")
        stored = ", ".join(f"{n:,} {k}" for k, n in b["stored_now"].items() if n) or "-"
        t.add_row(b["batch_id"], b["finished_at"][:19], files, f"{c['read']:,}", f"{c['inserted']:,}",
                  f"{c['duplicates']:,}", f"{c['quarantined']:,}", stored, (b["retracted_at"] or "")[:19])
    console.print(t)
    if not batches:
        console.print("no ingest batch in the store yet: `flywheel ingest path=...`")
    stale = stale_monitor_runs(store.con)
    if stale:
        console.print(f"{len(stale)} monitor run(s) are stale (they read records retracted since): "
                      f"{', '.join(s['run_id'] for s in stale[:5])}{' ...' if len(stale) > 5 else ''}",
                      highlight=False)
    return Outcome(0, {"command": "store_batches", "store": str(store.path), "batches": batches,
                       "stale_monitor_runs": stale}, "store_batches_result")


def _retract(store: Store, batch_id: str) -> Outcome:
    with store.transaction() as con:
        result = retract(con, batch_id, utc_now())
    result = {"command": "store_retract", "store": str(store.path), **result}
    if result["already_retracted_at"]:
        console.print(f"batch {batch_id} was already retracted at {result['already_retracted_at'][:19]}: "
                      f"nothing to do", highlight=False)
        return Outcome(0, result, "store_retract_result")
    r = result["removed"]
    console.print(f"retracted batch {batch_id}: removed {r['traces']:,} trace(s), {r['feedback']:,} feedback, "
                  f"{r['events']:,} event(s), {r['live_scores']:,} live score(s), {r.get('tool_steps', 0):,} tool step(s); {r['quarantine']:,} of its "
                  f"quarantined record(s) closed, {r['quarantine_reopened']:,} it had resolved back in quarantine",
                  highlight=False)
    if result["stale_monitor_runs"]:
        console.print(f"{len(result['stale_monitor_runs'])} monitor run(s) read these records and are now stale: "
                      f"{', '.join(result['stale_monitor_runs'])}; run `flywheel monitor` again", highlight=False)
    console.print("ingest the corrected data again with `flywheel ingest path=...`", highlight=False)
    return Outcome(0, result, "store_retract_result")


def compile_sql(composed: Composed) -> Plan:
    return compile_plan(list(composed.args))


@command("store", "ingest batches in the store (`store batches`) and removing a bad one (`store retract BATCH`)",
         positional=True, compile=compile_sql)
def store_command(composed: Composed) -> Outcome:
    args = list(composed.args)
    running_plan(compile_plan(args))
    if args == ["batches"]:
        with Store.open(store_path(composed.config, composed.project)) as store:
            return _batches(store)
    if len(args) == 2 and args[0] == "retract":
        with Store.open(store_path(composed.config, composed.project)) as store:
            return _retract(store, args[1])
    raise UserError(USAGE)
