"""`flywheel evaluate backend=spark` stores what `flywheel evaluate` stores, and the gate decides the same.

One small project (`flywheel init`, its cases extended with Unicode answers, a metric suite of cheap SQL kinds plus
a classification (its report runs on the store), a `kind: sql` expression and `embedding_similarity`, which Spark
refuses and which then runs on the store): the baseline model is evaluated on Spark and on DuckDB and the stored scores are compared row by
row (value within 1e-9 relative, passed and detail exactly), the results' summaries and reports likewise; the gate
reads the Spark run's stored scores and the DuckDB run's against one challenger run and decides the same; and
run_results.json of the Spark run shows every scoring statement Spark ran, in the plan, with its time. Runs in this
process, on the suite's one Spark session (one Spark evaluate: the Spark jobs are what costs)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import pytest

from engine import api, cli
from engine.sql import Statement, parse
from tests.parity.harness import assert_same_rows, load_tables, run_duckdb, run_spark

UNICODE_CASES = [
    {"id": "u01", "input": "Combien coûte le café?", "expected": "café crème", "tags": ["billing"]},
    {"id": "u02", "input": "東京 までの配送は?", "expected": "3〜5日", "tags": ["shipping"]},
    {"id": "u03", "input": "Wie lang ist die Straße?", "expected": "STRASSE", "tags": ["shipping"]},
    {"id": "u04", "input": "مرحبا، هل تشحنون؟", "expected": "نعم", "tags": ["shipping"]},
]
ANSWERS = {"café": "Un café crème coûte 3 € — ça va? ÉTÉ naïve",
           "東京": "東京へは3〜5日で届きます。",
           "straße": "Die STRASSE ist 12,5 km lang (ß/ẞ).",
           "مرحبا": "\u200fنعم، نشحن إلى 40 دولة"}
METRICS = """
accuracy: {kind: contains, normalizer: lower_strip, datasets: [golden]}
label: {kind: classification, datasets: [golden]}
long_answer: {kind: sql, expression: "length(output_text) > 30"}
similar: {kind: embedding_similarity, datasets: [golden]}
safety:
  kind: safety
  packs:
    denylist: [{name: insults, category: toxicity, terms: [idiot, stupid]}]
refusal: {kind: required_refusal}
error_rate: {kind: error_rate}
latency: {kind: latency}
"""
SCORES = "SELECT metric, dataset, case_id, repeat, value, passed, detail FROM scores WHERE run_id = ?"


@pytest.fixture(scope="module")
def project(spark, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evaluate-on-spark")
    project = root / "p"
    assert cli.main(["init", str(project)]) == 0
    with open(project / "data" / "golden.jsonl", "a", encoding="utf-8") as f:
        f.writelines(json.dumps(c, ensure_ascii=False) + "\n" for c in UNICODE_CASES)
    for model in ("my_model", "my_model_v2"):
        path = project / "conf" / "model" / f"{model}.yaml"
        text = path.read_text(encoding="utf-8")
        extra = "".join(f"    {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}\n"
                        for k, v in ANSWERS.items())
        path.write_text(text.replace("  answers:\n", "  answers:\n" + extra, 1), encoding="utf-8")
    (project / "conf" / "metrics" / "my_metrics.yaml").write_text(METRICS, encoding="utf-8")
    return project


@pytest.fixture(scope="module")
def runs(project) -> dict:
    """(engine, model) -> the evaluate result: the baseline on both engines (on Spark through the CLI, for its run
    artifacts), the challenger on DuckDB."""
    target = project / "spark.json"
    code = cli.main(["evaluate", "backend=spark", f"out={target}", "run.progress=false", "--project", str(project)])
    out = {("spark", "my_model"): {**json.loads(target.read_text(encoding="utf-8")), "exit_code": code}}
    for model in ("my_model", "my_model_v2"):
        out["duckdb", model] = api.run("evaluate", [f"model={model}"], project)
    assert {r["exit_code"] for r in out.values()} == {0}, out
    return out


def _scores(project: Path, run_id: str) -> dict:
    with duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True) as con:
        rows = con.execute(SCORES, [run_id]).fetchall()
    return {r[:4]: r[4:] for r in rows}


def _close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return a == b


def test_stored_scores_and_reports_are_the_same_on_both_engines(project, runs):
    spark, duck = runs["spark", "my_model"], runs["duckdb", "my_model"]
    mine, theirs = _scores(project, duck["run_id"]), _scores(project, spark["run_id"])
    assert len(mine) > 40 and mine.keys() == theirs.keys()
    assert {k[0] for k in mine} == set(METRICS_NAMES)
    differ = [(k, mine[k], theirs[k]) for k in mine if not _close(list(mine[k]), list(theirs[k]))]
    assert not differ, differ[:5]
    assert any(isinstance(v[0], float) and 0 < v[0] < 1 for v in mine.values())  # not all 0/1 values
    assert _close(duck["summary"], spark["summary"]) and _close(duck["classification"], spark["classification"])
    assert duck["backend"] == {"name": "duckdb"}
    assert spark["backend"]["name"] == "spark" and spark["backend"]["statements_on_spark"] >= 7
    # Spark refuses embedding_similarity's SQL: scored on the store, which holds the same rows, and said so
    assert list(spark["backend"]["not_portable"]) == ["score:similar"]
    assert "list_cosine_similarity" in spark["backend"]["not_portable"]["score:similar"]


METRICS_NAMES = ("accuracy", "label", "long_answer", "similar", "safety", "refusal", "error_rate", "latency")


def test_gate_decides_the_same_on_the_runs_each_engine_stored(project, runs):
    verdicts = {}
    for backend in ("spark", "duckdb"):
        result = api.run("gate", [f"baseline_run={runs[backend, 'my_model']['run_id']}",
                                  f"challenger_run={runs['duckdb', 'my_model_v2']['run_id']}"], project)
        verdicts[backend] = (result["exit_code"], result["verdict"],
                             [(r["name"], r["status"], r["value"]) for r in result["rules"]])
    assert verdicts["spark"] == verdicts["duckdb"] and len(verdicts["spark"][2]) == 6


def test_run_results_journal_every_statement_spark_ran(project, runs):
    run_id = runs["spark", "my_model"]["run_id"]
    run_dir = project / ".flywheel" / "runs" / run_id.replace(":", "-")
    data = json.loads((run_dir / "run_results.json").read_text(encoding="utf-8"))
    from engine.schemas import all_errors, validator

    assert not all_errors(validator("run_results"), data)
    assert data["schema_version"] == 2 and not data["plan"]["not_run"]
    on_spark = [s for s in data["steps"] if s["engine"] == "spark"]
    names = [s["name"] for s in on_spark]
    assert data["summary"]["on_spark"] == len(on_spark) == runs["spark", "my_model"]["backend"]["statements_on_spark"]
    assert set(names) == {f"score:{m}" for m in METRICS_NAMES if m != "similar"}  # reports, summary: the store
    assert all(s["in_plan"] and s["status"] == "ok" and s["ms"] > 0 and s["rows"] is not None for s in on_spark)
    # each Spark SELECT's rows are written by the store: a DuckDB step of the same name follows it
    local = {s["name"] for s in data["steps"] if s["engine"] == "duckdb"}
    assert {n for n in names if n.startswith("score:")} <= local and "score:similar" in local
    plan_sql = (run_dir / "plan.sql").read_text(encoding="utf-8")
    assert "-- runs on: spark\n-- its rows are inserted into the store's `scores` by DuckDB" in plan_sql
    assert "not portable to Spark: list_cosine_similarity" in plan_sql


def test_averages_and_ordered_lists_mean_on_spark_what_they_mean_on_duckdb(spark):
    """What a classification report needs (engine/dialects/): `avg(CASE WHEN ... THEN 1.0 ELSE 0.0 END)`, a
    DECIMAL average, is DuckDB's DOUBLE, not Spark's DECIMAL rounded to 5 places (double_average); `list(x ORDER BY
    k)` keeps DuckDB's order, its NULL elements and NULL over no rows (ordered_list_aggregate)."""
    import pyarrow as pa

    keys = ["b", None, "é", "a", "東", "Z", "b", None, "ß", "a\u0301", "c", "ü"]
    con = duckdb.connect()
    load_tables(spark, con, {"fw_lists": pa.table({"g": [i % 2 for i in range(12)], "k": keys,
                                                   "x": pa.array([3, 1, None, 4, 1, 5, 9, 2, 6, None, 7, 0],
                                                                 pa.int64())})})
    st = Statement("lists", parse(
        "SELECT g, list(x ORDER BY k, x) AS by_k, list(k ORDER BY k NULLS FIRST, x) AS nulls_first, "
        "list({'k': k, 'x': x} ORDER BY x, k) AS records, "
        "(SELECT list(k ORDER BY k) FROM fw_lists WHERE g > 5) AS none, "
        "avg(CASE WHEN x > 3 THEN 1.0 ELSE 0.0 END) AS share, avg(DISTINCT x / 3) AS third, avg(x) AS mean "
        "FROM fw_lists GROUP BY g"))
    mine, theirs = run_duckdb(con, st), run_spark(spark, st)
    assert mine[0]["none"] is None and any(None in r["by_k"] for r in mine)
    assert all(isinstance(r["share"], float) for r in theirs)
    assert {round(r["share"], 6) for r in mine} == {0.333333, 0.5}
    assert_same_rows(mine, theirs, ["g"], what="ordered_list_aggregate, double_average")
