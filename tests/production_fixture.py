"""Fixtures: a small simulated and ingested production history, built once per test session (for all workers)."""
from __future__ import annotations

import pytest

from tests.session_cache import built_once


# A small production history, simulated and ingested once: traces with failures and corrections, and the project's
# own copy of the golden file (so a test can edit it). Tests copy it (`production_project`) before using it.
SMALL_SCENARIO = ("simulate.days=8", "simulate.sessions_per_day=25", "simulate.users=100",
                  "simulate.drift.start_day=3", "simulate.failure.start_day=3", "simulate.feedback.correction_rate=0.9")


@pytest.fixture(scope="session")
def production_template(tmp_path_factory):
    import shutil

    from engine.paths import bundled_datasets_dir
    from tests.conftest import run_cli

    def build(root):
        project = root / "project"
        (project / "conf" / "dataset").mkdir(parents=True)
        (project / "data").mkdir()
        shutil.copy(bundled_datasets_dir() / "support" / "golden_qa.jsonl", project / "data" / "golden_qa.jsonl")
        (project / "conf" / "dataset" / "support_qa.yaml").write_text(
            "support_qa:\n  path: data/golden_qa.jsonl\n", encoding="utf-8")
        for args in (("simulate", "model=bm25_clean", *SMALL_SCENARIO), ("ingest", "path=data/production")):
            r = run_cli(*args, cwd=project)
            assert r.code == 0, r

    return built_once(tmp_path_factory, "production", build) / "project"


@pytest.fixture
def production_project(production_template, tmp_path):
    import shutil

    dest = tmp_path / "project"
    shutil.copytree(production_template, dest)
    return dest
