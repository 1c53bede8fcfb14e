"""Online scoring: the lab's reference-free metrics applied to a deterministic sample of production traces.

The sample is a hash of (salt, trace_id) below `rate`: reproducible, and nested as the rate grows (every trace
sampled at 10 % is also sampled at 20 %). Scores are stored in `live_scores` keyed by the metric definition's
hash, so lab and live numbers come from the same definition, and a trace is never scored twice for it. Kinds
that need a Python step (an LLM judge, an embedding encoder) are not supported online yet: validation says so.
"""
from __future__ import annotations

from sqlglot import exp

from engine.compiler import scored_select
from engine.monitor.sources import traces_in_scope
from engine.monitor.spec import OnlineSpec, Scope
from engine.provenance import content_hash
from engine.sql import Statement, literal, parse
from engine.plan_memo import by_content
from engine.sampling_hash import BUCKETS, bucket


def metric_hash(spec: dict) -> str:
    return content_hash(spec)


def sampled(online: OnlineSpec) -> exp.Expression:
    """The trace's sampling bucket (engine/sampling_hash.py: versioned, the same on DuckDB and Spark) below the
    rate."""
    threshold = int(round(online.rate * BUCKETS))
    return exp.LT(this=bucket(online.salt, exp.column("trace_id", table="t")), expression=literal(threshold))


def traces_as_scoring_input(scope: Scope, online: OnlineSpec, metric: str, mhash: str) -> exp.Select:
    """Sampled traces in scope not yet scored for this metric definition, shaped like scoring_input."""
    source = parse("""
        SELECT 'production' AS dataset, NULL::VARCHAR AS dataset_version, t.trace_id AS case_id,
               t.input AS input_text, []::VARCHAR[] AS expected_answers, NULL::JSON AS expected,
               coalesce(TRY_CAST(json_extract(t.attributes, '$.context') AS VARCHAR[]), []::VARCHAR[]) AS context,
               list_filter([t.topic], lambda x: x IS NOT NULL) AS tags, '{}'::JSON AS metadata, 0 AS repeat,
               t.output AS output_text, t.error, t.latency_ms, t.prompt_tokens::INTEGER AS prompt_tokens,
               t.completion_tokens::INTEGER AS completion_tokens, t.cost
        FROM (SELECT 1) AS t""").from_(traces_in_scope(scope).subquery("t"))
    done = (exp.select("1").from_(exp.table_("live_scores").as_("ls"))
            .where(exp.and_(exp.column("trace_id", table="ls").eq(exp.column("trace_id", table="t")),
                            exp.column("metric", table="ls").eq(literal(metric)),
                            exp.column("metrics_hash", table="ls").eq(literal(mhash)))))
    return source.where(exp.and_(sampled(online), exp.Exists(this=done).not_()))


@by_content
def score_statement(scope: Scope, online: OnlineSpec, metric: str, spec: dict) -> Statement:
    mhash = metric_hash(spec)
    rows = scored_select(metric, spec, traces_as_scoring_input(scope, online, metric, mhash)).subquery("scored")
    select = exp.select("case_id", literal(metric), literal(mhash), "value", "passed", "detail",
                        exp.func("now")).from_(rows)
    insert = exp.insert(select, "live_scores", columns=["trace_id", "metric", "metrics_hash", "value", "passed",
                                                         "detail", "scored_at"])
    return Statement(f"online.{metric}", insert, (), f"score sampled production traces with '{metric}'")


SUMMARY = """
SELECT ls.metric, count(*) AS n, avg(ls.value) AS mean, avg(CASE WHEN ls.passed THEN 1.0 ELSE 0.0 END) AS pass_rate
FROM live_scores AS ls JOIN (SELECT 1) AS t ON t.trace_id = ls.trace_id
WHERE t."timestamp" >= $cur_start AND t."timestamp" < $cur_end AND list_contains($pairs, ls.metric || ':' || ls.metrics_hash)
GROUP BY ls.metric ORDER BY ls.metric"""


@by_content
def summary_statement(scope: Scope) -> Statement:
    tree = parse(SUMMARY)
    tree.find(exp.Join).set("this", traces_in_scope(scope).subquery("t"))
    return Statement("online.summary", tree, ("cur_start", "cur_end", "pairs"),
                     "live scores in the current period, per metric")
