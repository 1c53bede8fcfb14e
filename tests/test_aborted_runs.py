"""A run whose process was killed does not stay `running` forever: every run records its owner process (pid, host,
start time), and the next command that opens the store marks the runs of dead owners `aborted`."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from tests.conftest import run_cli
from tests.test_exit_codes import SLOW_MODEL, add_model, store_rows


def start_slow_evaluate(project):
    started = project / "started.txt"
    add_model(project, "slow", SLOW_MODEL, "Slow", {"started_file": str(started)})
    proc = subprocess.Popen([sys.executable, "-m", "engine", "evaluate", "model=slow", "run.progress=false"],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not started.exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    return proc


def test_a_killed_evaluate_is_marked_aborted_by_the_next_command(project):
    proc = start_slow_evaluate(project)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()  # reaped: the pid is gone
    running = store_rows(project, "SELECT run_id, owner_pid, owner_host, owner_started FROM runs "
                                  "WHERE status = 'running'")
    assert len(running) == 1
    run_id, pid, host, started = running[0]
    assert (pid, host) == (proc.pid, socket.gethostname()) and started  # the owner was recorded
    r = run_cli("evaluate", cwd=project)  # any later command that opens the store
    assert r.code == 0, r
    assert f"run {run_id}" in r.stderr and f"left running by process {proc.pid}" in r.stderr
    assert "marked aborted" in r.stderr
    status, aborted_at, finished_at = store_rows(project, "SELECT status, aborted_at, finished_at FROM runs "
                                                          f"WHERE run_id = '{run_id}'")[0]
    assert status == "aborted" and aborted_at is not None and finished_at is None
    again = run_cli("datasets", "list", cwd=project)
    assert "marked aborted" not in again.stderr  # said once


def test_a_live_owner_is_alive_and_a_reused_pid_or_another_host_is_told_apart(project):
    proc = start_slow_evaluate(project)
    try:
        from engine import process_identity
        from engine.process_identity import ProcessIdentity

        pid = int((project / "started.txt").read_text())  # written by the model, inside the evaluate process
        started = process_identity.current().started and process_identity._started(pid)
        assert started, "this platform records no process start time"
        assert process_identity.is_alive(ProcessIdentity(pid, socket.gethostname(), started)) is True
        # the same pid with another start time is a reused pid: not the owner any more
        assert process_identity.is_alive(ProcessIdentity(pid, socket.gethostname(), started + "0")) is False
        assert process_identity.is_alive(ProcessIdentity(pid, "another-host", started)) is None  # cannot tell
    finally:
        proc.kill()
        proc.communicate()
