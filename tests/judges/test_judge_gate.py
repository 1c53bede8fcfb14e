"""The gate's `judge_calibrated` rule through the real CLI: fail closed when uncalibrated (unless the policy allows
it), kappa bounds per tag, too few labels, age, fingerprint invalidation by a changed rubric or judge model, and the
config check that no blocking rule rests on an unchecked judge."""
from __future__ import annotations

import pytest
from sklearn.metrics import cohen_kappa_score

from engine.gate.judge_calibrated import judge_calibrated
from engine.gate.rules import RuleContext
from engine.gate.spec import GateSpec, RuleSpec
from tests.conftest import run_cli
from tests.judges.conftest import JUDGED
from tests.judges.test_calibrate_cli import expected_vectors

PAIR = ("gate=judged", "challenger=lookup_better", "baseline=lookup")
RUBRIC_V2 = "metrics.quality.rubric='Is the answer right?\n### Reference answer\n{expected}\n### Answer\n{output}\n'"


def gate(project, *overrides: str, out: str = "gate.json"):
    r = run_cli("gate", *PAIR, *JUDGED, *overrides, f"out={out}", cwd=project)
    assert r.code in (0, 1), r
    return r


def rule(result: dict, name: str) -> dict:
    return next(r for r in result["rules"] if r["name"] == name)


def stored(first) -> tuple[str, str]:
    return (f"baseline_run={first.json['baseline']['run_id']}", f"challenger_run={first.json['challenger']['run_id']}")


def extra_rule(name: str, **fields) -> str:
    body = ", ".join(f"{k}: {v}" for k, v in {"kind": "judge_calibrated", "metric": "quality", **fields}.items())
    return f"+gate.rules.{name}={{{body}}}"


def test_an_uncalibrated_judge_blocks_unless_the_policy_allows_it(judged_project):
    first = gate(judged_project)
    assert first.code == 1 and first.json["blocking_failures"] == ["quality_trusted"]
    trusted = rule(first.json, "quality_trusted")
    assert trusted["status"] == "fail" and "was never calibrated" in trusted["message"]
    assert rule(first.json, "quality_floor")["status"] == "pass"  # the decision itself would have passed
    allowed = gate(judged_project, *stored(first), "++gate.rules.quality_trusted.allow_uncalibrated=true")
    assert allowed.code == 0, allowed
    assert "uncalibrated judge accepted" in rule(allowed.json, "quality_trusted")["message"]


def test_calibrated_kappa_per_tag_labels_and_age_decide(judged_project):
    project = judged_project
    first = gate(project)
    cal = run_cli("judges", "calibrate", *JUDGED, "judges.labels=[labels.jsonl]", cwd=project)
    assert cal.code == 0, cal
    overall = cohen_kappa_score(*expected_vectors(None)[:2])  # 0.47
    r = gate(project, *stored(first),
             extra_rule("easy_trusted", tags="[easy]", min_kappa=0.6, min_labels=10),
             extra_rule("hard_trusted", tags="[hard]", min_kappa=0.6, min_labels=10, allow_uncalibrated="true"),
             extra_rule("both_trusted", tags="[easy, hard]", min_kappa=0.6, min_labels=10),
             extra_rule("many_labels", tags="[easy]", min_kappa=0.6, min_labels=50),
             extra_rule("fresh_only", tags="[easy]", min_kappa=0.6, min_labels=10, max_age_days=0.000001),
             extra_rule("low_bar", min_kappa=0.4, min_labels=10, severity="warn"))
    assert r.code == 1
    results = {x["name"]: x for x in r.json["rules"]}
    assert results["quality_trusted"]["status"] == "fail"
    assert results["quality_trusted"]["value"] == pytest.approx(overall)
    assert f"all labels: kappa {overall:.3f} < 0.6 (40 labels)" in results["quality_trusted"]["message"]
    assert results["low_bar"]["status"] == "pass"
    easy, hard = (cohen_kappa_score(*expected_vectors(t)[:2]) for t in ("easy", "hard"))
    assert results["easy_trusted"]["status"] == "pass" and results["easy_trusted"]["value"] == pytest.approx(easy)
    # a measured bad calibration is never waived, allow_uncalibrated or not
    assert results["hard_trusted"]["status"] == "fail" and results["hard_trusted"]["value"] == pytest.approx(hard)
    assert results["both_trusted"]["status"] == "fail" and results["both_trusted"]["value"] == pytest.approx(hard)
    assert "hard: kappa 0.100 < 0.6" in results["both_trusted"]["message"]
    assert results["many_labels"]["status"] == "fail" and "too few labels (need 50)" in results["many_labels"]["message"]
    assert results["fresh_only"]["status"] == "fail" and "days ago (max" in results["fresh_only"]["message"]
    assert set(r.json["blocking_failures"]) == {"quality_trusted", "hard_trusted", "both_trusted", "many_labels",
                                                "fresh_only"}
    easy_slice = results["easy_trusted"]["stats"]["slices"][0]
    assert easy_slice["slice"] == "easy" and easy_slice["calibration_id"].startswith("calibrate-")


def test_a_changed_rubric_or_judge_model_makes_the_calibration_stale(judged_project):
    project = judged_project
    assert run_cli("judges", "calibrate", *JUDGED, "judges.labels=[labels.jsonl]", cwd=project).code == 0
    low = "gate.rules.quality_trusted.min_kappa=0.4"
    first = gate(project, low, out="first.json")
    assert first.code == 0
    rubric = gate(project, low, RUBRIC_V2, out="rubric.json")
    assert rubric.code == 1
    message = rule(rubric.json, "quality_trusted")["message"]
    assert "stale calibration: the rubric changed since calibrate-" in message
    model = gate(project, low, "+metrics.quality.judge.params.pass_score=0.6", out="model.json")
    assert model.code == 1
    assert "stale calibration: the judge model changed" in rule(model.json, "quality_trusted")["message"]
    # knowingly accepting an uncalibrated judge also covers a stale one (the runs just judged under the changed
    # rubric, gated again from the store); recalibrating clears it properly
    accepted = gate(project, low, RUBRIC_V2, *stored(rubric), "++gate.rules.quality_trusted.allow_uncalibrated=true")
    assert accepted.code == 0, accepted
    assert "uncalibrated judge accepted" in rule(accepted.json, "quality_trusted")["message"]
    assert run_cli("judges", "calibrate", *JUDGED, RUBRIC_V2, cwd=project).code == 0
    again = gate(project, low, RUBRIC_V2, out="again.json")
    assert again.code == 0, again
    fingerprint = {name: rule(r.json, "quality_trusted")["stats"]["judge_fingerprint"]
                   for name, r in (("first", first), ("rubric", rubric), ("model", model), ("again", again))}
    assert fingerprint["again"] == fingerprint["rubric"] and len(set(fingerprint.values())) == 3


@pytest.mark.parametrize("overrides,problem", [
    (("~gate.rules.quality_trusted",), "gate.rules.quality_floor: this blocking rule rests on the llm_judge metric "
                                       "'quality', and no blocking judge_calibrated rule checks that judge"),
    (("+gate.rules.quality_floor.tags=[hard]", "+gate.rules.quality_trusted.tags=[easy]"),
     "no blocking judge_calibrated rule checks that judge on hard"),
    (("++gate.rules.quality_trusted.severity=warn",), "gate.rules.quality_floor: this blocking rule rests on"),
    (("gate.rules.quality_trusted.metric=exact",), "gate.rules.quality_trusted.metric: 'exact' is a exact_match "
                                                   "metric; judge_calibrated checks llm_judge metrics"),
    (("+gate.rules.quality_trusted.datasets=[cal]",), "a calibration is per judge and tag, not per dataset"),
    (("gate.rules.quality_trusted.min_kappa=2",), "gate.rules.quality_trusted.min_kappa"),
])
def test_a_decision_resting_on_an_unchecked_judge_is_a_config_error(judged_project, overrides, problem):
    r = run_cli("compile", "gate", *PAIR, *JUDGED, *overrides, cwd=judged_project)
    assert r.code == 2, r
    assert problem in " ".join(r.stderr.split()), r.stderr


def test_covered_policies_compile_with_the_calibration_queries(judged_project):
    ok = run_cli("compile", "gate", *PAIR, *JUDGED, "++gate.rules.quality_floor.severity=warn",
                 "~gate.rules.quality_trusted", cwd=judged_project)
    assert ok.code == 0, ok  # a warn rule over a judge decides nothing: no calibration rule needed
    r = run_cli("compile", "gate", *PAIR, *JUDGED, cwd=judged_project)
    assert r.code == 0, r
    assert "quality_trusted:judged" in r.stdout and "FROM judgements" in r.stdout
    assert "quality_trusted:calibrations" in r.stdout and "FROM judge_calibrations" in r.stdout


def test_missing_or_mixed_judgements_are_errors_not_passes():
    spec = {"kind": "llm_judge", "judge": {"name": "j", "adapter": "python", "_target_": "x.Y"}}
    rule_cfg = {"kind": "judge_calibrated", "metric": "quality", "min_kappa": 0.5, "allow_uncalibrated": True}
    rule_spec = RuleSpec.of("t", rule_cfg)
    compiled = judge_calibrated(rule_spec, "all", "mean", metrics={"quality": spec})
    ctx = RuleContext(rule_spec, GateSpec.of({}), "mean")
    none = compiled.judge({"judged": [], "calibrations": []}, ctx)
    assert none.status == "error" and "no judgements of 'quality'" in none.message
    mixed = compiled.judge({"judged": [{"model_fingerprint": "a", "n": 3}, {"model_fingerprint": "b", "n": 3}],
                            "calibrations": []}, ctx)
    assert mixed.status == "error" and "different judge models" in mixed.message
    not_a_judge = judge_calibrated(rule_spec, "all", "mean", metrics={"quality": {"kind": "contains"}})
    assert not_a_judge.judge({"judged": [], "calibrations": []}, ctx).status == "error"
