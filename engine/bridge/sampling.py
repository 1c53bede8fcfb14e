"""Sampling policies: each kind compiles its config to a query returning the selected traces, in order.

Every query returns (trace_id, ord) where `ord` orders the selection (lower first) and every random choice is
a hash of (salt, trace_id): the same config selects the same traces, and a hash sample at a higher rate contains
the one at a lower rate. Kinds are registered as ("sampler", name) with a JSON Schema and a docstring.
"""
from __future__ import annotations

from typing import Callable

from sqlglot import exp

from engine import registry
from engine.monitor.sources import with_resolved_feedback
from engine.sampling_hash import BUCKETS, bucket
from engine.sql import literal, parse, render

SIGNALS = {
    # signal -> condition on a trace `t` (correlated subqueries over feedback and live scores)
    "correction": "EXISTS (SELECT 1 FROM feedback f WHERE f.trace_id = t.trace_id AND f.kind = 'correction')",
    "ticket": "EXISTS (SELECT 1 FROM feedback f WHERE f.trace_id = t.trace_id AND f.kind = 'ticket')",
    "negative_feedback": "EXISTS (SELECT 1 FROM feedback f WHERE f.trace_id = t.trace_id AND f.kind IN "
                         "('thumbs', 'rating') AND f.score < 0.5)",
    "safety_flag": "EXISTS (SELECT 1 FROM live_scores s WHERE s.trace_id = t.trace_id AND s.metric = 'safety' "
                   "AND NOT s.passed)",
    "low_online_score": "EXISTS (SELECT 1 FROM live_scores s WHERE s.trace_id = t.trace_id AND NOT s.passed)",
    "error": "t.error IS NOT NULL",
    "tool_error": "t.tool_errors > 0",  # an agent's failed tool call (engine/agents/monitor_columns.py)
    # an agent's call of a tool the policy's `forbidden_tools` names (engine/agents/otel_steps.py)
    "forbidden_tool": "EXISTS (SELECT 1 FROM trace_tool_steps AS fw_ts WHERE fw_ts.trace_id = t.trace_id "
                      "AND list_contains(CAST(__forbidden__ AS VARCHAR[]), fw_ts.tool_name))",
}
COMMON = {"kind": {"type": "string"}, "limit": {"type": "integer", "minimum": 1},
          "description": {"type": "string"}}


def sampler(name: str, properties: dict, required: tuple[str, ...] = ()) -> Callable:
    schema = {"type": "object", "additionalProperties": False, "required": ["kind", *required],
              "properties": {**COMMON, **properties}}
    return registry.register("sampler", name, schema)


def hash_of(salt: str) -> exp.Expression:
    """The sampling bucket of (salt, trace_id) in [0, BUCKETS): engine/sampling_hash.py (versioned; the same bucket
    on DuckDB and Spark)."""
    return bucket(salt, exp.column("trace_id", table="t"))


def _from(traces: exp.Select) -> exp.Select:
    return exp.select("t.trace_id").from_(traces.subquery("t"))


@sampler("hash_rate", {"rate": {"type": "number", "minimum": 0, "maximum": 1}}, ("rate",))
def hash_rate(policy: dict, traces: exp.Select, salt: str) -> exp.Select:
    """A deterministic share of all traces: hash(salt, trace_id) below the rate (nested as the rate grows)."""
    h = hash_of(salt)
    threshold = int(round(float(policy["rate"]) * BUCKETS))
    return _from(traces).select(exp.alias_(h.copy(), "ord")).where(exp.LT(this=h, expression=literal(threshold)))


@sampler("stratified", {
    "by": {"type": "array", "items": {"enum": ["topic", "channel", "locale", "feature", "model", "model_version"]},
           "minItems": 1},
    "per_stratum": {"type": "integer", "minimum": 1, "description": "the same quota for every stratum"},
    "total": {"type": "integer", "minimum": 1, "description": "split across strata in proportion to their size"},
}, ("by",))
def stratified(policy: dict, traces: exp.Select, salt: str) -> exp.Select:
    """Per-stratum quotas over declared attributes: a fixed `per_stratum`, or a `total` split in proportion to
    stratum sizes by largest remainders (quotas sum to the total); within a stratum, the lowest hashes."""
    strata = ", ".join(f"t.{c}" for c in policy["by"])
    h = render(hash_of(salt))
    if "per_stratum" in policy:
        quota = str(int(policy["per_stratum"]))
        sized = f"SELECT t.trace_id, {h} AS ord, {strata}, row_number() OVER (PARTITION BY {strata} ORDER BY {h}, " \
                f"t.trace_id) AS pos, {quota} AS quota FROM (SELECT 1) AS t"
        query = parse(f"SELECT trace_id, ord FROM ({sized}) AS s WHERE pos <= quota")
    else:
        total = int(policy["total"])
        # floor share per stratum, then one more to the strata with the largest remainders
        keys = ", ".join(policy["by"])
        query = parse(f"""
            WITH rows AS (SELECT t.trace_id, {h} AS ord, {strata},
                                 row_number() OVER (PARTITION BY {strata} ORDER BY {h}, t.trace_id) AS pos
                          FROM (SELECT 1) AS t),
                 sizes AS (SELECT {keys}, count(*) AS n FROM rows GROUP BY ALL),
                 shares AS (SELECT *, {total} * n / sum(n) OVER () AS exact FROM sizes),
                 floors AS (SELECT *, floor(exact)::BIGINT AS base, exact - floor(exact) AS remainder FROM shares),
                 quotas AS (SELECT *, base + CASE WHEN row_number() OVER (ORDER BY remainder DESC, {keys})
                                          <= least({total}, sum(n) OVER ()) - sum(base) OVER () THEN 1 ELSE 0 END
                                   AS quota FROM floors)
            SELECT r.trace_id, r.ord FROM rows AS r JOIN quotas AS q USING ({keys}) WHERE r.pos <= q.quota""")
    inner = query.find(exp.Subquery).this if "per_stratum" in policy else query.find(exp.CTE).this
    inner.from_(traces.subquery("t"), copy=False)  # the placeholder FROM (SELECT 1) AS t becomes the traces
    return query


@sampler("failure_first", {
    "signals": {"type": "array", "items": {"enum": list(SIGNALS)}, "minItems": 1, "uniqueItems": True},
    "forbidden_tools": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1,
                        "uniqueItems": True,
                        "description": "tools an agent must never call: a call is the forbidden_tool signal"}},
    ("signals",))
def failure_first(policy: dict, traces: exp.Select, salt: str) -> exp.Select:
    """Production failures: traces with any declared signal (corrections, tickets, negative feedback, safety
    flags, failed online scores, errors, an agent's failed or forbidden tool call), the ones with most signals
    first."""
    forbidden = literal(list(policy.get("forbidden_tools") or []))
    conditions = [parse(f"SELECT {SIGNALS[s]}").expressions[0].transform(
        lambda n: forbidden.copy() if isinstance(n, exp.Column) and n.name == "__forbidden__" else n)
        for s in policy["signals"]]
    n_signals = exp.Add(this=literal(0), expression=literal(0))
    for c in conditions:
        n_signals = exp.Add(this=n_signals, expression=exp.cast(c.copy(), "INT"))
    h = hash_of(salt)
    # more signals first; the hash breaks ties
    order = exp.Add(this=exp.Mul(this=exp.paren(exp.Sub(this=literal(100), expression=exp.paren(n_signals))),
                                 expression=literal(BUCKETS)), expression=h)
    return _from(traces).select(exp.alias_(order, "ord")).where(exp.or_(*conditions))


@sampler("low_score", {"metric": {"type": "string"}, "below": {"type": "number"}}, ("metric", "below"))
def low_score(policy: dict, traces: exp.Select, salt: str) -> exp.Select:
    """Low-confidence traffic: traces whose live (online) score of a metric is below a bound, lowest first."""
    return parse(f"""
        SELECT t.trace_id, min(s.value) * {BUCKETS} + min({render(hash_of(salt))}) / {BUCKETS} AS ord
        FROM (SELECT 1) AS t JOIN live_scores AS s ON s.trace_id = t.trace_id
        WHERE s.metric = '__metric__' AND s.value < {float(policy['below'])!r}
        GROUP BY t.trace_id""").transform(_metric(policy["metric"])).from_(traces.subquery("t"))


@sampler("drift_segment", {"rule": {"type": "string", "description": "a drift rule of the monitor policy"}},
         ("rule",))
def drift_segment(policy: dict, traces: exp.Select, salt: str) -> exp.Select:
    """Traffic from the windows where a drift rule alerted in the latest monitor run (what changed)."""
    return parse(f"""
        SELECT t.trace_id, {render(hash_of(salt))} AS ord FROM (SELECT 1) AS t
        WHERE t.window_start IN (
            SELECT window_start FROM monitor_results
            WHERE section = 'drift' AND name = '__rule__' AND alert
              AND run_id = (SELECT run_id FROM monitor_runs ORDER BY finished_at DESC LIMIT 1))""").transform(
        _metric(policy["rule"], "__rule__")).from_(traces.subquery("t"))


_PASS = {
    "feedback": "(SELECT min(f.score) >= 0.5 FROM feedback f WHERE f.trace_id = t.trace_id AND f.score IS NOT NULL)",
    "online": "(SELECT bool_and(s.passed) FROM live_scores s WHERE s.trace_id = t.trace_id AND s.metric = '__m__')",
}


def _judgement(source: str) -> exp.Expression:
    kind, _, metric = source.partition(":")
    return parse(f"SELECT {_PASS[kind]}").expressions[0].transform(_metric(metric, "__m__"))


@sampler("disagreement", {"a": {"type": "string", "pattern": "^(feedback|online:[A-Za-z0-9_]+)$"},
                          "b": {"type": "string", "pattern": "^(feedback|online:[A-Za-z0-9_]+)$"}}, ("a", "b"))
def disagreement(policy: dict, traces: exp.Select, salt: str) -> exp.Select:
    """Traces where two judgements disagree (e.g. the online score passes but the user's feedback is negative)."""
    a, b = _judgement(policy["a"]), _judgement(policy["b"])
    return _from(traces).select(exp.alias_(hash_of(salt), "ord")).where(
        exp.and_(a.copy().is_(exp.null()).not_(), b.copy().is_(exp.null()).not_(), exp.NEQ(this=a, expression=b)))


_SIGNAL = {
    # a cheap judgement of a trace as a number in [0, 1], to compare with the judge's score
    "feedback": "(SELECT avg(f.score) FROM feedback f WHERE f.trace_id = t.trace_id AND f.score IS NOT NULL)",
    "online": "(SELECT avg(s.value) FROM live_scores s WHERE s.trace_id = t.trace_id AND s.metric = '__m__')",
}


@sampler("judge_disagreement", {
    "judge": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$",
              "description": "an llm_judge metric whose verdicts on traces `flywheel judges score` stored"},
    "against": {"type": "array", "items": {"type": "string", "pattern": "^(feedback|online:[A-Za-z0-9_]+)$"},
                "minItems": 1, "uniqueItems": True, "description": "cheap signals in [0, 1]: feedback, online:METRIC"},
    "min_gap": {"type": "number", "minimum": 0, "maximum": 1, "description": "least |judge - signal| (default 0.5)"},
    "random_share": {"type": "number", "minimum": 0, "maximum": 1,
                     "description": "share of the limit drawn at random from the rest (default 0.2)"}},
    ("judge", "against", "limit"))
def judge_disagreement(policy: dict, traces: exp.Select, salt: str) -> exp.Select:
    """Traces for people to label where the LLM judge and the cheap signals (user feedback, online scores) disagree
    most (largest |judge score - signal| first), plus a random share of the limit so calibration also sees
    ordinary traffic. Traces already labelled for the judge are left out."""
    limit = int(policy["limit"])
    n_random = int(round(limit * float(policy.get("random_share", 0.2))))
    gaps = [parse(f"SELECT abs(j.judge_value - {_SIGNAL[a.partition(':')[0]]})").expressions[0].transform(
        _metric(a.partition(":")[2], "__m__")) for a in policy["against"]]
    gap = exp.func("greatest", *gaps) if len(gaps) > 1 else gaps[0]
    query = parse(f"""
        WITH judged AS (SELECT item_key AS trace_id, arg_max(value, judged_at) AS judge_value FROM judge_verdicts
                        WHERE metric = '__judge__' AND item_kind = 'trace' GROUP BY item_key),
             candidates AS (
                SELECT t.trace_id, {render(hash_of(salt))} AS h, __gap__ AS gap
                FROM (SELECT 1) AS t LEFT JOIN judged AS j ON j.trace_id = t.trace_id
                WHERE NOT EXISTS (SELECT 1 FROM judge_labels AS l WHERE l.item_kind = 'trace'
                                  AND l.item_id = t.trace_id AND l.metric = '__judge__')),
             disputed AS (
                SELECT trace_id, row_number() OVER (ORDER BY gap DESC, h, trace_id) AS pos FROM candidates
                WHERE gap > 0 AND gap >= {float(policy.get('min_gap', 0.5))!r}
                QUALIFY pos <= {limit - n_random}),
             drawn AS (
                SELECT trace_id, row_number() OVER (ORDER BY h, trace_id) AS pos FROM candidates
                WHERE trace_id NOT IN (SELECT trace_id FROM disputed)
                QUALIFY pos <= {n_random})
        SELECT trace_id, pos AS ord FROM disputed
        UNION ALL SELECT trace_id, {limit} + pos AS ord FROM drawn""").transform(
        _metric(policy["judge"], "__judge__")).transform(
        lambda n: gap.copy() if isinstance(n, exp.Column) and n.name == "__gap__" else n)
    # the placeholder FROM (SELECT 1) AS t of `candidates` becomes the traces in scope
    candidates = [c for c in query.find_all(exp.CTE) if c.alias == "candidates"][0].this
    candidates.from_(traces.subquery("t"), copy=False)
    return query


def _metric(value: str, marker: str = "__metric__"):
    return lambda n: literal(value) if isinstance(n, exp.Literal) and n.this == marker else n


def compile_policy(name: str, policy: dict, traces: exp.Select, salt: str) -> exp.Select:
    """The policy's selection with its limit applied, as (trace_id, ord, policy).

    The hash is salted with the policy's name too: two policies draw independent samples (with one shared
    salt, a hash sample and a stratified sample would both take the lowest hashes and overlap)."""
    query = registry.get("sampler", policy["kind"]).fn(policy, traces, f"{salt}:{name}")
    query = with_resolved_feedback(query)  # feedback may name its trace by a span id (engine/monitor/sources.py)
    out = exp.select("trace_id", "ord", exp.alias_(literal(name), "policy")).from_(query.subquery("p")).order_by(
        "ord", "trace_id")
    return out.limit(int(policy["limit"])) if policy.get("limit") else out
