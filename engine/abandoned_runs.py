"""Runs whose process is gone: a run is inserted as `running` and set to `ok` when it finishes; a process that
is killed (SIGKILL, OOM, a closed laptop) never gets there. Each run records its owner process (pid, host, start
time, through the column defaults of migration 20), and every writable open of the store marks the runs of dead
owners `aborted`, with the time that was found out."""
from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from engine import process_identity
from engine.executor import execute
from engine.process_identity import ProcessIdentity
from engine.provenance import utc_now
from engine.sql import Statement, literal, statement

if TYPE_CHECKING:
    from engine.store import Store


_RUNNING = statement("runs:running_owned", "SELECT run_id, command, model_name, owner_pid, owner_host, "
                     "owner_started, started_at FROM runs WHERE status = 'running' AND owner_pid IS NOT NULL",
                     "the running runs and the processes that own them")
_ABORT_ONE = statement("runs:abort_abandoned", "UPDATE runs SET status = 'aborted', aborted_at = $found_at "
                       "WHERE run_id = $run_id AND status = 'running'", "a run whose owner process is gone")
_CLOSE_OWN = {
    True: statement("runs:abort_own", "UPDATE runs SET status = 'aborted', aborted_at = $at WHERE status = "
                    "'running' AND owner_pid = $pid AND owner_host = $host", "this process's runs, interrupted"),
    False: statement("runs:fail_own", "UPDATE runs SET status = 'failed', finished_at = $at WHERE status = "
                     "'running' AND owner_pid = $pid AND owner_host = $host", "this process's runs, failed"),
}


def _set_variable(name: str, value: exp.Expression) -> Statement:
    # SET VARIABLE takes no parameters: the value is a literal (our own pid, host and start time)
    return Statement(f"owner:{name}", exp.Set(expressions=[exp.SetItem(
        this=exp.EQ(this=exp.column(name), expression=value), kind="VARIABLE")]))


def stamp_owner(store: "Store") -> None:
    """Make this process the owner of every run row inserted through this connection."""
    me = process_identity.current()
    execute(store.con, _set_variable("flywheel_owner_pid", literal(int(me.pid))), {})
    for name, value in (("flywheel_owner_host", me.host), ("flywheel_owner_started", me.started)):
        execute(store.con, _set_variable(name, exp.cast(literal(value), "VARCHAR")), {})


def mark_abandoned(store: "Store") -> list[dict]:
    """Mark `aborted` every running run whose owner process is gone; returns them (and says so)."""
    rows = [tuple(r.values()) for r in execute(store.con, _RUNNING, {})]
    gone = [r for r in rows if process_identity.is_alive(ProcessIdentity(r[3], r[4], r[5])) is False]
    if not gone:
        return []
    from engine.console import err_console

    found_at = utc_now()
    with store.transaction() as con:
        for run_id, *_ in gone:
            execute(con, _ABORT_ONE, {"found_at": found_at, "run_id": run_id})
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
        execute(store.con, _CLOSE_OWN[interrupted], {"at": utc_now(), "pid": me.pid, "host": me.host})
    except Exception:  # noqa: BLE001 - the original error is what the user must see
        pass
