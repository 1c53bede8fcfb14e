"""Ask an llm_judge metric's judge about answers outside an evaluation run: labelled answers (calibration) and
production traces (the bridge's `judge_disagreement` sampler).

The prompt is the metric's own rubric rendered exactly as the metric renders it, and the call goes through the
same output cache (judge model fingerprint, prompt hash): an answer the judge already graded during
`flywheel evaluate`, or during an earlier calibration, is never asked again. The answer is parsed by the
metric's own fail-closed SQL (engine.metrics.judge.parsed_answer), so a verdict here is the verdict the metric
would give, garbage and failed calls included (they fail).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
from sqlglot import exp

from engine.datasets import Case
from engine.judges.fingerprint import JudgeFingerprint, judge_fingerprint, rubric_of
from engine.metrics.judge import parsed_answer, prompt_hash, render_rubric
from engine.provenance import content_hash
from engine.output_identity import output_keys
from engine.runner import CallStats, call_model, missing, needed_table
from engine import journal
from engine.executor import execute
from engine.sql import PythonStep, Statement, param, parse, parse_expression
from engine.store import Store


@dataclass(frozen=True)
class Item:
    """One answer to grade: what the judge's rubric needs, and the keys its verdict is stored under."""

    item_kind: str  # case | trace
    item_key: str  # dataset_version/case_id, or the trace id
    output_hash: str
    input_text: str
    output_text: str
    expected_answers: tuple[str, ...] = ()
    context: tuple[str, ...] = ()


def output_hash(text: str) -> str:
    """Identifies an answer's text: a label and a verdict are about this exact text."""
    return content_hash({"output": text}, length=24)


def current_fingerprint(spec: dict, project_dir: Path) -> tuple[object, JudgeFingerprint]:
    """(adapter, fingerprint) of an llm_judge metric's judge as configured now."""
    from engine.models import build_adapter, fingerprint

    adapter = build_adapter(spec["judge"], project_dir)
    return adapter, judge_fingerprint(fingerprint(adapter), spec)


_VERDICTS = """
SELECT w.item_kind, w.item_key, w.output_hash, w.prompt_hash, __parsed__ AS v
FROM judge_wanted AS w
LEFT JOIN outputs AS o ON o.model_fingerprint = __model__ AND o.output_key = w.prompt_hash AND o.repeat = 0
"""


def verdicts_query(threshold: float | None) -> exp.Expression:
    """Parsed verdicts of the wanted prompts ($judge_model answered them); passes like the metric: verdict pass and
    score >= threshold."""
    parsed = parsed_answer(exp.column("output_text", table="o"), exp.column("error", table="o"))
    inner = parse(_VERDICTS).transform(
        lambda n: parsed.copy() if isinstance(n, exp.Column) and n.name == "__parsed__"
        else param("judge_model") if isinstance(n, exp.Column) and n.name == "__model__" else n)
    passed = "v.passed" if threshold is None else f"v.passed AND v.value >= {float(threshold)!r}"
    return parse(f"SELECT item_kind, item_key, output_hash, prompt_hash, v.value AS value, {passed} AS passed, "
                 f"v.detail AS detail FROM (SELECT 1) AS p").from_(inner.subquery("p"))


@dataclass(frozen=True)
class JudgeStatements:
    """What grading answers with one llm_judge metric runs: the judge's calls (a Python step: the cache is read,
    the missing prompts asked), its answers stored, its verdicts parsed by the metric's SQL, stored and read."""

    calls: PythonStep
    outputs: Statement
    store: Statement
    verdicts: Statement

    def all(self) -> tuple:
        return (self.calls, self.outputs, self.store, self.verdicts)


def judge_statements(metric: str, spec: dict) -> JudgeStatements:
    query = verdicts_query(spec.get("threshold"))
    store = parse_expression("INSERT OR REPLACE INTO judge_verdicts SELECT $metric, $judge, item_kind, item_key, "
                             "output_hash, prompt_hash, value, passed, detail, now() FROM __verdicts__",
                             verdicts=query.subquery("q"))
    return JudgeStatements(
        PythonStep(f"judge:{metric}", f"the {metric} judge asked what its cache lacks (engine/runner.py)"),
        Statement(f"judge:{metric}:outputs", parse("INSERT OR REPLACE INTO outputs SELECT * FROM flywheel_judge_outputs"),
                  (), "the judge's new answers, cached"),
        Statement(f"judge:{metric}:store", store, ("metric", "judge", "judge_model"),
                  "the verdicts, parsed by the metric's own SQL, stored"),
        Statement(f"judge:{metric}:verdicts", exp.select("*").from_(query.subquery("q")), ("judge_model",),
                  "and read back"))


def judge_items(store: Store, metric: str, spec: dict, items: list[Item], project_dir: Path, run_id: str,
                batch_size: int = 32, show_progress: bool = False) -> tuple[JudgeFingerprint, CallStats, list[dict]]:
    """Grade `items` with the metric's judge (cached), store the verdicts in judge_verdicts and return them,
    one dict per item (value, passed, detail), in the order given."""
    adapter, fp = current_fingerprint(spec, project_dir)
    steps = judge_statements(metric, spec)
    items_by_key = {(i.item_kind, i.item_key, i.output_hash): i for i in items}
    unique = list(items_by_key.values())
    template = rubric_of(spec)
    prompts = [render_rubric(template, {"input_text": i.input_text, "output_text": i.output_text,
                                        "expected_answers": list(i.expected_answers), "context": list(i.context)})
               for i in unique]
    hashes = [prompt_hash(p) for p in prompts]
    cases = [Case(case_id=i.item_key, position=0, input=p, input_text=p, expected=None, expected_answers=(),
                  context=(), tags=(), metadata={}, input_hash=h) for i, p, h in zip(unique, prompts, hashes)]
    case_ids = pa.array([c.case_id for c in cases], pa.string())
    # the judge's answer is cached under its output key (the prompt hash for an input-keyed judge)
    hashes = output_keys(adapter.output_identity, pa.array(hashes, pa.string()), case_ids).to_pylist()
    with journal.step(steps.calls.name):
        todo, distinct = missing(store.con, fp.model, needed_table(pa.array(hashes, pa.string()), case_ids), 1)
        called = call_model(adapter, fp.model, todo, distinct, cases, run_id, repeats=1,
                            batch_size=int(spec.get("batch_size") or batch_size), show_progress=show_progress)
    stats = called.stats
    with store.transaction() as con:
        con.register("flywheel_judge_outputs", called.outputs)
        try:
            execute(con, steps.outputs, {})
        finally:
            con.unregister("flywheel_judge_outputs")
    wanted = pl.DataFrame({"item_kind": [i.item_kind for i in unique], "item_key": [i.item_key for i in unique],
                           "output_hash": [i.output_hash for i in unique], "prompt_hash": hashes},
                          schema={"item_kind": pl.String, "item_key": pl.String, "output_hash": pl.String,
                                  "prompt_hash": pl.String})
    params = {"metric": metric, "judge": fp.fingerprint, "judge_model": fp.model}
    with store.transaction() as con:
        con.register("judge_wanted", wanted)
        try:
            execute(con, steps.store, params)
            rows = execute(con, steps.verdicts, params)
        finally:
            con.unregister("judge_wanted")
    by_key = {(r["item_kind"], r["item_key"], r["output_hash"]): {"value": r["value"], "passed": bool(r["passed"]),
                                                                   "detail": r["detail"]} for r in rows}
    return fp, stats, [by_key[(i.item_kind, i.item_key, i.output_hash)] for i in items]
