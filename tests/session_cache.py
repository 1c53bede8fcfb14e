"""Expensive test data built once per test session and shared by the xdist workers.

A session-scoped fixture is built once per *process*: with `pytest -n 2` each worker would build it. `built_once`
builds a directory once per session for all workers: the first worker to ask builds it under an exclusive lock
(fcntl) and marks it finished; a worker asking meanwhile waits on the lock, then uses the finished directory.
Tests copy the built directory (`copy_of`) before writing to it.
"""
from __future__ import annotations

import fcntl
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


def session_root(tmp_path_factory) -> Path:
    """A directory shared by every worker of this test session and by no other session.

    Under xdist each worker's base temp is `<controller's base temp>/popen-gwN`, so their parent is the session's
    own directory; without xdist the base temp itself is (its parent holds earlier sessions' directories)."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
    root.mkdir(exist_ok=True)
    return root


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """The directory `name`, made by `build(directory)` once in this test session, whichever worker asks first.

    A failed build leaves nothing behind (the next asker builds again and fails the same way, with its own
    traceback), so a test never reads half-built data."""
    root = session_root(tmp_path_factory)
    built, finished = root / name, root / f"{name}.built"
    with _exclusive(root / f"{name}.lock"):
        if not finished.exists():
            shutil.rmtree(built, ignore_errors=True)
            built.mkdir()
            try:
                build(built)
            except BaseException:
                shutil.rmtree(built, ignore_errors=True)
                raise
            finished.touch()
    return built


def copy_of(template: Path, dest: Path) -> Path:
    """A private copy of a built directory, for a test (or module) that writes to it."""
    shutil.copytree(template, dest)
    return dest
