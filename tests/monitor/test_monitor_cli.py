"""`flywheel monitor` end to end: simulated traffic with an injected drift and failure mode, ingested through
the real CLI, monitored against a real lab run."""
from __future__ import annotations

import duckdb
import pytest
from jsonschema import Draft202012Validator
from scipy import stats

from engine.monitor.parity import wilson
from engine.schemas import load_schema
from tests.simulated_month import (DAYS, DRIFT_DAY, FAILURE_DAY, day, monitored_copy,  # noqa: F401
                                   monitored_month, simulated_month)


@pytest.fixture(scope="module")
def monitored(monitored_month, tmp_path_factory):  # noqa: F811
    """The shared simulated month (tests/simulated_month.py: drift on DRIFT_DAY, failure from FAILURE_DAY), monitored
    a first time when it was built and a second time here."""
    from tests.conftest import run_cli

    project, first = monitored_copy(monitored_month, tmp_path_factory, "monitor")
    second = run_cli("monitor", "out=second.json", cwd=project)
    return project, first, second


def rule(result: dict, name: str) -> dict:
    return next(d for d in result["drift"] if d["name"] == name)


def test_monitor_flags_the_injected_drift_from_its_day_on_and_not_before(monitored):
    _, first, _ = monitored
    assert first.code == 1, first
    result = first.json
    Draft202012Validator(load_schema("monitor_result")).validate(result)
    assert not result["healthy"]
    for name in ("input_length_psi", "topic_mix"):
        d = rule(result, name)
        assert d["status"] == "alert" and d["first_alert"].startswith(day(DRIFT_DAY)), d["message"]
        before = [w for w in d["windows"] if w["window"] < day(DRIFT_DAY)]
        after = [w for w in d["windows"] if w["window"] >= day(DRIFT_DAY)]
        assert before and not any(w["alert"] for w in before)
        assert after and all(w["alert"] for w in after)
    assert {"drift.input_length_psi", "drift.topic_mix"} <= set(result["blocking_alerts"])
    # the current period in the reference's bins, for the report's histograms: the new feature's topic is a
    # category the reference never saw
    topic = rule(result, "topic_mix")
    assert topic["current"]["labels"][:len(topic["reference"]["labels"])] == topic["reference"]["labels"]
    assert "product" in topic["current"]["labels"] and "product" not in topic["reference"]["labels"]
    assert sum(topic["current"]["proportions"]) == pytest.approx(1.0)
    assert sum(topic["reference"]["proportions"]) == pytest.approx(1.0)


def test_parity_gap_names_the_failure_mode(monitored):
    _, first, _ = monitored
    parity = first.json["parity"][0]
    assert parity["model"] == "bm25_clean" and parity["status"] == "alert"
    assert parity["gap"] > parity["tolerance"]
    assert parity["slices"][0]["slice"] == "billing"  # the injected failure mode has the largest gap
    assert "billing" in parity["message"]
    before = [w for w in parity["windows"] if w["window"] < day(DRIFT_DAY)]
    late = [w for w in parity["windows"] if w["window"] >= day(FAILURE_DAY)]
    live_before = sum(w["k"] for w in before) / sum(w["n"] for w in before)
    live_late = sum(w["k"] for w in late) / sum(w["n"] for w in late)
    assert abs(parity["lab"]["rate"] - live_before) < parity["tolerance"] < parity["lab"]["rate"] - live_late


def test_kpis_are_reported_against_targets(monitored):
    _, first, _ = monitored
    kpis = {k["name"]: k for k in first.json["kpis"]}
    assert {"conversion_rate", "revenue", "roi", "resolved_without_ticket", "daily_active_users"} <= set(kpis)
    roi = kpis["roi"]
    agg = roi["aggregates"]
    expected = (0.05 * agg["revenue"] - (agg["model_cost"] + 25 * agg["days"])) / (agg["model_cost"] + 25 * agg["days"])
    assert roi["value"] == pytest.approx(expected)
    assert roi["status"] == ("ok" if expected > 0 else "alert")
    assert len(kpis["daily_active_users"]["windows"]) == DAYS - 7  # the current period, after 7 reference days


def test_results_are_appended_and_reference_profiles_and_live_scores_reused(monitored):
    project, first, second = monitored
    assert second.code == 1
    assert second.json["online"]["newly_scored"] == {"relevance": 0, "safety": 0}
    assert first.json["online"]["newly_scored"]["relevance"] > 0
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM monitor_runs").fetchall()[0][0] == 2
    per_run = con.execute("SELECT run_id, count(*) FROM monitor_results GROUP BY 1").fetchall()
    assert len(per_run) == 2 and per_run[0][1] == per_run[1][1] > 0
    # profiles were fitted by the first run only
    fitted = con.execute("SELECT count(*), max(created_at) FROM reference_profiles").fetchall()[0]
    assert fitted[0] > 0 and fitted[1].isoformat() < second.json["started_at"]
    series = con.execute("SELECT window_start, statistic, alert FROM monitor_results WHERE run_id = ? AND "
                         "name = 'topic_mix' ORDER BY window_start", [second.json["run_id"]]).fetchall()
    assert [a for _, _, a in series] == [w["alert"] for w in rule(second.json, "topic_mix")["windows"]]


def test_online_sample_is_deterministic_and_nested(monitored):
    project, first, _ = monitored
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    from engine.monitor.online import sampled
    from engine.monitor.spec import OnlineSpec
    from engine.sql import render
    from sqlglot import exp

    def sample(rate):
        cond = sampled(OnlineSpec(rate, "flywheel", ()))
        q = exp.select("trace_id").from_(exp.table_("traces").as_("t")).where(cond)
        return {r[0] for r in con.execute(render(q)).fetchall()}

    small, large = sample(0.1), sample(0.25)
    assert small < large and 0.05 < len(small) / len(large) * 0.25 < 0.15
    stored = {r[0] for r in con.execute("SELECT trace_id FROM live_scores WHERE metric = 'relevance'").fetchall()}
    assert stored == large  # monitor scored exactly the 25 % sample


def test_wilson_interval_equals_scipy():
    for k, n in ((0, 10), (3, 10), (10, 10), (47, 130), (500, 1000)):
        low, high = wilson(k, n)
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_bad_monitor_config_names_every_problem(cli, tmp_path):
    r = cli("monitor", "monitor.drift.topic_mix.feature=topik", "+monitor.drift.input_length_psi.p_value=0.01",
            "monitor.features.input_length.expr='length(inputs)'", "monitor.kpis.roi.value='revenue / costs'",
            "monitor.online.metrics=[relevance,nope]", cwd=tmp_path)
    assert r.code == 2, r
    err = r.stderr
    assert "monitor.drift.topic_mix.feature: unknown feature 'topik'; did you mean 'topic'?" in err
    assert "monitor.features.input_length.expr: unknown column 'inputs'" in err
    assert "monitor.kpis.roi.value: unknown column 'costs'" in err
    assert "monitor.online.metrics[1]: unknown metric 'nope'" in err
    assert "monitor.drift.input_length_psi: give exactly one of threshold, p_value or sigma (got threshold, " \
           "p_value)" in err
    assert not (tmp_path / ".flywheel").exists()


def test_compile_monitor_prints_the_sql(cli, tmp_path):
    r = cli("compile", "monitor", cwd=tmp_path)
    assert r.code == 0, r
    for name in ("-- online.relevance", "-- drift.topic_mix.current", "-- kpi.roi.overall", "-- parity.accuracy.live"):
        assert name in r.stdout
    assert "INSERT INTO live_scores" in r.stdout
