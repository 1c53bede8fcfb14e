"""`monitor.reference.kind: golden`: drift of production inputs against the golden dataset's inputs, through the
CLI, checked against scipy on the store's own rows; a live-score feature cannot have a golden reference (a config
error naming the rule, not a crash)."""
from __future__ import annotations

from datetime import datetime

import duckdb
import pytest
from scipy import stats

from tests.conftest import run_cli
from tests.production_fixture import production_project, production_template  # noqa: F401

GOLDEN = ("monitor.reference.kind=golden", "+monitor.reference.dataset=support_qa")


def test_a_live_score_feature_with_a_golden_reference_is_a_config_error(production_project):  # noqa: F811
    r = run_cli("monitor", *GOLDEN, cwd=production_project)
    assert r.code == 2, r
    assert "monitor.drift.live_relevance_drift.feature" in r.stderr and "is a live score" in r.stderr


def test_ks_against_the_golden_inputs_equals_scipy_per_window(production_project):  # noqa: F811
    project = production_project
    assert run_cli("evaluate", "model=bm25_clean", "dataset=[support_qa]", cwd=project).code == 0
    r = run_cli("monitor", *GOLDEN, "~monitor.drift.live_relevance_drift", "out=m.json", cwd=project)
    assert r.code in (0, 1), r
    [ks] = [d for d in r.json["drift"] if d["name"] == "input_length_ks"]
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:
        version = con.execute("SELECT dataset_version FROM dataset_versions WHERE name = 'support_qa' "
                              "ORDER BY created_at DESC LIMIT 1").fetchall()[0][0]
        golden = [n for (n,) in con.execute("SELECT length(input_text) FROM cases WHERE dataset_version = ?",
                                            [version]).fetchall()]
        assert ks["reference"]["n"] == len(golden) > 0
        for w in ks["windows"]:
            start = datetime.fromisoformat(w["window"])
            live = [n for (n,) in con.execute(
                "SELECT length(input) FROM traces WHERE date_trunc('day', \"timestamp\") = ?", [start]).fetchall()]
            expected = stats.ks_2samp(live, golden)
            assert w["n"] == len(live)
            assert w["statistic"] == pytest.approx(expected.statistic, rel=1e-9)
    finally:
        con.close()
