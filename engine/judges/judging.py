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
from engine.sql import literal, parse, render
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


def verdicts_query(model_fingerprint: str, threshold: float | None) -> exp.Expression:
    """Parsed verdicts of the wanted prompts; passes like the metric: verdict pass and score >= threshold."""
    parsed = parsed_answer(exp.column("output_text", table="o"), exp.column("error", table="o"))
    inner = parse(_VERDICTS).transform(
        lambda n: parsed.copy() if isinstance(n, exp.Column) and n.name == "__parsed__"
        else literal(model_fingerprint) if isinstance(n, exp.Column) and n.name == "__model__" else n)
    passed = "v.passed" if threshold is None else f"v.passed AND v.value >= {float(threshold)!r}"
    return parse(f"SELECT item_kind, item_key, output_hash, prompt_hash, v.value AS value, {passed} AS passed, "
                 f"v.detail AS detail FROM (SELECT 1) AS p").from_(inner.subquery("p"))


def judge_items(store: Store, metric: str, spec: dict, items: list[Item], project_dir: Path, run_id: str,
                batch_size: int = 32, show_progress: bool = False) -> tuple[JudgeFingerprint, CallStats, list[dict]]:
    """Grade `items` with the metric's judge (cached), store the verdicts in judge_verdicts and return them,
    one dict per item (value, passed, detail), in the order given."""
    adapter, fp = current_fingerprint(spec, project_dir)
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
    todo, distinct = missing(store.con, fp.model, needed_table(pa.array(hashes, pa.string()), case_ids), 1)
    called = call_model(adapter, fp.model, todo, distinct, cases, run_id, repeats=1,
                        batch_size=int(spec.get("batch_size") or batch_size), show_progress=show_progress)
    stats = called.stats
    with store.transaction() as con:
        con.register("flywheel_judge_outputs", called.outputs)
        try:
            con.execute("INSERT OR REPLACE INTO outputs SELECT * FROM flywheel_judge_outputs")
        finally:
            con.unregister("flywheel_judge_outputs")
    wanted = pl.DataFrame({"item_kind": [i.item_kind for i in unique], "item_key": [i.item_key for i in unique],
                           "output_hash": [i.output_hash for i in unique], "prompt_hash": hashes},
                          schema={"item_kind": pl.String, "item_key": pl.String, "output_hash": pl.String,
                                  "prompt_hash": pl.String})
    query = render(verdicts_query(fp.model, spec.get("threshold")))
    with store.transaction() as con:
        con.register("judge_wanted", wanted)
        try:
            con.execute(f"INSERT OR REPLACE INTO judge_verdicts SELECT ?, ?, item_kind, item_key, output_hash, "
                        f"prompt_hash, value, passed, detail, now() FROM ({query})", [metric, fp.fingerprint])
            rows = con.execute(f"SELECT * FROM ({query})").fetchall()
        finally:
            con.unregister("judge_wanted")
    by_key = {(r[0], r[1], r[2]): {"value": r[4], "passed": bool(r[5]), "detail": r[6]} for r in rows}
    return fp, stats, [by_key[(i.item_kind, i.item_key, i.output_hash)] for i in items]
