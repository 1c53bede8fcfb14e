"""Headless Chromium for the HTML report tests.

Nothing is installed from here: `make test` and `.ci/run` try `apt-get install -y chromium` (Debian's package)
when it is missing. Without a browser the browser tests skip with a message saying so; the static HTML
tests still run.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cdp import Chromium, find_chromium

SKIP_MESSAGE = ("headless Chromium not found (no `chromium` on PATH): the HTML report browser tests are skipped. "
                "Install Debian's package with `apt-get install -y chromium` (`make test` and CI try this).")


@pytest.fixture(scope="session")
def browser():
    binary = find_chromium()
    if binary is None:
        pytest.skip(SKIP_MESSAGE)
    chromium = Chromium(binary)
    yield chromium
    chromium.close()


@pytest.fixture
def open_page(browser):
    """Open a file in a fresh tab; every tab opened by a test is closed after it."""
    pages = []

    def open_(path: Path, **size):
        assert Path(path).is_file(), f"no report at {path}"
        page = browser.open(path, **size)
        pages.append(page)
        return page

    yield open_
    for page in pages:
        page.close()


PRODUCTION_CASE = ('{"id": "m6", "input": "How do I export timesheets?", "expected": "export button", '
                   '"tags": ["billing", "account"], "metadata": {"origin": "production", "trace_id": "t-42"}}\n')


@pytest.fixture
def production_gate(cli, project):
    """Gate the fixture project with one more case that came from production and regresses: the baseline
    answers it, the challenger does not. Returns (gate result, path of the HTML report)."""
    with (project / "data" / "mini.jsonl").open("a", encoding="utf-8") as f:
        f.write(PRODUCTION_CASE)
    r = cli("gate", "+baseline.params.answers.m6=Use the export button.", "out=gate.json", "report=out/gate.html",
            cwd=project)
    assert r.code == 1, r  # BLOCKED: m6 regressed
    return r.json, project / "out" / "gate.html"


SWEEP = ("gate", "-m", "challenger=lookup_v1,lookup_better", "gate.rules.found_improves.min_delta=0.0,0.3",
         "out=leaderboard.json", "report=sweep.html")


@pytest.fixture(scope="session")
def swept(tmp_path_factory):
    """The fixture project, with the baseline's copy as challenger lookup_v1 (tests/model_helpers.py), after one
    sweep over two challengers and two improvement bounds with its HTML report (sweep.html): (project, CLIResult).
    Built once per session for the browser modules that read it (tests/session_cache.py); do not write to it."""
    from tests.conftest import CLIResult, copy_fixture_project, run_cli
    from tests.model_helpers import baseline_copy
    from tests.session_cache import built_once

    def build(root: Path) -> None:
        project = copy_fixture_project(root / "project")
        baseline_copy(project)
        r = run_cli(*SWEEP, cwd=project)
        (root / "sweep_cli.json").write_text(json.dumps({"code": r.code, "stdout": r.stdout, "stderr": r.stderr}),
                                             encoding="utf-8")

    root = built_once(tmp_path_factory, "report_sweep", build)
    cli = json.loads((root / "sweep_cli.json").read_text(encoding="utf-8"))
    proc = subprocess.CompletedProcess(list(SWEEP), cli["code"], cli["stdout"], cli["stderr"])
    return root / "project", CLIResult(proc, root / "project" / "leaderboard.json")
