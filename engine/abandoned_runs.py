"""Runs whose process is gone: a run is inserted as `running` and set to `ok` when it finishes; a process that
is killed (SIGKILL, OOM, a closed laptop) never gets there. Each run records its owner process (pid, host, start
time, through the column defaults of migration 20), and every writable open of the store marks the runs of dead
owners `aborted`, with the time that was found out."""
from __future__ import annotations

from typing import TYPE_CHECKING

from engine import process_identity
from engine.process_identity import ProcessIdentity
from engine.provenance import utc_now

if TYPE_CHECKING:
    from engine.store import Store


def stamp_owner(store: "Store") -> None:
    """Make this process the owner of every run row inserted through this connection."""
    me = process_identity.current()
    # SET VARIABLE takes no parameters; the values are our own pid (an int), host and start time, quoted
    store.con.execute(f"SET VARIABLE flywheel_owner_pid = {int(me.pid)}")
    for name, value in (("flywheel_owner_host", me.host), ("flywheel_owner_started", me.started)):
        text = "NULL" if value is None else "'" + value.replace("'", "''") + "'"
        store.con.execute(f"SET VARIABLE {name} = {text}::VARCHAR")


def mark_abandoned(store: "Store") -> list[dict]:
    """Mark `aborted` every running run whose owner process is gone; returns them (and says so)."""
    rows = store.con.execute("SELECT run_id, command, model_name, owner_pid, owner_host, owner_started, started_at "
                             "FROM runs WHERE status = 'running' AND owner_pid IS NOT NULL").fetchall()
    gone = [r for r in rows if process_identity.is_alive(ProcessIdentity(r[3], r[4], r[5])) is False]
    if not gone:
        return []
    from engine.console import err_console

    found_at = utc_now()
    with store.transaction() as con:
        for run_id, *_ in gone:
            con.execute("UPDATE runs SET status = 'aborted', aborted_at = ? WHERE run_id = ? AND status = 'running'",
                        [found_at, run_id])
    out = []
    for run_id, command, model, pid, host, _, started in gone:
        err_console.print(f"run {run_id} ({command} of {model}, started {started:%Y-%m-%d %H:%M:%S}) was left "
                          f"running by process {pid} on {host}, which is gone: marked aborted", highlight=False)
        out.append({"run_id": run_id, "pid": pid, "host": host})
    return out


def close_own_runs(store: "Store", interrupted: bool) -> None:
    """The command failed (or was interrupted) while runs of this process were still `running`: close them
    now rather than leaving them to the next command. Best effort: the store itself may be what failed."""
    me = process_identity.current()
    try:
        if interrupted:
            store.con.execute("UPDATE runs SET status = 'aborted', aborted_at = ? WHERE status = 'running' "
                              "AND owner_pid = ? AND owner_host = ?", [utc_now(), me.pid, me.host])
        else:
            store.con.execute("UPDATE runs SET status = 'failed', finished_at = ? WHERE status = 'running' "
                              "AND owner_pid = ? AND owner_host = ?", [utc_now(), me.pid, me.host])
    except Exception:  # noqa: BLE001 - the original error is what the user must see
        pass
