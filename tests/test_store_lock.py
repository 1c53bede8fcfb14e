"""A busy store: a second writer waits up to store.lock_wait_s with a message, then exits 3. The lock is held by a
second process (this test process), as another flywheel command would hold it."""
from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
import pytest

from tests.conftest import copy_fixture_project, run_cli
from tests.session_cache import copy_of


@pytest.fixture(scope="module")
def evaluated_template(tmp_path_factory) -> Path:
    """The fixture project after one `flywheel evaluate` (its store exists), made once for the module."""
    project = copy_fixture_project(tmp_path_factory.mktemp("evaluated") / "project")
    assert run_cli("evaluate", cwd=project).code == 0
    return project


@pytest.fixture
def project(evaluated_template, tmp_path) -> Path:
    """A private copy of the evaluated fixture project: each test holds and writes its own store."""
    return copy_of(evaluated_template, tmp_path / "project")


@contextmanager
def held_store(project: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Hold the store's write lock in this process until the block ends."""
    assert (project / ".flywheel" / "flywheel.duckdb").is_file()
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"))
    try:
        yield con
    finally:
        con.close()


@pytest.mark.parametrize("command", [("evaluate",), ("gate",), ("monitor", "metrics=[support]"),
                                     ("bridge", "metrics=[support]"), ("datasets", "list"),
                                     ("ingest", "path=data/mini.jsonl"), ("gate", "-m", "challenger=lookup")],
                         ids=lambda c: " ".join(c))
def test_a_store_busy_past_the_wait_is_exit_3_with_one_line(cli, project, command):
    with held_store(project):
        r = cli(*command, "store.lock_wait_s=0.5", cwd=project)
    assert r.code == 3, r
    assert "is in use by process" in r.stderr and "waiting up to 0.5 s" in r.stderr
    assert "still in use by process" in r.stderr and "after waiting 0.5 s (store.lock_wait_s)" in r.stderr
    assert "Traceback" not in r.stderr


def wait_for_message(proc: subprocess.Popen, text: str) -> str:
    seen = ""
    while text not in seen:
        line = proc.stderr.readline()
        assert line, f"the process ended without saying {text!r}: {seen}"
        seen += line
    return seen


@pytest.mark.parametrize("command", [("gate",), ("gate", "-m", "challenger=lookup,lookup_better")],
                         ids=lambda c: " ".join(c))
def test_a_second_writer_waits_and_then_runs(project, command):
    with held_store(project):
        proc = subprocess.Popen([sys.executable, "-m", "engine", *command, "run.progress=false",
                                 "store.lock_wait_s=600"], cwd=project, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            wait_for_message(proc, "waiting up to 600 s")
            time.sleep(0.5)  # still waiting, not failed: the lock is released only now
            assert proc.poll() is None
        except BaseException:
            proc.kill()
            raise
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, (out, err)
    assert "PASS" in out


def test_the_default_wait_is_declared_in_the_config_schema():
    from engine.schemas import load_schema
    from engine.store import DEFAULT_LOCK_WAIT_S

    assert load_schema("store")["properties"]["lock_wait_s"]["default"] == DEFAULT_LOCK_WAIT_S == 30
