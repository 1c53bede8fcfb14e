"""A simulated month of production traffic, ingested and evaluated once per test session (`simulated_month`).

The monitor, its HTML report and the bridge are tested on the same traffic: 20 days with a drift injected on day
10 and a failure mode (billing answers go wrong) from day 14, ingested, and the lab run of the same model that the
monitor's parity check compares with. Building it takes the real CLI three commands over 1,400 sessions, so it is
built once for all workers (tests/session_cache.py); each module copies it and runs its own commands on the copy.
"""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.session_cache import built_once, copy_of

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
