"""`flywheel judges score`: grade a deterministic hash sample of production traces with each llm_judge metric's
judge, stored in judge_verdicts, where the bridge's `judge_disagreement` sampler compares them with user feedback
and online scores. Judge calls go through the output cache, so scoring again only asks about new traces.

A trace has no reference answer: the rubric's {expected} is empty and {context} comes from
attributes.context, as online scoring shapes traces.
"""
from __future__ import annotations

from sqlglot import exp

from engine.config import Project
from engine.errors import UserError
from engine.judges.calibrate import Settings, judge_metrics
from engine.judges.judging import Item, judge_items, output_hash
from engine.judges.spec import JudgesSpec, TraceSampleSpec
from engine.monitor.sources import traces_in_scope
from engine.provenance import utc_now
from engine.executor import execute
from engine.sql import Statement, parse
from engine.sampling_hash import BUCKETS, bucket
from engine.store import Store



def sampled_traces(sample: TraceSampleSpec) -> exp.Expression:
    """Traces in the configured bounds whose hash(salt, trace_id) falls below the rate, with a non-null output."""
    scope = {"window": "day", "start": sample.start, "end": sample.end}
    threshold = int(round(sample.rate * BUCKETS))
    query = parse(f"""
        SELECT t.trace_id, t.input, t.output,
               coalesce(TRY_CAST(json_extract(t.attributes, '$.context') AS VARCHAR[]), []::VARCHAR[]) AS context
        FROM (SELECT 1) AS t
        WHERE t.output IS NOT NULL AND __bucket__ < {threshold}
        ORDER BY t.trace_id""").from_(traces_in_scope(scope).subquery("t"))
    return query.transform(lambda n: bucket(sample.salt, exp.column("trace_id", table="t"))
                           if isinstance(n, exp.Column) and n.name == "__bucket__" else n)


def sample_statement(sample: TraceSampleSpec) -> Statement:
    return Statement("traces:sample", sampled_traces(sample), (),
                     "traces in the configured bounds, sampled by hash(salt, trace_id) below the rate")


def score_traces(store: Store, cfg: dict, project: Project) -> dict:
    metrics = judge_metrics(cfg)
    if not metrics:
        raise UserError("no llm_judge metric is selected: select the suite that defines your judge, "
                        "e.g. `flywheel judges score metrics=[support,judge]`")
    sample = JudgesSpec.of(cfg).traces
    rows = [tuple(r.values()) for r in execute(store.con, sample_statement(sample), {})]
    settings = Settings.of(cfg)
    run_id = f"judges-score-{utc_now().strftime('%Y%m%dT%H%M%S')}"
    items = [Item("trace", trace_id, output_hash(output), text, output, (), tuple(context or ()))
             for trace_id, text, output, context in rows]
    out = {"command": "judges_score", "sampled": len(items), "rate": sample.rate,
           "judges": [], "store": str(store.path)}
    for name, spec in metrics.items():
        if not items:
            break
        fp, calls, verdicts = judge_items(store, name, spec, items, project.dir, run_id, settings.batch_size,
                                          settings.show_progress)
        out["judges"].append({"metric": name, "fingerprint": fp.fingerprint, "graded": len(verdicts),
                              "passed": sum(1 for v in verdicts if v["passed"]),
                              "calls": {"needed": calls.needed, "cached": calls.cached, "called": calls.called,
                                        "errors": calls.errors}})
    return out
