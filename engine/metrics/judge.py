"""`llm_judge`: another model grades each output against a rubric and answers in strict JSON.

Before scoring, a prepare step renders the rubric per case, sends the prompts to the judge (any model
config: python, replay or chat_completions) through the same output cache as models -- keyed by the judge's
fingerprint and the prompt's hash, so re-scoring a run never re-asks the judge -- and records each answer in
the `judgements` table. The SQL then parses the answer with DuckDB's JSON functions. Fail closed: an answer
that is not a JSON object, lacks a pass/fail verdict or carries a score outside [0, 1], a failed judge call
and a missing judgement all fail the case, and `detail` says which.
"""
from __future__ import annotations

import string

from sqlglot import exp

from engine.metrics.base import MetricSQL, PrepareContext, col, metric_kind, params
from engine.provenance import content_hash
from engine.schemas import load_schema
from engine.sql import literal, parse_expression

RUBRIC_FIELDS = ("input", "output", "expected", "context")

DEFAULT_RUBRIC = """You are grading an assistant's answer to a customer question.
Judge whether the answer is correct and supported by the reference answer and the context.
Reply with strict JSON only: {{"verdict": "pass" or "fail", "score": a number from 0 to 1, "reason": "..."}}
### Question
{input}
### Context
{context}
### Reference answer
{expected}
### Answer
{output}
"""


def rubric_problems(template: str) -> list[str]:
    """Placeholders must be plain {input}, {output}, {expected} or {context}; literal braces are doubled."""
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        return [f"rubric is not a valid template: {e} (write literal braces as {{{{ and }}}})"]
    problems = []
    for field, spec, conv in fields:
        if field not in RUBRIC_FIELDS:
            problems.append(f"unknown rubric placeholder {{{field}}}; allowed: "
                            + ", ".join("{" + f + "}" for f in RUBRIC_FIELDS))
        elif spec or conv:
            problems.append(f"placeholder {{{field}}} takes no conversion or format spec")
    return problems


def render_rubric(template: str, row: dict) -> str:
    """The judge prompt for one scored row. Values are substituted as text, never interpreted."""
    values = {"input": row["input_text"], "output": row["output_text"] or "",
              "expected": " | ".join(row["expected_answers"] or []), "context": "\n\n".join(row["context"] or [])}
    return template.format_map(values)


def prompt_hash(prompt: str) -> str:
    """Keys a judge's cached answer to a prompt (with the judge's fingerprint), wherever the prompt comes from."""
    return content_hash({"judge_prompt": prompt}, length=24)


def metric_key(spec: dict) -> str:
    """Judgements belong to one metric definition (judge, rubric, datasets): its content hash."""
    return content_hash(spec, length=16)


def _prepare_judgements(ctx: PrepareContext, name: str, spec: dict) -> None:
    import pyarrow as pa

    from engine.datasets import Case
    from engine.models import build_adapter, fingerprint
    from engine.output_identity import output_keys
    from engine.runner import Journal, call_model, missing, needed_table

    template = params(spec)["rubric"]
    columns = ("dataset_version", "case_id", "repeat", "input_text", "output_text", "expected_answers", "context",
               "error")
    rows = [r for r in ctx.rows(name, spec, columns) if r["error"] is None]  # errored cases fail anyway
    if not rows:
        return
    adapter = build_adapter(spec["judge"], ctx.project.dir)
    fp = fingerprint(adapter)
    prompts = [render_rubric(template, r) for r in rows]
    hashes = [prompt_hash(p) for p in prompts]
    cases = [Case(case_id=f"{r['case_id']}#{r['repeat']}", position=0, input=p, input_text=p, expected=None,
                  expected_answers=(), context=(), tags=(), metadata={}, input_hash=h)
             for r, p, h in zip(rows, prompts, hashes)]
    case_ids = pa.array([c.case_id for c in cases], pa.string())
    keys = output_keys(adapter.output_identity, pa.array(hashes, pa.string()), case_ids)
    with ctx.cached() as store:  # which prompts the judge already answered (a short read)
        todo, distinct = missing(store.con, fp, needed_table(keys, case_ids), 1)
    journal = Journal(ctx.journal_dir, ctx.run_id, f"judge-{name}") if ctx.journal_dir else None
    result = call_model(adapter, fp, todo, distinct, cases, ctx.run_id, repeats=1,
                        batch_size=int(spec.get("batch_size") or ctx.batch_size), show_progress=ctx.show_progress,
                        journal=journal)
    ctx.write("flywheel_judge_outputs", result.outputs,
              "INSERT OR REPLACE INTO outputs SELECT * FROM flywheel_judge_outputs")
    frame = pa.table({
        "run_id": [ctx.run_id] * len(rows), "metric_key": [metric_key(spec)] * len(rows),
        "dataset_version": [r["dataset_version"] for r in rows], "case_id": [r["case_id"] for r in rows],
        "repeat": pa.array([r["repeat"] for r in rows], pa.int32()), "judge_fingerprint": [fp] * len(rows),
        "prompt_hash": keys})
    # the judgement points at the judge's answer by its output key (the prompt hash for an input-keyed judge)
    ctx.write("flywheel_new_judgements", frame,
              "INSERT OR REPLACE INTO judgements SELECT j.*, o.output_text, o.error FROM flywheel_new_judgements AS j "
              "LEFT JOIN outputs AS o ON o.model_fingerprint = j.judge_fingerprint "
              "AND o.output_key = j.prompt_hash AND o.repeat = 0")


# The judge's answer __r__ (and the call's error __e__) read as {value, passed, detail}.
_VERDICT = """CASE
  WHEN __e__ IS NOT NULL THEN {'value': 0.0, 'passed': false, 'detail': 'judge call failed: ' || __e__}
  WHEN __r__ IS NULL OR NOT json_valid(__r__)
    THEN {'value': 0.0, 'passed': false, 'detail': 'judge answer is not JSON: ' || left(coalesce(__r__, ''), 120)}
  WHEN json_type(__r__) <> 'OBJECT'
    THEN {'value': 0.0, 'passed': false, 'detail': 'judge answer is not a JSON object: ' || left(__r__, 120)}
  WHEN lower(json_extract_string(__r__, '$.verdict')) IS DISTINCT FROM 'pass'
       AND lower(json_extract_string(__r__, '$.verdict')) IS DISTINCT FROM 'fail'
    THEN {'value': 0.0, 'passed': false, 'detail': 'judge verdict missing or not pass/fail: ' || left(__r__, 120)}
  WHEN json_extract(__r__, '$.score') IS NOT NULL AND NOT coalesce(TRY_CAST(json_extract(__r__, '$.score') AS DOUBLE)
       BETWEEN 0 AND 1, false)
    THEN {'value': 0.0, 'passed': false, 'detail': 'judge score is not a number in [0, 1]: ' || left(__r__, 120)}
  ELSE {'value': coalesce(TRY_CAST(json_extract(__r__, '$.score') AS DOUBLE),
                          CASE WHEN lower(json_extract_string(__r__, '$.verdict')) = 'pass' THEN 1.0 ELSE 0.0 END),
        'passed': lower(json_extract_string(__r__, '$.verdict')) = 'pass',
        'detail': 'judge: ' || coalesce(json_extract_string(__r__, '$.reason'), '(no reason given)')}
END"""


_JUDGED = """(SELECT __verdict__ FROM (
  SELECT run_id AS j_run, metric_key AS j_metric, dataset_version AS j_version, case_id AS j_case, repeat AS j_repeat,
         response AS j_response, error AS j_error FROM judgements) AS j
  WHERE j.j_run = $run_id AND j.j_metric = __key__ AND j.j_version = dataset_version AND j.j_case = case_id
    AND j.j_repeat = repeat)"""


def parsed_answer(response: exp.Expression, error: exp.Expression) -> exp.Expression:
    """A judge's raw answer (and its call's error) read as a struct {value, passed, detail}: the one fail-closed
    parsing shared by this metric and judge calibration (engine/judges/)."""
    return parse_expression(_VERDICT, r=response, e=error)


def _judged(spec: dict) -> exp.Expression:
    """The parsed judgement of the current row, a struct; NULL when none was recorded.

    The judgements columns are renamed so that the row's own columns can stay unqualified: the expression is
    used both where the row is `scoring_input` (value, detail) and where it is `valued` (passed)."""
    verdict = parsed_answer(exp.column("j_response", table="j"), exp.column("j_error", table="j"))
    return parse_expression(_JUDGED, verdict=verdict, key=literal(metric_key(spec)))


_MODEL_SCHEMA = {k: v for k, v in load_schema("model").items() if not k.startswith("$")}


@metric_kind("llm_judge", {"required": ["judge"], "properties": {
    "judge": {**_MODEL_SCHEMA, "description": "the judge: a model config (as in conf/model/)"},
    "rubric": {"type": "string", "minLength": 1, "default": DEFAULT_RUBRIC,
               "description": "the judge prompt; placeholders {input}, {output}, {expected}, {context}"},
    "batch_size": {"type": "integer", "minimum": 1}}}, prepare=_prepare_judgements)
def llm_judge(spec: dict) -> MetricSQL:
    """A judge model grades each output with a rubric and answers JSON {"verdict", "score", "reason"}.

    value = the judge's score (or 1/0 from the verdict); passes on verdict "pass" (and score >= threshold
    when one is set). Garbage, a missing verdict, a failed judge call or a missing judgement fail the case,
    with the reason in detail. Judge answers are cached like model outputs."""
    judged = _judged(spec)
    field = lambda f: exp.func("struct_extract", judged.copy(), literal(f))
    passed = exp.func("coalesce", field("passed"), literal(False))
    if "threshold" in spec:
        passed = exp.and_(passed, exp.GTE(this=col("value"), expression=literal(float(spec["threshold"]))))
    detail = exp.Case().when(field("detail").is_(exp.null()),
                             literal("no judgement recorded (the judge step did not run)")).else_(field("detail"))
    return MetricSQL(value=exp.func("coalesce", field("value"), literal(0.0)), passed=passed, detail=detail)
