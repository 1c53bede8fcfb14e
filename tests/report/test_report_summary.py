"""The per-capability summary the gate stores in its result (`per_tag`): intervals and the query over a real gate."""
from __future__ import annotations

import math

import duckdb
import pytest
from jsonschema import Draft202012Validator
from scipy import stats

from engine.report.summary import normal_interval, per_tag_statement, per_tag_summary, wilson_interval
from engine.schemas import load_schema


@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 10), (3, 10), (10, 10), (130, 261), (1, 1000)])
def test_wilson_interval_matches_scipy(k, n):
    expected = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(k / n, n)
    assert (low, high) == pytest.approx((expected.low, expected.high), abs=1e-9)


def test_normal_interval_is_mean_plus_minus_z_standard_errors():
    values = [0.2, 0.4, 0.9, 0.5, 0.7]
    mean, sd = sum(values) / 5, stats.tstd(values)
    low, high = normal_interval(mean, sd, 5)
    assert (low + high) / 2 == pytest.approx(mean)
    assert (high - low) / 2 == pytest.approx(stats.norm.ppf(0.975) * sd / math.sqrt(5))
    assert normal_interval(0.5, None, 1) is None  # one value: no spread, no interval


@pytest.mark.parametrize("reducer,used,unused", [("any", "BOOL_OR(", "BOOL_AND(CAST(s.passed"),
                                                  ("all", "BOOL_AND(CAST(s.passed", "BOOL_OR(")])
def test_a_case_passes_by_the_gate_reducer(reducer, used, unused):
    sql = per_tag_statement(reducer).sql()
    assert used in sql and unused not in sql


def test_gate_result_carries_per_tag_means_with_intervals(cli, project):
    r = cli("gate", "out=gate.json", cwd=project)
    assert r.code == 0, r
    result = r.json
    Draft202012Validator(load_schema("gate_result")).validate(result)
    cells = {(c["metric"], c["tag"], c["side"]): c for c in result["per_tag"]["rows"]}
    assert result["per_tag"]["confidence"] == 0.95
    # mini.jsonl: m1 and m5 are billing; the baseline gets m5's price wrong, the challenger right
    billing_b, billing_c = cells[("found", "billing", "baseline")], cells[("found", "billing", "challenger")]
    assert (billing_b["n"], billing_b["mean"], billing_c["mean"]) == (2, 0.5, 1.0)
    assert billing_b["method"] == "wilson"
    assert (billing_b["ci_low"], billing_b["ci_high"]) == pytest.approx(wilson_interval(0.5, 2))
    # all cases (tag null): 5 cases; m4 crashes the model for both sides (an errored case fails)
    overall_b, overall_c = cells[("found", None, "baseline")], cells[("found", None, "challenger")]
    assert (overall_b["n"], overall_b["mean"], overall_c["mean"]) == (5, pytest.approx(0.6), pytest.approx(0.8))
    # the no_regression rule's own per-tag means agree with the summary
    rule = next(x for x in result["rules"] if x["kind"] == "no_regression")
    for t in rule["stats"]["per_tag"]:
        assert cells[("found", t["tag"], "baseline")]["mean"] == pytest.approx(t["b_mean"])
        assert cells[("found", t["tag"], "challenger")]["mean"] == pytest.approx(t["c_mean"])
    # a run compared with itself still has both sides, cell for cell
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    run = result["challenger"]["run_id"]
    same = per_tag_summary(con, run, run)["rows"]
    sides = {side: [{k: v for k, v in c.items() if k != "side"} for c in same if c["side"] == side]
             for side in ("baseline", "challenger")}
    assert sides["baseline"] == sides["challenger"] == [
        {k: v for k, v in c.items() if k != "side"} for c in result["per_tag"]["rows"] if c["side"] == "challenger"]
