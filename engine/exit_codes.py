"""The exit-code contract CI relies on, and how every failure maps onto it.

0 ok / PASS / healthy; 1 BLOCKED / alert (a verdict, never a crash); 2 the user's config or input is wrong;
3 Flywheel could not do its job (store busy past the wait, disk full, out of memory, an internal error);
130 interrupted.
"""
from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from engine.errors import OperationalError, UserError

OK, VERDICT, USER_ERROR, CANNOT_RUN, INTERRUPTED = 0, 1, 2, 3, 130

# What 0 and 1 mean per command (2, 3 and 130 mean the same everywhere). Commands not listed: 0 ok.
COMMAND_CODES = {
    "evaluate": "0 ok (a case the model failed on is an errored case, counted in the scores)",
    "gate": "0 PASS, 1 BLOCKED",
    "gate -m": "0 at least one challenger passes, 1 none does",
    "ingest": "0 ok (quarantined records reported), 1 quarantine share above ingest.max_quarantine_share",
    "monitor": "0 healthy, 1 alert",
    "bridge": "0 ok",
    "datasets": "0 ok",
    "compile": "0 ok",
    "demo": "0 ok, 1 the demo did not find what it should",
}
COMMON = [
    ("2", "the config or input is wrong: a message naming the file, line or key; no traceback"),
    ("3", "Flywheel could not do its job: the store busy past store.lock_wait_s, disk full, out of memory, "
          "an internal error (one line; the traceback with --debug)"),
    ("130", "interrupted (Ctrl-C)"),
]


def help_text(commands: list[str], only: str | None = None) -> str:
    names = [only] if only else list(dict.fromkeys([*COMMAND_CODES, *commands]))
    if only == "gate":
        names.append("gate -m")
    width = max(len(n) for n in [*names, "any command"]) + 2
    lines = ["Exit codes:"] + [f"  {n:<{width}} {COMMAND_CODES.get(n, '0 ok')}" for n in names if n != "help"]
    lines += [f"  {'any command':<{width}} {code} {text}" for code, text in COMMON]
    return "\n".join(lines) + "\n"


def _yaml_message(e: Exception) -> str:
    """`conf/metrics/x.yaml:4:6: invalid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence
    at line 3, column 15)`: file, line and column (1-based), no traceback."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    if mark is None:
        return f"invalid YAML: {str(e).strip()}"
    where = f"{_shown(mark.name)}:{mark.line + 1}:{mark.column + 1}"
    context, context_mark = getattr(e, "context", None), getattr(e, "context_mark", None)
    tail = ""
    if context and context_mark is not None and context_mark is not mark:
        tail = f" ({context} at line {context_mark.line + 1}, column {context_mark.column + 1})"
    elif context:
        tail = f" ({context})"
    return f"{where}: invalid YAML: {problem}{tail}"


def _shown(name: str) -> str:
    try:
        return str(Path(name).resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return name


def _disk_full(e: BaseException) -> bool:
    return (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "no space left on device" in str(e).lower()


def classify(e: BaseException) -> tuple[int, str]:
    """(exit code, the one message to print) for an exception that ended a command."""
    import duckdb
    import yaml

    if isinstance(e, KeyboardInterrupt):
        return INTERRUPTED, "interrupted"
    if isinstance(e, UserError):
        return USER_ERROR, str(e)
    if isinstance(e, yaml.YAMLError):
        return USER_ERROR, _yaml_message(e)
    if isinstance(e, OperationalError):
        return CANNOT_RUN, str(e)
    if _disk_full(e):
        return CANNOT_RUN, f"the disk is full: {str(e).splitlines()[0]}"
    if isinstance(e, (MemoryError, duckdb.OutOfMemoryException)):
        return CANNOT_RUN, f"out of memory: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
    if isinstance(e, OSError) and e.filename:
        return CANNOT_RUN, f"cannot access {e.filename}: {e.strerror or e}"
    first = str(e).splitlines()[0] if str(e) else ""
    return CANNOT_RUN, (f"internal error (a bug in Flywheel): {type(e).__name__}: {first}; "
                        "run again with --debug for the traceback")


def check_writable(key: str, value: str, path: Path) -> None:
    """Refuse an output path that cannot be written, before the command does any work."""
    if path.is_dir():
        raise UserError(f"{key}={value}: {path} is a directory; give a file path")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise UserError(f"{key}={value}: {path} is not writable")
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{key}={value}: cannot create {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{key}={value}: cannot create {path}: the directory {parent} is not writable")


@contextmanager
def writing_output(key: str, value: str, path: Path, command_code: int) -> Iterator[None]:
    """Writing a file the user asked for after the command finished: a failure names the key and says that the
    command's own outcome stands (its results are stored), instead of a traceback."""
    try:
        yield
    except OSError as e:
        done = {OK: "finished (exit 0)", VERDICT: "finished with a verdict (exit 1)"}.get(
            command_code, f"finished (exit {command_code})")
        if _disk_full(e):
            raise OperationalError(f"{key}={value}: the disk is full writing {path}; the command itself {done} "
                                   "and its results are stored") from e
        raise UserError(f"{key}={value}: cannot write {path}: {e.strerror or e}; the command itself {done} and "
                        "its results are stored") from e
