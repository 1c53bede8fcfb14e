"""Which process owns a piece of work, and whether that process is still alive.

A run records its owner (pid, host, and the process's start time) so that a later command can tell a run that
is still being worked on from one whose process was killed. The start time guards against pid reuse: after a
reboot or a long time, another process may carry the same pid.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessIdentity:
    pid: int
    host: str
    started: str | None  # "<boot id>:<start time in clock ticks>" on Linux; None where it cannot be read


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (which may hold spaces and parentheses): field 3 onwards."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()


def _started(pid: int) -> str | None:
    fields = _stat_fields(pid)
    boot = _boot_id()
    if fields is None or boot is None or len(fields) < 20:
        return None
    return f"{boot}:{fields[19]}"  # field 22 of stat: start time after boot, in clock ticks


def current() -> ProcessIdentity:
    pid = os.getpid()
    return ProcessIdentity(pid, socket.gethostname(), _started(pid))


def is_alive(owner: ProcessIdentity) -> bool | None:
    """True while the owner process runs, False once it is gone, None when this host cannot tell (another host)."""
    if owner.host != socket.gethostname():
        return None
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    fields = _stat_fields(owner.pid)
    if fields is not None and fields[0] in ("Z", "X"):
        return False  # killed, not yet reaped by its parent: it will never finish the run
    if owner.started is not None:
        now = _started(owner.pid)
        if now is not None and now != owner.started:
            return False  # the pid was reused by another process
    return True


def pid_alive(pid: int) -> bool:
    """Whether a process of that id runs on this host (a process of another user counts: it exists)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
