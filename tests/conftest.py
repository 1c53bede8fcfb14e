"""Shared fixtures: a temporary project directory (a copy of tests/fixtures/project) and the real CLI."""
from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURE_PROJECT = REPO / "tests" / "fixtures" / "project"
MODULE_SECONDS = REPO / "tests" / "module_seconds.json"

# One harness per test process. pytest imports this file as `conftest`, test modules import it as `tests.conftest`:
# two module objects, each with its own CLI zygote (~1.8 s of CPU to start, and again its own bytecode cache).
# The second name is made to mean this module.
sys.modules.setdefault("tests.conftest", sys.modules[__name__])


# Scheduling. `make test` runs `pytest -n 2 --dist loadfile`: each module goes whole to one worker, handed out in
# the order of the work queue as workers free up. xdist's default queue puts modules with the most tests first, so
# the single-test heavy modules (the demo, the wheel install) came last and ran alone on one worker while the other
# sat idle. Longest first instead: modules are collected heaviest first, by the seconds each took in a recorded run
# (tests/module_seconds.json; unrecorded modules count as light and keep their place), and the queue follows
# collection order. Refresh the record with `python tests/module_seconds.py JUNIT.xml` after a run with --junitxml.
def pytest_configure(config):
    if getattr(config.option, "dist", "no") in ("loadfile", "loadscope"):
        config.option.loadscopereorder = False  # xdist: keep our order (the queue follows collection order)
    # The CLI calls' composed-config cache (engine/compose_cache.py) lives in a directory of this session, shared
    # by the xdist workers (they inherit the environment of the controller, which configures first), not in the
    # user's ~/.cache; removed at the end by the process that made it.
    if not os.environ.get("FLYWHEEL_CACHE_DIR"):
        import tempfile

        os.environ["FLYWHEEL_CACHE_DIR"] = config._flywheel_cache_dir = tempfile.mkdtemp(prefix="flywheel-test-cache-")


# The Spark parity suite (tests/parity/) goes whole to one worker: one JVM and one Spark session for all its
# modules (starting one costs seconds and a gigabyte), as its conftest asks. Its weight in module_seconds.json is
# the whole package's (the key "tests/parity/").
PARITY = "tests/parity/"


def pytest_xdist_make_scheduler(config, log):
    if getattr(config.option, "dist", "no") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class ParityTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return PARITY if nodeid.startswith(PARITY) else super()._split_scope(nodeid)

    return ParityTogether(config, log)


def pytest_unconfigure(config):
    made = getattr(config, "_flywheel_cache_dir", None)
    if made:
        shutil.rmtree(made, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    if getattr(config.option, "dist", "no") == "no" and not os.environ.get("PYTEST_XDIST_WORKER"):
        return  # one process: the order does not change the wall time, keep the familiar one
    seconds = json.loads(MODULE_SECONDS.read_text(encoding="utf-8"))["seconds"]
    first_seen = {}
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        first_seen.setdefault(PARITY if module.startswith(PARITY) else module, len(first_seen))

    def weight(item) -> tuple[float, int]:
        module = item.nodeid.split("::", 1)[0]
        module = PARITY if module.startswith(PARITY) else module
        return -seconds.get(module, 0.0), first_seen[module]

    items.sort(key=weight)  # stable: a module's tests keep their order


def copy_fixture_project(dest: Path) -> Path:
    """A fresh copy of the small test project (its own conf/, data and model) at dest."""
    shutil.copytree(FIXTURE_PROJECT, dest, ignore=shutil.ignore_patterns(".flywheel", "__pycache__"))
    return dest


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the small test project (its own conf/, data and model), outside the repo."""
    return copy_fixture_project(tmp_path / "project")


class CLIResult:
    def __init__(self, proc: subprocess.CompletedProcess, out_path: Path | None):
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.out_path = out_path

    @property
    def json(self) -> dict:
        assert self.out_path is not None, "call the CLI with out=... to read its JSON result"
        return json.loads(self.out_path.read_text(encoding="utf-8"))

    def __repr__(self) -> str:
        return f"<exit {self.code}>\nSTDOUT:\n{self.stdout}\nSTDERR:\n{self.stderr}"


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> CLIResult:
    """Run `flywheel ARGS` in a new process, as a user would. Progress bars off to keep output readable.

    The process is forked from a zygote that has the heavy libraries imported (tests/cli_zygote.py), which
    halves the cost of a call; FLYWHEEL_TEST_SUBPROCESS=1, or an environment that changes how Python starts
    (PYTHON* variables), runs `python -m engine` as a plain subprocess instead."""
    out_path = None
    for a in args:
        if a.startswith("out="):
            out_path = Path(a[4:]) if Path(a[4:]).is_absolute() else cwd / a[4:]
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    argv = list(args)
    if args and args[0] not in ("--help", "-h", "help", "init") and "run.progress=false" not in args:
        argv.append("run.progress=false")
    if _zygote_serves(full_env):
        code, stdout, stderr = _ZYGOTE.run(argv, Path(cwd), full_env, timeout)
        return CLIResult(subprocess.CompletedProcess(argv, code, stdout, stderr), out_path)
    proc = subprocess.run([sys.executable, "-m", "engine", *argv], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    return CLIResult(proc, out_path)


def _zygote_serves(env: dict) -> bool:
    if os.environ.get("FLYWHEEL_TEST_SUBPROCESS") == "1" or not hasattr(os, "fork"):
        return False
    python_vars = {k: v for k, v in env.items() if k.startswith("PYTHON")}
    return python_vars == {k: v for k, v in os.environ.items() if k.startswith("PYTHON")}


class _Zygote:
    """The test process's one zygote (tests/cli_zygote.py), started on first use."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.pending = b""  # replies read from the pipe and not used yet

    def _reply(self, timeout: float | None) -> dict | None:
        """The next reply line, or None when none came within `timeout` seconds."""
        import select

        fd = self.proc.stdout.fileno()
        while b"\n" not in self.pending:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError("the CLI zygote (tests/cli_zygote.py) exited")
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)

    def _start(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "cli_zygote.py")],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO)
            self.pending = b""
        return self.proc

    def run(self, argv: list[str], cwd: Path, env: dict, timeout: float) -> tuple[int, str, str]:
        import signal
        import tempfile

        proc = self._start()
        with tempfile.TemporaryDirectory(prefix="flywheel-cli-") as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            request = {"args": argv, "cwd": str(cwd), "env": env, "stdout": str(out), "stderr": str(err)}
            proc.stdin.write((json.dumps(request) + "\n").encode())
            proc.stdin.flush()
            pid = self._reply(None)["pid"]
            done = self._reply(timeout)
            if done is None:
                os.kill(pid, signal.SIGKILL)
                self._reply(None)
                raise subprocess.TimeoutExpired(["flywheel", *argv], timeout)
            code = done["code"]
            _log_call(argv, cwd, done.get("cpu"))
            return code, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8", errors="backslashreplace")


    def close(self) -> None:
        """End the zygote (end of input) and reap it: its bytecode cache goes, and its CPU time is counted."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _log_call(argv: list[str], cwd: Path, cpu: float | None) -> None:
    """With FLYWHEEL_TEST_CLI_LOG=FILE, append one JSON line per CLI call: the test, its arguments and the CPU
    seconds the call took (a forked child's CPU is otherwise counted only when the zygote exits, under no test)."""
    log = os.environ.get("FLYWHEEL_TEST_CLI_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"test": os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0], "args": argv,
                                "cwd": str(cwd), "cpu": cpu}) + "\n")


_ZYGOTE = _Zygote()
atexit.register(_ZYGOTE.close)


@pytest.fixture
def cli():
    return run_cli
