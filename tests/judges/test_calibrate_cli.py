"""`flywheel judges import | calibrate | history` through the real CLI: labels stored with provenance, agreement per
judge fingerprint and tag against scikit-learn and scipy, the judge cache (zero repeat calls), JSON/HTML output."""
from __future__ import annotations

import duckdb
import pytest
from jsonschema import Draft202012Validator
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from engine.schemas import load_schema
from tests.conftest import run_cli
from tests.judges.conftest import JUDGED, OUTPUTS, judge_calls, label_rows, write_jsonl


def expected_vectors(tag: str | None) -> tuple[list[bool], list[bool], list[float], list[float]]:
    """(human verdicts, judge verdicts, human scores, judge scores) per answer, from the label rows themselves."""
    per_case: dict[str, list[dict]] = {}
    for r in label_rows():
        per_case.setdefault(r["case_id"], []).append(r)
    human, judge, h_scores, j_scores = [], [], [], []
    for case_id, rows in per_case.items():
        if tag and tag != ("easy" if int(case_id[1:]) % 2 else "hard"):
            continue
        votes = [r["verdict"] == "pass" for r in rows]
        passed, score = OUTPUTS[rows[0]["output"]]
        scores = [r["score"] for r in rows if "score" in r]
        if scores:
            h_scores.append(sum(scores) / len(scores))
            j_scores.append(score)
        if votes.count(True) != votes.count(False):  # a tie between people is left out of the verdicts
            human.append(votes.count(True) > votes.count(False))
            judge.append(passed)
    return human, judge, h_scores, j_scores


def query(project, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_calibration_matches_references_per_tag_and_repeats_without_judge_calls(judged_project):
    project = judged_project
    r = run_cli("judges", "calibrate", *JUDGED, "judges.labels=[labels.jsonl]", "out=cal.json", "report=cal.html",
                cwd=project)
    assert r.code == 0, r
    result = r.json
    Draft202012Validator(load_schema("judges_result")).validate(result)
    assert result["imports"][0]["read"] == 43 and result["imports"][0]["inserted"] == 43
    judge = result["judges"][0]
    assert judge["metric"] == "quality" and judge["answers"] == 41 and judge["labels"] == 43
    slices = {s["slice"]: s for s in judge["slices"]}
    assert list(slices) == ["*", "easy", "hard"]
    for name, tag in (("*", None), ("easy", "easy"), ("hard", "hard")):
        human, judged, h_scores, j_scores = expected_vectors(tag)
        s = slices[name]
        assert s["n_labels"] == len(human) and s["n_scored"] == len(h_scores)
        assert s["kappa"] == pytest.approx(cohen_kappa_score(human, judged), abs=1e-9)
        assert s["accuracy"] == pytest.approx(sum(h == j for h, j in zip(human, judged)) / len(human))
        assert s["spearman"] == pytest.approx(stats.spearmanr(h_scores, j_scores).statistic, abs=1e-9)
        c = s["confusion"]
        assert c["human_pass"]["judge_pass"] == sum(h and j for h, j in zip(human, judged))
        assert c["human_pass"]["judge_fail"] == sum(h and not j for h, j in zip(human, judged))
        assert c["human_fail"]["judge_pass"] == sum(j and not h for h, j in zip(human, judged))
        assert s["kappa_ci"]["low"] <= s["kappa"] <= s["kappa_ci"]["high"]
    assert slices["easy"]["ties"] == 1 and slices["hard"]["ties"] == 0  # c41: ann pass, bob fail
    assert slices["easy"]["kappa"] > 0.8 and slices["hard"]["kappa"] < 0.2
    assert judge["n_disagreements"] == 1 + 9 == len(judge["disagreements"])
    # the rubric shows the reference and the answer only: 41 answers are 3 distinct prompts, each asked once
    assert judge["calls"] == {"needed": 3, "cached": 0, "called": 3, "errors": 0}
    assert sum(judge_calls(project)) == 3
    html = (project / "cal.html").read_text(encoding="utf-8")
    assert "Judge calibration" in html and "hard" in html and f"{slices['hard']['kappa']:.3f}" in html

    again = run_cli("judges", "calibrate", *JUDGED, "judges.labels=[labels.jsonl]", "out=cal2.json", cwd=project)
    assert again.code == 0, again
    assert again.json["imports"][0]["unchanged"] == 43 and again.json["imports"][0]["inserted"] == 0
    assert again.json["judges"][0]["calls"]["called"] == 0 and sum(judge_calls(project)) == 3  # all cached
    assert again.json["judges"][0]["slices"] == judge["slices"]  # the seeded interval is reproduced exactly
    # a time series: one row per calibration and slice, both calibrations of the same judge fingerprint
    rows = query(project, "SELECT calibration_id, judge_fingerprint, slice, kappa FROM judge_calibrations "
                          "ORDER BY calibrated_at, slice")
    assert len(rows) == 6 and len({r[0] for r in rows}) == 2 and len({r[1] for r in rows}) == 1
    assert rows[0][1] == judge["judge"]["fingerprint"]
    history = run_cli("judges", "history", "quality", *JUDGED, "out=history.json", cwd=project)
    assert history.code == 0, history
    Draft202012Validator(load_schema("judges_result")).validate(history.json)
    assert [h["calibration_id"] for h in history.json["calibrations"]][:3] == [again.json["calibration_id"]] * 3


def test_labels_are_stored_with_provenance_and_reimports_change_nothing(judged_project):
    project = judged_project
    first = run_cli("judges", "import", "labels.jsonl", *JUDGED, "out=imp.json", cwd=project)
    assert first.code == 0, first
    Draft202012Validator(load_schema("judges_result")).validate(first.json)
    batch = first.json["imports"][0]
    assert (batch["read"], batch["inserted"], batch["updated"], batch["unchanged"]) == (43, 43, 0, 0)
    row = query(project, "SELECT item_kind, dataset, item_id, output_text, output_source, verdict, score, labeller, "
                         "source_line, batch_id FROM judge_labels WHERE item_id = 'c02'")
    assert row == [("case", "cal", "c02", "gamma", "label", "pass", 4.0, "ann", 2, batch["batch_id"])]
    version = query(project, "SELECT DISTINCT dataset_version FROM judge_labels")
    assert len(version) == 1 and query(project, "SELECT count(*) FROM cases WHERE dataset_version = ? AND "
                                                "case_id = 'c02'", [version[0][0]]) == [(1,)]
    # ann changes her mind about c02 and the second file repeats everything else
    rows = label_rows()
    rows[1]["verdict"] = "fail"
    write_jsonl(project / "labels_v2.jsonl", rows)
    second = run_cli("judges", "import", "labels.jsonl", "labels_v2.jsonl", *JUDGED, "out=imp2.json", cwd=project)
    assert second.code == 0, second
    same, changed = second.json["imports"]
    assert (same["inserted"], same["updated"], same["unchanged"]) == (0, 0, 43)
    assert (changed["inserted"], changed["updated"], changed["unchanged"]) == (0, 1, 42)
    assert query(project, "SELECT count(*), count(*) FILTER (WHERE item_id = 'c02' AND verdict = 'fail') "
                          "FROM judge_labels") == [(43, 1)]
    assert query(project, "SELECT count(*), sum(n_read) FROM judge_label_batches") == [(3, 129)]


def test_a_bad_labels_file_is_refused_whole_with_every_line_named(judged_project):
    project = judged_project
    good = label_rows()[0]
    write_jsonl(project / "bad.jsonl", [
        good,
        '{"metric": "quality", "case_id": "c01", NaN}',
        {**good, "case_id": "nope"},
        {**good, "trace_id": "t1"},
        {k: v for k, v in good.items() if k != "labeller"},
        {**good, "verdict": "maybe"},
        {**good, "dataset": "elsewhere"},
        {k: v for k, v in good.items() if k not in ("verdict", "score")},
        {**good, "colour": "red"},
    ])
    r = run_cli("judges", "import", "bad.jsonl", *JUDGED, cwd=project)
    assert r.code == 2, r
    assert "8 bad label record(s); nothing was imported" in r.stderr and "Traceback" not in r.stderr
    reported = dict(line.strip().split(": ", 1) for line in r.stderr.splitlines()[1:] if line.strip())
    assert reported == {
        "bad.jsonl:2": "invalid JSON: Expecting property name enclosed in double quotes (column 41)",
        "bad.jsonl:3": reported["bad.jsonl:3"], "bad.jsonl:4": reported["bad.jsonl:4"],
        "bad.jsonl:5": "`labeller` is required: who gave this verdict",
        "bad.jsonl:6": "verdict 'maybe' is not pass or fail",
        "bad.jsonl:7": "dataset 'elsewhere' is not selected (selected: cal)",
        "bad.jsonl:8": "give `verdict` (pass | fail) and/or `score`",
        "bad.jsonl:9": reported["bad.jsonl:9"]}
    assert reported["bad.jsonl:3"].startswith("no case 'nope' in dataset 'cal' (version ")
    assert reported["bad.jsonl:4"].startswith("give exactly one of case_id (a golden case) or trace_id")
    assert reported["bad.jsonl:9"].startswith("unknown key 'colour'; available: case_id, dataset")
    assert query(project, "SELECT count(*) FROM judge_labels") == [(0,)]


def test_a_label_on_a_stored_run_output_reuses_the_evaluation_judge_answer(judged_project):
    project = judged_project
    ev = run_cli("evaluate", "model=lookup", *JUDGED, "out=ev.json", cwd=project)
    assert ev.code == 0, ev
    asked = sum(judge_calls(project))
    assert asked == 1  # the lookup model answers "I don't know" to every c-case: one distinct judge prompt
    run_id = ev.json["run_id"]
    write_jsonl(project / "run_labels.jsonl", [
        {"metric": "quality", "dataset": "cal", "case_id": f"c{i:02d}", "run_id": run_id, "verdict": "fail",
         "labeller": "ann"} for i in range(1, 11)])
    r = run_cli("judges", "calibrate", *JUDGED, "judges.labels=[run_labels.jsonl]", "out=cal.json", cwd=project)
    assert r.code == 0, r
    assert query(project, "SELECT DISTINCT output_text, output_source FROM judge_labels") == [
        ("I don't know", f"run:{run_id}")]
    judge = r.json["judges"][0]
    assert judge["calls"] == {"needed": 1, "cached": 1, "called": 0, "errors": 0}  # the evaluation asked already
    assert sum(judge_calls(project)) == asked
    overall = judge["slices"][0]
    assert overall["n_labels"] == 10 and overall["accuracy"] == 1.0
    assert overall["kappa"] is None  # people and judge failed everything: agreement is unmeasured, not perfect


def test_calibrate_without_a_judge_or_without_labels_is_a_user_error(judged_project):
    project = judged_project
    no_judge = run_cli("judges", "calibrate", "dataset=[cal]", cwd=project)
    assert no_judge.code == 2 and "no llm_judge metric is selected" in no_judge.stderr, no_judge
    no_labels = run_cli("judges", "calibrate", *JUDGED, cwd=project)
    assert no_labels.code == 2 and "no labels for quality" in no_labels.stderr, no_labels
    usage = run_cli("judges", "calibrate", "extra", *JUDGED, cwd=project)
    assert usage.code == 2 and "usage: flywheel judges" in usage.stderr, usage
    assert not (project / ".flywheel" / "flywheel.duckdb").exists() or \
        query(project, "SELECT count(*) FROM judge_calibrations") == [(0,)]


def test_the_judges_section_is_validated(judged_project):
    r = run_cli("judges", "calibrate", *JUDGED, "judges.metrics=[exact]", "judges.bootstrap.level=2",
                "judges.traces.start=yesterday", cwd=judged_project)
    assert r.code == 2, r
    assert "3 problem(s) in the configuration" in r.stderr
    assert "judges.metrics[0]: 'exact' is not a selected llm_judge metric" in r.stderr
    assert "judges.bootstrap.level" in r.stderr
    assert "judges.traces.start: 'yesterday' is not an ISO date or date-time" in r.stderr
