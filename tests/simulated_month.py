"""A simulated month of production traffic, ingested and evaluated once per test session (`simulated_month`).

The monitor, its HTML report and the bridge are tested on the same traffic: 20 days with a drift injected on day
10 and a failure mode (billing answers go wrong) from day 14, ingested, and the lab run of the same model that the
monitor's parity check compares with. Building it takes the real CLI three commands over 1,400 sessions, so it is
built once for all workers (tests/session_cache.py); each module copies it and runs its own commands on the copy.
`monitored_month` is the same month after its first `flywheel monitor` (with its HTML report), for the modules that
start from there.
"""
from __future__ import annotations

import json
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.session_cache import built_once, copy_of

FIRST_MONITOR_REPORT = "first.html"  # in the project, beside first.json
FIRST_MONITOR = ("monitor", "out=first.json", f"report={FIRST_MONITOR_REPORT}")
FIRST_MONITOR_CLI = "first_monitor_cli.json"  # beside the project: the command's exit code, stdout and stderr

START = date(2025, 3, 1)  # the simulator's first day
DRIFT_DAY, FAILURE_DAY, DAYS = 10, 14, 20
SCENARIO = (f"simulate.days={DAYS}", "simulate.sessions_per_day=70", "simulate.users=400",
            f"simulate.drift.start_day={DRIFT_DAY}", f"simulate.failure.start_day={FAILURE_DAY}",
            "simulate.feedback.thumbs_rate=0.5")
BUILD = (("simulate", "model=bm25_clean", *SCENARIO), ("ingest", "path=data/production"),
         ("evaluate", "model=bm25_clean", "dataset=[support_qa]"))


def day(n: int) -> str:
    """The ISO date of the scenario's day n (day 0 is START)."""
    return (START + timedelta(days=n)).isoformat()


def _build(project: Path) -> None:
    from tests.conftest import run_cli

    for args in BUILD:
        r = run_cli(*args, cwd=project)
        assert r.code == 0, r


@pytest.fixture(scope="session")
def simulated_month(tmp_path_factory) -> Path:
    """The built project (bundled config, no conf/ of its own): read it, or copy it with `month_copy`."""
    return built_once(tmp_path_factory, "simulated_month", _build)


def month_copy(simulated_month: Path, tmp_path_factory, name: str) -> Path:
    """A private copy of the simulated month's project, for a module that runs commands on it."""
    return copy_of(simulated_month, tmp_path_factory.mktemp(name) / "project")


@pytest.fixture(scope="session")
def monitored_month(simulated_month, tmp_path_factory) -> Path:
    """The simulated month after `flywheel monitor out=first.json report=first.html`: the built directory holds the
    project and FIRST_MONITOR_CLI. Read it (`first_monitor`), or copy it with `monitored_copy`."""
    from tests.conftest import run_cli

    def build(root: Path) -> None:
        project = copy_of(simulated_month, root / "project")
        r = run_cli(*FIRST_MONITOR, cwd=project)
        (root / FIRST_MONITOR_CLI).write_text(json.dumps({"code": r.code, "stdout": r.stdout, "stderr": r.stderr}),
                                              encoding="utf-8")

    return built_once(tmp_path_factory, "monitored_month", build)


def first_monitor(monitored_month: Path):
    """The first monitor's CLIResult, reading first.json in the built project itself (for reading only)."""
    from tests.conftest import CLIResult

    cli = json.loads((monitored_month / FIRST_MONITOR_CLI).read_text(encoding="utf-8"))
    proc = subprocess.CompletedProcess(list(FIRST_MONITOR), cli["code"], cli["stdout"], cli["stderr"])
    return CLIResult(proc, monitored_month / "project" / "first.json")


def monitored_copy(monitored_month: Path, tmp_path_factory, name: str):
    """(a private copy of the monitored month's project, the first monitor's CLIResult reading the copy's
    first.json)."""
    from tests.conftest import CLIResult

    project = copy_of(monitored_month / "project", tmp_path_factory.mktemp(name) / "project")
    first = first_monitor(monitored_month)
    proc = subprocess.CompletedProcess(list(FIRST_MONITOR), first.code, first.stdout, first.stderr)
    return project, CLIResult(proc, project / "first.json")
