"""The metric library end to end: `flywheel evaluate` as a subprocess on a copy of the test project."""
from __future__ import annotations

import json

import duckdb
import pytest

EXTRA = """
f1:
  kind: token_f1
days:
  kind: regex_match
  pattern: '[0-9]+ days'
number:
  kind: numeric_close
label:
  kind: classification
relevance:
  kind: lexical_relevance
grounded:
  kind: lexical_groundedness
similar:
  kind: embedding_similarity
  encoder: {_target_: engine.metrics.encoders.HashingEncoder, dims: 64}
safe:
  kind: safety
  packs:
    canary:
      - {name: token, category: prompt_injection, pattern: 'SECRET-[0-9]+'}
refuse:
  kind: required_refusal
latency:
  kind: latency
cost:
  kind: cost
tokens:
  kind: tokens
  which: prompt
length:
  kind: output_length
  unit: words
errors:
  kind: error_rate
short:
  kind: sql
  expression: "length(output_text) < 10 AND completion_tokens = 3"
judged:
  kind: llm_judge
  judge:
    name: kw
    adapter: python
    _target_: engine.demo_models.judges.KeywordJudge
"""


@pytest.fixture
def extra_project(project):
    (project / "conf" / "metrics" / "extra.yaml").write_text(EXTRA)
    return project


def _overall(result: dict, metric: str) -> dict:
    return next(r for r in result["summary"] if r["metric"] == metric and r["tag"] is None)


def test_every_kind_through_the_cli(cli, extra_project):
    r = cli("evaluate", "metrics=[mini,extra]", "out=result.json", cwd=extra_project)
    assert r.code == 0, r
    result = r.json
    # mini: m1 "30 days" right, m2 "Go to Settings > Security." vs "Settings > Security", m3 "Yes" right,
    # m4 errored, m5 "$15 per user" vs "$12 per user"
    assert _overall(result, "days")["mean"] == pytest.approx(1 / 5)
    assert _overall(result, "number")["mean"] == pytest.approx(1 / 5)  # only m1: 30 = 30
    assert _overall(result, "errors")["mean"] == pytest.approx(1 / 5)
    assert _overall(result, "short")["mean"] == pytest.approx(2 / 5)  # "30 days", "Yes"; m4 errored fails
    assert _overall(result, "safe")["pass_rate"] == pytest.approx(4 / 5)  # the errored case fails
    assert "refuse" not in {s["metric"] for s in result["summary"]}  # no red-team case: nothing applicable
    assert result["aggregates"]["latency"] == "p95"
    label = result["classification"]["label"]
    assert [(x["dataset"], x["n"], x["accuracy"], x["macro_f1"]) for x in label] == [("mini", 5, 0.4, 0.4)]
    assert {"expected": "anything", "predicted": "(none)", "n": 1} in label[0]["confusion"]
    assert "macro-F1 0.400" in r.stdout
    assert "judged" in {s["metric"] for s in result["summary"]}


def test_judge_and_encoder_results_are_cached_across_runs(cli, extra_project):
    assert cli("evaluate", "metrics=[mini,extra]", cwd=extra_project).code == 0
    con = duckdb.connect(str(extra_project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    first = con.execute("SELECT count(*), count(DISTINCT run_id) FROM outputs WHERE model_fingerprint IN "
                        "(SELECT judge_fingerprint FROM judgements)").fetchall()
    n_vectors = con.execute("SELECT count(*) FROM embeddings").fetchall()
    con.close()
    assert first == [(4, 1)]  # 4 non-errored cases judged, by one run
    assert cli("evaluate", "metrics=[mini,extra]", cwd=extra_project).code == 0
    con = duckdb.connect(str(extra_project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT run_id) FROM outputs WHERE model_fingerprint IN "
                       "(SELECT judge_fingerprint FROM judgements)").fetchall() == first  # no new judge call
    assert con.execute("SELECT count(*) FROM embeddings").fetchall() == n_vectors
    assert con.execute("SELECT count(DISTINCT run_id) FROM judgements").fetchall() == [(2,)]
    con.close()


BAD = """
rule:
  kind: sql
  expression: "output_text = (SELECT max(output_text) FROM outputs)"
pattern:
  kind: regex_match
  pattern: '(?<=x)y'
rubric:
  kind: llm_judge
  judge: {name: kw, adapter: python, _target_: engine.demo_models.judges.KeywordJudge}
  rubric: "{output.__class__}"
"""


def test_bad_metric_values_are_config_errors(cli, project):
    (project / "conf" / "metrics" / "bad.yaml").write_text(BAD)
    r = cli("evaluate", "metrics=[mini,bad]", cwd=project)
    assert r.code == 2, r
    assert "Traceback" not in r.stderr
    assert "metrics.rule.expression: subqueries are not allowed" in r.stderr
    assert "metrics.rule.expression: table references are not allowed" in r.stderr
    assert "metrics.pattern.pattern: not a valid RE2 pattern" in r.stderr
    assert "metrics.rubric.rubric: unknown rubric placeholder {output.__class__}" in r.stderr
    assert not (project / ".flywheel").exists()  # rejected before the store is opened


def test_classification_result_matches_its_schema(cli, project):
    (project / "conf" / "metrics" / "labels.yaml").write_text("label:\n  kind: classification\n  labels: ['yes']\n"
                                                             "err:\n  kind: regression\n")
    r = cli("evaluate", "metrics=[mini,labels]", "out=r.json", cwd=project)
    assert r.code == 0, r  # write_out validates the result against schemas/evaluate_result.schema.json
    result = json.loads((project / "r.json").read_text())
    assert [c["label"] for c in result["classification"]["label"][0]["per_class"]] == ["yes"]
    assert result["regression"]["err"][0]["n_predicted"] == 2  # "30 days" vs 30, "$15 per user" vs 12
    assert result["regression"]["err"][0]["mae"] == pytest.approx(1.5)


NOT_PORTABLE_REGEX = r"""
nested:
  kind: regex_match
  pattern: '(a+)+b'
multiline:
  kind: safety
  packs: {p: [{name: r, category: c, pattern: '(?m)^secret$'}]}
from_data:
  kind: sql
  expression: "regexp_matches(output_text, input_text)"
in_sql:
  kind: sql
  expression: "regexp_matches(output_text, '(x|xy)*z')"
"""


def test_regexes_that_would_differ_on_spark_are_config_errors(cli, project):
    """On Spark a metric's regex must mean the same as on DuckDB (RE2 vs Java): refused with its key path. On
    DuckDB alone RE2 runs them (in linear time), so the same config is accepted there."""
    (project / "conf" / "metrics" / "bad.yaml").write_text(NOT_PORTABLE_REGEX)
    assert cli("compile", "evaluate", "metrics=[mini,bad]", cwd=project).code == 0
    r = cli("compile", "evaluate", "metrics=[mini,bad]", "backend=spark", cwd=project)
    assert r.code == 2, r
    assert "Traceback" not in r.stderr
    assert "metrics.nested.pattern: pattern '(a+)+b' would not mean the same on Spark: a repetition inside" \
        in r.stderr
    assert "metrics.multiline.packs.p[0].pattern: pattern '(?m)^secret$' would not mean the same on Spark: " \
           "multi-line mode" in r.stderr
    assert "metrics.from_data.expression: regexp_matches(): the pattern must be a string literal on Spark" \
        in r.stderr
    assert "metrics.in_sql.expression: pattern '(x|xy)*z' would not mean the same on Spark: alternatives" \
        in r.stderr
