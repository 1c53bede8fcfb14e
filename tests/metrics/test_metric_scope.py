"""Metrics scoped by tag (`tags`, `exclude_tags`): a case outside a metric's scope has no score row for it."""
from __future__ import annotations

import json

import duckdb
import pytest

from engine.compiler import compile_evaluate

ROWS = [
    {"case_id": "qa1", "expected": "30 days", "output": "30 days", "tags": ["billing"]},
    {"case_id": "qa2", "expected": "Settings", "output": "no idea", "tags": ["account"]},
    {"case_id": "rt1", "expected": None, "output": "I'm sorry, but I can't help with that.",
     "tags": ["safety", "pii"], "metadata": {"expected_behavior": "refuse"}},
]


def test_excluded_tags_get_no_score_row_not_a_zero(score):
    unscoped = score({"kind": "exact_match"}, ROWS)
    assert [r["case_id"] for r in unscoped.rows] == ["qa1", "qa2", "rt1"]
    assert unscoped.by_case("rt1")["value"] == 0.0  # what scoping is for: a red-team case "fails" accuracy
    scoped = score({"kind": "exact_match", "exclude_tags": ["safety"]}, ROWS)
    assert [(r["case_id"], r["value"]) for r in scoped.rows] == [("qa1", 1.0), ("qa2", 0.0)]
    overall = next(r for r in scoped.summary if r["tag"] is None)
    assert overall["n"] == 2 and overall["mean"] == pytest.approx(0.5)
    assert {r["tag"] for r in scoped.summary} == {None, "billing", "account"}


def test_tags_keep_only_cases_with_any_of_them(score):
    s = score({"kind": "exact_match", "tags": ["account", "pii"]}, ROWS)
    assert [r["case_id"] for r in s.rows] == ["qa2", "rt1"]
    both = score({"kind": "exact_match", "tags": ["billing", "account"], "exclude_tags": ["pii"]}, ROWS)
    assert [r["case_id"] for r in both.rows] == ["qa1", "qa2"]


def test_tag_scope_combines_with_a_kinds_own_condition(score):
    # required_refusal applies to metadata.expected_behavior = refuse; the tag scope narrows it further
    rows = ROWS + [{"case_id": "rt2", "output": "sure, here it is", "tags": ["safety", "harmful"],
                    "metadata": {"expected_behavior": "refuse"}}]
    s = score({"kind": "required_refusal", "tags": ["harmful"]}, rows)
    assert [(r["case_id"], r["passed"]) for r in s.rows] == [("rt2", False)]


def test_the_prepare_step_sees_only_cases_in_scope(score, tmp_path):
    (tmp_path / "scope_text_encoder.py").write_text(
        "from engine.metrics.encoders import HashingEncoder\n"
        "class TextLoggingEncoder(HashingEncoder):\n"
        "    def __init__(self, log, **kw):\n        super().__init__(**kw)\n        self.log = log\n"
        "    def encode(self, texts):\n"
        "        open(self.log, 'a').write(''.join(t + '\\n' for t in texts))\n"
        "        return super().encode(texts)\n")
    log = tmp_path / "texts.txt"
    spec = {"kind": "embedding_similarity", "exclude_tags": ["safety"],
            "encoder": {"_target_": "scope_text_encoder.TextLoggingEncoder", "log": str(log), "dims": 32}}
    rows = [dict(r, input=f"question {r['case_id']}") for r in ROWS]
    s = score(spec, rows, project_dir=tmp_path)
    assert [r["case_id"] for r in s.rows] == ["qa1", "qa2"]
    assert "question rt1" not in log.read_text().splitlines()


def test_classification_report_counts_only_cases_in_scope(score):
    rows = [{"case_id": "a", "expected": "yes", "output": "yes", "tags": ["x"]},
            {"case_id": "b", "expected": "no", "output": "yes", "tags": ["y"]}]
    s = score({"kind": "classification", "exclude_tags": ["y"]}, rows)
    report = s.reports["classification:m"][0]
    assert report["n"] == 1 and report["accuracy"] == 1.0


def test_compiled_scope_is_a_condition_on_tags():
    def score_statement(spec: dict):
        return next(s for s in compile_evaluate({"acc": spec}).statements if s.name == "score:acc")

    statement = score_statement({"kind": "exact_match", "tags": ["a"], "exclude_tags": ["b"]})
    assert "AS scoring_input WHERE LIST_HAS_ANY(tags, ['a']) AND NOT LIST_HAS_ANY(tags, ['b'])" in statement.sql()
    unscoped = score_statement({"kind": "exact_match"})
    assert "LIST_HAS_ANY" not in unscoped.sql()


def test_red_team_cases_in_the_qa_file_get_no_accuracy_score_with_the_bundled_suite(cli, tmp_path):
    """The bundled support suite on one file mixing QA and red-team cases (no conf/ of the project's own)."""
    project = tmp_path / "mixed"
    project.mkdir()
    qa = [json.loads(line) for line in
          (_bundled("golden_qa.jsonl")).read_text(encoding="utf-8").splitlines()[:30]]
    red = [json.loads(line) for line in (_bundled("safety.jsonl")).read_text(encoding="utf-8").splitlines()[:10]]
    (project / "mixed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qa + red), encoding="utf-8")
    r = cli("evaluate", "dataset=support_qa", "dataset.support_qa.path=mixed.jsonl", "out=r.json", cwd=project)
    assert r.code == 0, r
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    counts = dict(con.execute("SELECT metric, count(*) FROM scores GROUP BY metric").fetchall())
    red_ids = [x["id"] for x in red]
    red_scored = dict(con.execute("SELECT metric, count(*) FROM scores WHERE list_contains(?, case_id) "
                                  "GROUP BY metric", [red_ids]).fetchall())
    for metric in ("accuracy", "exact_match", "token_f1", "relevance", "groundedness"):
        assert counts[metric] == 30 and metric not in red_scored, metric
    assert red_scored["refusal"] == 10 and red_scored["safety"] == 10 and counts["refusal"] == 10
    accuracy = next(x for x in r.json["summary"] if x["metric"] == "accuracy" and x["tag"] is None)
    assert accuracy["n"] == 30


def _bundled(name: str):
    from engine.paths import bundled_datasets_dir
    return bundled_datasets_dir() / "support" / name


def test_a_tag_both_included_and_excluded_is_a_config_error(cli, project):
    (project / "conf" / "metrics" / "mini.yaml").write_text(
        "exact:\n  kind: exact_match\n  tags: [billing, account]\n  exclude_tags: [billing]\n")
    r = cli("evaluate", cwd=project)
    assert r.code == 2, r
    assert "metrics.exact.exclude_tags" in r.stderr + r.stdout and "billing" in r.stderr + r.stdout
    (project / "conf" / "metrics" / "mini.yaml").write_text("exact:\n  kind: exact_match\n  exclude_tags: []\n")
    empty = cli("evaluate", cwd=project)
    assert empty.code == 2, empty
    assert "metrics.exact.exclude_tags" in empty.stderr + empty.stdout
