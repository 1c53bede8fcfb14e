"""Shared fixtures: a temporary project directory (a copy of tests/fixtures/project) and the real CLI."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURE_PROJECT = REPO / "tests" / "fixtures" / "project"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the small test project (its own conf/, data and model), outside the repo."""
    dest = tmp_path / "project"
    shutil.copytree(FIXTURE_PROJECT, dest, ignore=shutil.ignore_patterns(".flywheel", "__pycache__"))
    return dest


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
    """Run `flywheel ARGS` in a subprocess, as a user would. Progress bars off to keep output readable."""
    out_path = None
    for a in args:
        if a.startswith("out="):
            out_path = Path(a[4:]) if Path(a[4:]).is_absolute() else cwd / a[4:]
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    cmd = [sys.executable, "-m", "engine", *args]
    if args and args[0] not in ("--help", "-h", "help", "init") and "run.progress=false" not in args:
        cmd.append("run.progress=false")
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    return CLIResult(proc, out_path)


@pytest.fixture
def cli():
    return run_cli
