"""The loop through production, with the real CLI: `judges score` grades traces, the bridge's judge_disagreement
policy sends the disputed ones (and a random share) to the label queue, a person completes it, `judges import`
reads it back as trace labels, and `judges calibrate` measures the judge on them without asking it again."""
from __future__ import annotations

import json

from jsonschema import Draft202012Validator

from engine.schemas import load_schema
from tests.conftest import run_cli
from tests.judges.conftest import judge_calls, write_jsonl

LENGTH_JUDGE = '''
import json


class LengthJudge:
    """Passes answers of at least 5 words (score = words / 10, at most 1); logs its batch sizes."""

    def __init__(self, log):
        self.log = log

    def __call__(self, requests):
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(len(requests)) + "\\n")
        out = []
        for r in requests:
            answer = r.input_text.split("### Answer", 1)[1].split()
            score = min(1.0, len(answer) / 10)
            out.append(json.dumps({"verdict": "pass" if len(answer) >= 5 else "fail", "score": score,
                                   "reason": f"{len(answer)} words"}))
        return out
'''

METRICS = """helpful:
  kind: llm_judge
  datasets: [mini]
  judge: {name: length, adapter: python, _target_: length_judge.LengthJudge, params: {log: judge_calls.log}}
  rubric: "### Question\\n{input}\\n### Answer\\n{output}\\n"
"""

BRIDGE = """out_dir: data/bridge
salt: bridge
policies:
  judge_disputes:
    kind: judge_disagreement
    judge: helpful
    against: [feedback]
    random_share: 0.25
    limit: 8
export: {format: jsonl, layout: chat}
golden: {dataset: mini, from_policies: [judge_disputes], label_queue: true}
"""

ANSWERS = {  # long answers the judge passes, short ones it fails; users disagree on some of each
    "long": "You can change the plan from the billing page at any time today.",
    "short": "Yes.",
}


def traces_and_feedback() -> tuple[list[dict], list[dict]]:
    traces, feedback = [], []
    for i in range(24):
        kind = "long" if i % 2 else "short"
        traces.append({"trace_id": f"t{i:02d}", "timestamp": f"2025-03-01T10:{i:02d}:00Z", "model": "m",
                       "input": f"production question {i}?", "output": ANSWERS[kind] + f" (#{i})",
                       "attributes": {"topic": "billing" if i < 12 else "account"}})
        judge_pass = kind == "long"
        user_happy = judge_pass if i % 3 else not judge_pass  # every third user disagrees with the judge
        feedback.append({"feedback_id": f"f{i:02d}", "trace_id": f"t{i:02d}", "timestamp": f"2025-03-01T11:{i:02d}:00Z",
                         "kind": "thumbs", "thumbs": "up" if user_happy else "down"})
    return traces, feedback


MONITOR = """window: day
reference: {kind: first_days, days: 1}
features:
  input_length: {expr: "length(input)", type: numeric}
drift: {}
online: {rate: 0.1, salt: mini, metrics: []}
kpis: {}
parity: {}
"""

SELECT = ("metrics=[mini,helpful]", "dataset=[mini]", "bridge=judged", "monitor=mini")


def test_disputed_traces_go_to_the_label_queue_and_come_back_as_trace_labels(project):
    (project / "length_judge.py").write_text(LENGTH_JUDGE, encoding="utf-8")
    (project / "conf" / "metrics" / "helpful.yaml").write_text(METRICS, encoding="utf-8")
    for group, text in (("bridge", BRIDGE), ("monitor", MONITOR)):
        (project / "conf" / group).mkdir(exist_ok=True)
        (project / "conf" / group / f"{'judged' if group == 'bridge' else 'mini'}.yaml").write_text(text, encoding="utf-8")
    traces, feedback = traces_and_feedback()
    (project / "prod").mkdir()
    write_jsonl(project / "prod" / "traces.jsonl", traces)
    write_jsonl(project / "prod" / "feedback.jsonl", feedback)
    for kind in ("traces", "feedback"):
        r = run_cli("ingest", f"path=prod/{kind}.jsonl", f"kind={kind}", *SELECT, cwd=project)
        assert r.code == 0, r

    scored = run_cli("judges", "score", *SELECT, "judges.traces.rate=1", "out=score.json", cwd=project)
    assert scored.code == 0, scored
    Draft202012Validator(load_schema("judges_result")).validate(scored.json)
    assert scored.json["sampled"] == 24 and scored.json["judges"][0]["passed"] == 12
    asked = sum(judge_calls(project))
    assert asked == 24

    bridged = run_cli("bridge", *SELECT, "out=bridge.json", cwd=project)
    assert bridged.code == 0, bridged
    assert bridged.json["policies"]["judge_disputes"]["selected"] == 8
    queue_path = bridged.json["golden"]["label_queue"]["path"]
    queue = [json.loads(line) for line in open(queue_path, encoding="utf-8")]
    disputed = {f"t{i:02d}" for i in range(24) if i % 3 == 0}  # 8 traces where the user and the judge disagree
    ids = [q["metadata"]["trace_id"] for q in queue]
    assert len(queue) == 8 and len(set(ids) & disputed) == 6  # 8 - round(8 * 0.25) disputed, 2 at random
    # a person completes the queue: a verdict on every answer but one, one rejected
    for q in queue[:6]:
        long_answer = "change the plan" in q["metadata"]["model_output"]
        q.update(verdict="pass" if long_answer else "fail", labeller="ann", score=4 if long_answer else 2)
    queue[6]["reject"] = True
    write_jsonl(project / "queue_done.jsonl", queue)

    imported = run_cli("judges", "import", "queue_done.jsonl", *SELECT, "out=imp.json", cwd=project)
    assert imported.code == 0, imported
    batch = imported.json["imports"][0]
    assert (batch["read"], batch["inserted"], batch["pending"], batch["metrics"]) == (8, 6, 2, ["helpful"])

    calibrated = run_cli("judges", "calibrate", *SELECT, "out=cal.json", cwd=project)
    assert calibrated.code == 0, calibrated
    judge = calibrated.json["judges"][0]
    assert judge["metric"] == "helpful" and judge["answers"] == 6
    assert judge["calls"]["called"] == 0 and sum(judge_calls(project)) == asked  # graded by `judges score` already
    overall = judge["slices"][0]
    # the disputed answers: 4 long ones users disliked, 2 short ones users liked; the person sides with the judge
    assert (overall["n_labels"], overall["accuracy"], overall["kappa"]) == (6, 1.0, 1.0)
    assert overall["confusion"] == {"human_pass": {"judge_pass": 4, "judge_fail": 0},
                                    "human_fail": {"judge_pass": 0, "judge_fail": 2}}
    assert {s["slice"] for s in judge["slices"]} == {"*", "billing", "account"}
