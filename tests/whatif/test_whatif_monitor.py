"""`flywheel whatif monitor` through the real CLI: the shared simulated month, ingested and monitored
(tests/simulated_month.py), then its stored statistics replayed under bounds placed between stored values, so the
alerts that must appear or disappear are known by construction."""
from __future__ import annotations

import shutil
from collections import Counter
from datetime import date, datetime, timedelta

import duckdb
import pytest
from jsonschema import Draft202012Validator

from engine.schemas import load_schema
from tests.conftest import run_cli
from tests.simulated_month import monitored_copy, monitored_month, simulated_month  # noqa: F401


@pytest.fixture(scope="module")
def monitored(monitored_month, tmp_path_factory):  # noqa: F811
    """A private copy of the shared simulated month after its first `flywheel monitor` (tests/simulated_month.py):
    20 days from Saturday 1 March, the bundled 7-day reference, so 13 current windows in the weeks of 3, 10 and 17
    March; (project, the stored monitor result)."""
    project, first = monitored_copy(monitored_month, tmp_path_factory, "whatif_monitor")
    assert first.code in (0, 1), first
    return project, first.json


def valid(result: dict) -> dict:
    Draft202012Validator(load_schema("whatif_monitor_result")).validate(result)
    return result


def rule(result: dict, section: str, name: str) -> dict:
    return next(r for r in result["rules"] if (r["section"], r["name"]) == (section, name))


def windows(items: list[dict]) -> set[str]:
    return {w["window"] for w in items}


def week(window: str) -> str:
    d = datetime.fromisoformat(window).date()
    return (d - timedelta(days=d.weekday())).isoformat()


def halfway(values: list[tuple[str, float]], alerts: dict[str, bool], above: bool, minimum: float = float("-inf")
            ) -> tuple[float, set, set]:
    """A bound halfway between two consecutive stored values that changes some stored alert, and the windows
    whose alert must appear and disappear under it (alert when value > bound, or < bound for p-values)."""
    distinct = sorted({v for _, v in values if v is not None})
    for a, b in zip(distinct, distinct[1:]):
        bound = (a + b) / 2
        if bound < minimum:
            continue
        new = {w: (v > bound if above else v < bound) for w, v in values if v is not None}
        appear = {w for w, x in new.items() if x and not alerts[w]}
        disappear = {w for w, x in new.items() if not x and alerts[w]}
        if appear or disappear:
            return bound, appear, disappear
    raise AssertionError("no bound between two stored values changes an alert")


def test_the_unedited_policy_reproduces_the_stored_alerts_and_counts_them_per_week(monitored):
    project, stored = monitored
    r = run_cli("whatif", "monitor", "out=w.json", "markdown=w.md", "report=w.html", cwd=project)
    assert r.code == 0, r
    result = valid(r.json)
    s = result["summary"]
    assert s["appear"] == s["disappear"] == s["changed_rules"] == s["refused_rules"] == 0
    assert result["history"]["runs"] == 1
    # the oracle: stored windowed alerts per week, straight from the store (drift and KPI windows) and the
    # parity windows' gaps against the stored tolerance
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    counts = Counter()
    for window, alert in con.execute("SELECT window_start, alert FROM monitor_results WHERE section IN ('drift', 'kpi') "
                                     "AND window_start IS NOT NULL").fetchall():
        counts[week(window.isoformat())] += int(alert)
    for p in stored["parity"]:
        for w in p["windows"]:
            counts[week(w["window"])] += int(p["lab"]["rate"] - w["rate"] > p["tolerance"])
    assert {w["week"]: w["before"] for w in result["weeks"]} == dict(counts)
    assert all(w["before"] == w["after"] for w in result["weeks"]) and len(result["weeks"]) == 3
    assert "0 appear, 0 disappear" in (project / "w.md").read_text()
    assert "What-if monitor" in (project / "w.html").read_text()


def test_drift_bounds_halfway_between_two_stored_statistics(monitored):
    project, stored = monitored
    psi = next(d for d in stored["drift"] if d["name"] == "input_length_psi")
    t, appear, disappear = halfway([(w["window"], w["statistic"]) for w in psi["windows"]],
                                   {w["window"]: w["alert"] for w in psi["windows"]}, above=True)
    ks = next(d for d in stored["drift"] if d["name"] == "input_length_ks")
    p, p_appear, p_disappear = halfway([(w["window"], w["p_value"]) for w in ks["windows"]],
                                       {w["window"]: w["alert"] for w in ks["windows"]}, above=False)
    r = run_cli("whatif", "monitor", f"monitor.drift.input_length_psi.threshold={t!r}",
                f"monitor.drift.input_length_ks.p_value={p!r}", "out=w.json", cwd=project)
    assert r.code == 1, r
    result = valid(r.json)
    got = rule(result, "drift", "input_length_psi")
    assert (windows(got["appear"]), windows(got["disappear"])) == (appear, disappear)
    assert got["status"] == "changed" and got["bound"] == {"before": "statistic > 0.2", "after": f"statistic > {t!r}"}
    got = rule(result, "drift", "input_length_ks")
    assert (windows(got["appear"]), windows(got["disappear"])) == (p_appear, p_disappear)
    assert result["summary"]["changed_rules"] == 2
    moved = Counter()
    for w in appear | p_appear:
        moved[week(w)] += 1
    for w in disappear | p_disappear:
        moved[week(w)] -= 1
    assert {w["week"]: w["after"] - w["before"] for w in result["weeks"]} == {w["week"]: moved[w["week"]]
                                                                            for w in result["weeks"]}


def test_kpi_target_and_parity_tolerance_halfway_between_stored_values(monitored):
    project, stored = monitored
    kpi = next(k for k in stored["kpis"] if k["name"] == "questions_per_session")  # alert unless <= target
    values = [(w["window"], w["value"]) for w in kpi["windows"]]
    distinct = sorted({v for _, v in values})
    target = (distinct[len(distinct) // 2 - 1] + distinct[len(distinct) // 2]) / 2
    k_appear = {w for w, v in values if v > target and v <= kpi["target"]["value"]}
    k_disappear = {w for w, v in values if v <= target and v > kpi["target"]["value"]}
    parity = stored["parity"][0]
    gaps = [(w["window"], parity["lab"]["rate"] - w["rate"]) for w in parity["windows"]]
    tol, p_appear, p_disappear = halfway(gaps, {w: g > parity["tolerance"] for w, g in gaps}, above=True, minimum=0)
    r = run_cli("whatif", "monitor", f"monitor.kpis.questions_per_session.target.value={target!r}",
                f"monitor.parity.accuracy.tolerance={tol!r}", "out=w.json", cwd=project)
    assert r.code == 1, r
    result = valid(r.json)
    got = rule(result, "kpi", "questions_per_session")
    assert windows(got["appear"]) - {"period"} == k_appear and windows(got["disappear"]) - {"period"} == k_disappear
    assert k_appear or k_disappear
    got = rule(result, "parity", "accuracy")
    assert windows(got["appear"]) - {"period"} == p_appear and windows(got["disappear"]) - {"period"} == p_disappear
    period_alert = parity["gap"] > tol
    assert ("period" in windows(got["appear"])) == (period_alert and parity["status"] == "ok")


def test_changed_statistics_and_new_rules_are_refused_removed_rules_disappear(monitored):
    project, stored = monitored
    topic = next(d for d in stored["drift"] if d["name"] == "topic_mix")
    r = run_cli("whatif", "monitor", "monitor.drift.input_length_psi.n_bins=5", "~monitor.drift.topic_mix",
                "+monitor.drift.latency_psi={feature: latency_ms, test: psi, threshold: 0.1}",
                "monitor.drift.output_length_sigma.sigma=2", "out=w.json", cwd=project)
    assert r.code == 1, r
    result = valid(r.json)
    n_bins = rule(result, "drift", "input_length_psi")
    assert n_bins["status"] == "refused" and "rule.n_bins 10 -> 5" in n_bins["reason"]
    new = rule(result, "drift", "latency_psi")
    assert new["status"] == "refused" and "new drift rule" in new["reason"]
    sigma = rule(result, "drift", "output_length_sigma")
    assert sigma["status"] == "refused" and "sigma" in sigma["reason"]
    removed = rule(result, "drift", "topic_mix")
    assert removed["status"] == "removed"
    assert windows(removed["disappear"]) == {w["window"] for w in topic["windows"] if w["alert"]} != set()
    s = result["summary"]
    assert s["refused_rules"] == 3
    assert s["alerts_before"] == sum(r["alerts"]["before"] for r in result["rules"] if r["status"] != "refused")
    assert "3 rule(s) could not be replayed" in result["summary_line"]


def test_a_run_without_its_stored_policy_is_matched_by_config_hash_or_refused(monitored, tmp_path):
    src, _ = monitored
    project = tmp_path / "p"
    shutil.copytree(src, project)
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"))
    con.execute("DELETE FROM monitor_policies")
    con.close()
    # the edited policy's hash matches no run: what the stored statistics measured is unknown
    r = run_cli("whatif", "monitor", "monitor.drift.topic_mix.threshold=0.5", "out=w.json", cwd=project)
    assert r.code == 1, r
    assert all(x["status"] == "refused" for x in r.json["rules"])
    assert "no stored policy and its config hash matches no policy at hand" in r.json["rules"][0]["reason"]
    # against the current config (unedited), whose hash is the run's: replayable
    r = run_cli("whatif", "monitor", "monitor.drift.topic_mix.threshold=0.5", "against=current", "out=w2.json",
                cwd=project)
    assert r.code in (0, 1), r
    assert valid(r.json)["summary"]["refused_rules"] == 0
    assert r.json["against"]["source"] == "current"


def test_since_keeps_later_windows(monitored):
    project, stored = monitored
    first = min(w["window"] for d in stored["drift"] for w in d["windows"])
    since = (date.fromisoformat(first[:10]) + timedelta(days=3)).isoformat()
    r = run_cli("whatif", "monitor", f"since={since}", "out=w.json", cwd=project)
    assert r.code == 0, r
    assert r.json["history"]["first_window"][:10] == since
