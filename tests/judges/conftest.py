"""A project with an llm_judge metric, a 41-case dataset with two tags and labels whose agreement with the judge
is known by construction: the judge (a keyword judge that logs its calls) passes "alpha beta" and "alpha", fails
"gamma"; people agree with it on 19 of 20 `easy` answers and on 11 of 20 `hard` ones."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE_PROJECT = REPO / "tests" / "fixtures" / "project"

COUNTING_JUDGE = '''
import json
from engine.demo_models.judges import KeywordJudge


class CountingJudge(KeywordJudge):
    """The keyword judge, appending the size of every batch it is asked to grade to a log file."""

    def __init__(self, log, **params):
        super().__init__(**params)
        self.log = log

    def __call__(self, requests):
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(len(requests)) + "\\n")
        return super().__call__(requests)
'''

METRICS = """quality:
  kind: llm_judge
  datasets: [cal]
  judge:
    name: counting
    adapter: python
    _target_: counting_judge.CountingJudge
    params: {log: judge_calls.log}
  rubric: |
    Grade the answer against the reference. Reply with JSON.
    ### Reference answer
    {expected}
    ### Answer
    {output}
"""

GATE = """reducer: all
rules:
  quality_floor:
    kind: threshold
    metric: quality
    aggregate: mean
    op: ">="
    bound: 0.0
  quality_trusted:
    kind: judge_calibrated
    metric: quality
    min_kappa: 0.6
    min_labels: 10
"""

OUTPUTS = {"alpha beta": (True, 1.0), "alpha": (True, 0.5), "gamma": (False, 0.0)}  # the judge's verdict, score


def label_rows() -> list[dict]:
    """Labels of c01..c40 (one per answer; c01 twice, by two people who agree) and a split vote on c41."""
    rows = []
    for i in range(1, 41):
        tag = "easy" if i % 2 else "hard"
        output = list(OUTPUTS)[i % 3]
        judge_pass = OUTPUTS[output][0]
        k = (i - 1) // 2  # 0..19 within the tag
        flipped = k == 7 if tag == "easy" else k in (0, 2, 4, 6, 8, 10, 12, 14, 16)
        human = judge_pass != flipped
        rows.append({"metric": "quality", "dataset": "cal", "case_id": f"c{i:02d}", "output": output,
                     "verdict": "pass" if human else "fail", "score": (5 if output == "alpha beta" else 4) if human
                     else (1 if output == "gamma" else 2), "labeller": "ann"})
    rows.append({**rows[0], "labeller": "bob", "score": None})
    del rows[-1]["score"]
    rows.append({"metric": "quality", "dataset": "cal", "case_id": "c41", "output": "alpha", "verdict": "pass",
                 "labeller": "ann"})
    rows.append({"metric": "quality", "dataset": "cal", "case_id": "c41", "output": "alpha", "verdict": "fail",
                 "labeller": "bob"})
    return rows


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def make_project(dest: Path) -> Path:
    shutil.copytree(FIXTURE_PROJECT, dest, ignore=shutil.ignore_patterns(".flywheel", "__pycache__"))
    (dest / "counting_judge.py").write_text(COUNTING_JUDGE, encoding="utf-8")
    write_jsonl(dest / "data" / "cal.jsonl", [
        {"id": f"c{i:02d}", "input": f"question {i}", "expected": "alpha beta", "tags": ["easy" if i % 2 else "hard"]}
        for i in range(1, 42)])
    (dest / "conf" / "dataset" / "cal.yaml").write_text("cal:\n  path: data/cal.jsonl\n", encoding="utf-8")
    (dest / "conf" / "metrics" / "judged.yaml").write_text(METRICS, encoding="utf-8")
    (dest / "conf" / "gate" / "judged.yaml").write_text(GATE, encoding="utf-8")
    write_jsonl(dest / "labels.jsonl", label_rows())
    return dest


# every command of these tests selects the judge's suite and the labelled dataset
JUDGED = ("metrics=[mini,judged]", "dataset=[cal]")


@pytest.fixture
def judged_project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


def judge_calls(project: Path) -> list[int]:
    log = project / "judge_calls.log"
    return [int(x) for x in log.read_text().split()] if log.exists() else []
