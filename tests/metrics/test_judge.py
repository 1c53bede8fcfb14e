"""llm_judge: rubric rendering, judge calls through the output cache, fail-closed parsing of verdicts in SQL."""
from __future__ import annotations

import pytest

from engine.config import Project
from engine.demo_models.judges import KeywordJudge, sections
from engine.metrics.base import PrepareContext
from engine.metrics.judge import DEFAULT_RUBRIC, _prepare_judgements, render_rubric, rubric_problems


def judge_spec(mode: str = "json", **extra) -> dict:
    return {"kind": "llm_judge", "judge": {"name": "kw", "adapter": "python",
                                           "_target_": "engine.demo_models.judges.KeywordJudge",
                                           "params": {"mode": mode}}, **extra}


ROWS = [
    {"input": "What is the refund window?", "expected": "30 days", "output": "Refunds within 30 days."},
    {"input": "Where is SSO?", "expected": ["Settings > Security", "the Security page"], "output": "No idea."},
    {"input": "Is there an API?", "expected": "yes", "error": "model timed out"},
]


def test_json_verdicts_become_scores(score):
    s = score(judge_spec(), ROWS)
    assert s.values == [1.0, 0.0, 0.0]
    assert s.passed == [True, False, False]
    assert s.details == ["judge: 100% of the reference answer's words are in the answer",
                         "judge: 0% of the reference answer's words are in the answer", "errored: model timed out"]
    # errored cases are not sent to the judge; every judged row is recorded with the judge's raw answer
    stored = s.store.con.execute("SELECT case_id, response FROM judgements ORDER BY case_id").fetchall()
    assert [c for c, _ in stored] == ["c01", "c02"]
    assert stored[0][1].startswith('{"verdict": "pass"')


@pytest.mark.parametrize("mode,detail", [
    ("garbage", "judge answer is not JSON: Looks "),
    ("fenced", "judge answer is not JSON: ```json"),
    ("missing_verdict", "judge verdict missing or not pass/fail: {\"score\""),
    ("bad_score", "judge score is not a number in [0, 1]: {\"verdict\": "),
])
def test_unparseable_judgements_fail_with_the_reason(score, mode, detail):
    s = score(judge_spec(mode), ROWS[:2])
    assert s.values == [0.0, 0.0]
    assert s.passed == [False, False]
    assert all(d.startswith(detail) for d in s.details), s.details


def test_threshold_on_the_judge_score(score):
    s = score(judge_spec(threshold=0.9), [{"expected": "refund window 30 days", "output": "30 days"},
                                          {"expected": "30 days", "output": "30 days"}])
    assert s.values == [0.5, 1.0]  # verdict pass (>= 0.5) for both, but only one reaches 0.9
    assert s.passed == [False, True]


def test_missing_judgement_fails(score):
    s = score(judge_spec(), ROWS[:1], prepare=False)
    assert s.passed == [False]
    assert s.details == ["no judgement recorded (the judge step did not run)"]


RAISING_JUDGE = '''
import json

class FlakyJudge:
    def __init__(self, log):
        self.log = log

    def __call__(self, requests):
        with open(self.log, "a") as f:
            f.write(json.dumps(len(requests)) + "\\n")
        out = []
        for r in requests:
            if "BROKEN" in r.input_text:
                raise RuntimeError("judge is down")
            out.append('{"verdict": "pass", "score": 1, "reason": "fine"}')
        return out
'''


def test_judge_errors_fail_and_judgements_are_cached(score, tmp_path):
    (tmp_path / "flaky_judge.py").write_text(RAISING_JUDGE)
    log = tmp_path / "calls.jsonl"
    spec = {"kind": "llm_judge", "batch_size": 10, "judge": {
        "name": "flaky", "adapter": "python", "_target_": "flaky_judge.FlakyJudge", "params": {"log": str(log)}}}
    rows = [{"case_id": "a", "output": "fine"}, {"case_id": "b", "output": "fine"},  # the same prompt twice
            {"case_id": "c", "output": "BROKEN"}]
    s = score(spec, rows, project_dir=tmp_path)
    assert s.passed == [True, True, False]
    assert s.details[2] == "judge call failed: RuntimeError: judge is down"
    calls = [int(x) for x in log.read_text().split()]
    assert calls == [2, 1, 1]  # one batch of the 2 distinct prompts fails, then each is retried alone
    # preparing again re-asks only the failed prompt: answered prompts come from the output cache
    _prepare_judgements(PrepareContext(s.store, "run", 1, Project(tmp_path, None)), "m", spec)
    assert [int(x) for x in log.read_text().split()] == [2, 1, 1, 1]


def test_rubric_placeholders_are_values_only():
    assert rubric_problems(DEFAULT_RUBRIC) == []
    assert rubric_problems("{input} {output.__class__} {foo} {output!r} {context:>10}") == [
        "unknown rubric placeholder {output.__class__}; allowed: {input}, {output}, {expected}, {context}",
        "unknown rubric placeholder {foo}; allowed: {input}, {output}, {expected}, {context}",
        "placeholder {output} takes no conversion or format spec",
        "placeholder {context} takes no conversion or format spec"]
    assert rubric_problems("{") != []
    row = {"input_text": "Q {expected}", "output_text": "{input.__class__}", "expected_answers": ["a", "b"],
           "context": ["p1", "p2"]}
    assert render_rubric("{input}|{output}|{expected}|{context}|{{x}}", row) == (
        "Q {expected}|{input.__class__}|a | b|p1\n\np2|{x}")


def test_keyword_judge_reads_the_rubric_sections():
    prompt = render_rubric(DEFAULT_RUBRIC, {"input_text": "How long?", "output_text": "About 30 days.",
                                            "expected_answers": ["thirty days", "30 days"], "context": []})
    assert sections(prompt)["Answer"] == "About 30 days."
    assert KeywordJudge().grade(prompt) == {"verdict": "pass", "score": 1.0,
                                            "reason": "100% of the reference answer's words are in the answer"}
    with pytest.raises(ValueError):
        KeywordJudge(mode="chaos")
