"""Gate rule kinds. A rule is a query; its consequence (severity) is config.

Each kind compiles its config to named SQL queries over the two runs' scores, and judges the rows those
queries return: value, bound, outcome and offending cases. A rule that cannot be computed (no scores, an
empty scope, missing baseline cases) reports status "error", which blocks like a failure (fail closed).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from sqlglot import exp

from engine import registry
from engine.gate import queries as q
from engine.gate.spec import OPTIONS, GateSpec, Options, RuleSpec
from engine.outcome import OPS
from engine.gate.stats import mcnemar_exact_p, paired_bootstrap_ci
from engine.sql import parse

COMMON = {
    "kind": {"type": "string"},
    "metric": {"type": "string", "description": "a metric name from the selected metric suites"},
    "datasets": {"type": "array", "items": {"type": "string"}, "default": [],
                 "description": "scope: cases of these datasets; empty means all"},
    "tags": {"type": "array", "items": {"type": "string"}, "default": [],
             "description": "scope: cases with any of these tags; empty means all"},
    "severity": {"enum": ["blocking", "warn"], "default": "blocking",
                 "description": "blocking rules decide the verdict; a warn rule is reported only"},
    "description": {"type": "string", "description": "shown with the rule in reports"},
}
CASE_LIMIT = 200  # offending cases listed per rule (the count is always exact)


@dataclass
class RuleResult:
    name: str
    kind: str
    severity: str
    status: str  # pass | fail | error
    value: float | None
    bound: str
    message: str
    metric: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    cases: list[dict] = field(default_factory=list)  # offending cases (regressions, failures)

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class RuleSQL:
    queries: dict[str, exp.Expression]  # name -> query; run with $baseline_run and $challenger_run
    judge: Callable[[dict[str, list[dict]], "RuleContext"], RuleResult]


@dataclass(frozen=True)
class RuleContext:
    rule: RuleSpec
    gate: GateSpec  # the gate (bootstrap settings)
    aggregate: str  # the metric's declared aggregate


def rule_kind(name: str, properties: dict, required: tuple[str, ...] = ("metric",),
              options: type | None = None) -> Callable:
    """Register a rule kind with the JSON Schema of its config (COMMON + its `properties`, whose `default`s fill
    what a rule leaves out) and its `options` class (engine/gate/spec.py: one field per property)."""
    schema = {"type": "object", "additionalProperties": False, "required": ["kind", *required],
              "properties": {**COMMON, **properties}}
    if options is not None:
        OPTIONS[name] = options
    return registry.register("gate_rule", name, schema)


def _result(ctx: RuleContext, status: str, value, bound: str, message: str, **extra) -> RuleResult:
    rule = ctx.rule
    return RuleResult(rule.name, rule.kind, rule.severity, status, value, bound, message, rule.metric, **extra)


def _cases(rows: list[dict], columns: tuple[str, ...]) -> list[dict]:
    def plain(column: str, value):
        # JSON columns arrive as text from DuckDB
        return json.loads(value) if column in ("expected", "metadata") and isinstance(value, str) else value

    return [{c: plain(c, r.get(c)) for c in columns} for r in rows[:CASE_LIMIT]]


CASE_COLUMNS = ("dataset", "case_id", "tags", "input_text", "expected", "metadata", "baseline_output",
                "challenger_output", "challenger_error", "c_detail", "b_value", "c_value", "baseline_calls",
                "challenger_calls")


@dataclass(frozen=True)
class ThresholdOptions(Options):
    aggregate: str | None  # None: the metric's declared aggregate
    op: str
    bound: float


@rule_kind("threshold", {
    "aggregate": {"enum": ["mean", "pass_rate", "p50", "p95", "p99", "sum", "max"],
                  "description": "the challenger's aggregate checked (default: the metric's own aggregate)"},
    "op": {"enum": list(OPS), "description": "how the aggregate compares with `bound` to pass"},
    "bound": {"type": "number", "description": "the bound the aggregate is held to"}},
    required=("metric", "op", "bound"), options=ThresholdOptions)
def threshold(rule: RuleSpec, reducer: str, aggregate: str) -> RuleSQL:
    """An aggregate of the challenger's metric meets an absolute bound (e.g. p95 latency <= 800 ms)."""
    o = rule.options
    agg = o.aggregate or aggregate
    sql = {"mean": "avg(value)", "pass_rate": "avg(CASE WHEN passed THEN 1.0 ELSE 0.0 END)",
           "p50": "quantile_cont(value, 0.5)", "p95": "quantile_cont(value, 0.95)",
           "p99": "quantile_cont(value, 0.99)", "sum": "sum(value)", "max": "max(value)"}[agg]
    query = exp.select(exp.alias_(exp.func("count", exp.Star()), "n"),
                       exp.alias_(parse(f"SELECT {sql}").expressions[0], "value")).from_(
        q.scoped(rule.metric, reducer, "challenger_run", rule).subquery("s"))

    def judge(rows, ctx):
        n, value = rows["aggregate"][0]["n"], rows["aggregate"][0]["value"]
        bound = f"{agg} {o.op} {o.bound:g}"
        if n == 0 or value is None:
            return _result(ctx, "error", None, bound, "no challenger scores in scope: cannot compute")
        ok = OPS[o.op](value, o.bound)
        return _result(ctx, "pass" if ok else "fail", value, bound, f"{agg} = {value:.4g} over {n} cases",
                       stats={"aggregate": agg, "op": o.op, "bound": float(o.bound), "n": n})

    return RuleSQL({"aggregate": query}, judge)


@rule_kind("all_pass", {})
def all_pass(rule: RuleSpec, reducer: str, aggregate: str) -> RuleSQL:
    """Every case in scope passes the metric (e.g. the whole safety suite); failures are listed."""
    scope = q.scoped(rule.metric, reducer, "challenger_run", rule).subquery("s")
    count = parse("SELECT count(*) AS n, count(*) FILTER (WHERE NOT s.passed) AS failing FROM (SELECT 1) AS s"
                  ).from_(scope.copy())
    failing = q.with_outputs(exp.select("s.*", exp.alias_(exp.column("detail", table="s"), "c_detail"),
                                        exp.alias_(exp.Null(), "b_value"),
                                        exp.alias_(exp.column("value", table="s"), "c_value"))
                             .from_(scope).where("NOT s.passed"), "s").limit(CASE_LIMIT)

    def judge(rows, ctx):
        n, failing = rows["count"][0]["n"], rows["count"][0]["failing"]
        if n == 0:
            return _result(ctx, "error", None, "0 failing", "no challenger scores in scope: cannot compute")
        status = "pass" if failing == 0 else "fail"
        return _result(ctx, status, float(failing), "0 failing", f"{failing} of {n} cases fail",
                       cases=_cases(rows["failing"], CASE_COLUMNS))

    return RuleSQL({"count": count, "failing": failing}, judge)


@dataclass(frozen=True)
class ImprovementOptions(Options):
    min_delta: float
    relative: bool
    test: str  # significance.test: none | mcnemar | bootstrap
    alpha: float  # significance.alpha

    @classmethod
    def of(cls, rule: dict) -> "ImprovementOptions":
        sig = rule["significance"]
        return cls(float(rule["min_delta"]), bool(rule["relative"]), sig["test"], float(sig["alpha"]))


@rule_kind("improvement", {
    "min_delta": {"type": "number", "default": 0.0, "description": "the least improvement that passes"},
    "relative": {"type": "boolean", "default": False,
                 "description": "the delta relative to the baseline's mean, not absolute"},
    "significance": {"type": "object", "additionalProperties": False, "default": {}, "properties": {
        "test": {"enum": ["none", "mcnemar", "bootstrap"], "default": "none",
                 "description": "the improvement must also be significant: McNemar's exact test or the paired "
                                "bootstrap (gate.bootstrap)"},
        "alpha": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": 0.05,
                  "description": "the significance level"}}}}, options=ImprovementOptions)
def improvement(rule: RuleSpec, reducer: str, aggregate: str) -> RuleSQL:
    """Challenger minus baseline >= min_delta on paired cases, optionally significant (McNemar or bootstrap)."""
    pairs = q.paired(rule.metric, reducer, rule).subquery("p")
    value_diff = "CASE WHEN b_value IS NULL THEN NULL ELSE coalesce(c_value, 0) - coalesce(b_value, 0) END"
    summary = parse("""
        SELECT count(*) AS n, count(b_value) AS n_paired, avg(c_value) AS c_mean, avg(b_value) AS b_mean,
               count(*) FILTER (WHERE b_passed AND NOT c_passed) AS b10,
               count(*) FILTER (WHERE NOT b_passed AND c_passed) AS b01
        FROM (SELECT 1) AS p""").from_(pairs.copy())
    histogram = parse(f"SELECT {value_diff} AS d, count(*) AS k FROM (SELECT 1) AS p "
                        f"WHERE b_value IS NOT NULL GROUP BY 1 ORDER BY 1").from_(pairs)

    def judge(rows, ctx):
        s = rows["summary"][0]
        o = rule.options
        test, alpha, min_delta, relative = o.test, o.alpha, o.min_delta, o.relative
        bound = f"delta >= {min_delta:g}{' (relative)' if relative else ''}" + (
            f", {test} at alpha {alpha:g}" if test != "none" else "")
        if s["n"] == 0:
            return _result(ctx, "error", None, bound, "no challenger scores in scope: cannot compute")
        if s["n_paired"] < s["n"]:
            return _result(ctx, "error", None, bound,
                           f"{s['n'] - s['n_paired']} cases in scope have no baseline score: not comparable")
        delta = s["c_mean"] - s["b_mean"]
        value = delta / s["b_mean"] if relative and s["b_mean"] else delta
        stats = {"baseline": s["b_mean"], "challenger": s["c_mean"], "delta": delta, "n": s["n"],
                 "improved": s["b01"], "regressed": s["b10"]}
        significant = True
        if test == "mcnemar":
            stats["p_value"] = mcnemar_exact_p(s["b01"], s["b10"])
            significant = stats["p_value"] < alpha and s["b01"] > s["b10"]
        elif test == "bootstrap":
            hist = rows["histogram"]
            boot = ctx.gate.bootstrap
            ci = paired_bootstrap_ci(np.array([h["d"] for h in hist]), np.array([h["k"] for h in hist]),
                                     boot.resamples, boot.seed, 1 - alpha)
            stats.update(ci_low=ci.low, ci_high=ci.high, resamples=ci.resamples, seed=ci.seed)
            significant = ci.low > 0
        ok = value >= min_delta and significant
        msg = f"{s['b_mean']:.4f} -> {s['c_mean']:.4f} (delta {delta:+.4f}) over {s['n']} paired cases"
        if "p_value" in stats:
            msg += f", McNemar p = {stats['p_value']:.3g}"
        if "ci_low" in stats:
            msg += f", {100 * (1 - alpha):g}% CI [{stats['ci_low']:+.4f}, {stats['ci_high']:+.4f}]"
        return _result(ctx, "pass" if ok else "fail", value, bound, msg, stats=stats)

    return RuleSQL({"summary": summary, "histogram": histogram}, judge)


@dataclass(frozen=True)
class NoRegressionOptions(Options):
    max: int
    tag_tolerance: float


@rule_kind("no_regression", {
    "max": {"type": "integer", "minimum": 0, "default": 0,
            "description": "cases the baseline passed and the challenger fails"},
    "tag_tolerance": {"type": "number", "minimum": 0, "default": 0.0,
                      "description": "largest allowed drop of a tag's mean"}}, options=NoRegressionOptions)
def no_regression(rule: RuleSpec, reducer: str, aggregate: str) -> RuleSQL:
    """Nothing that used to work breaks: per case (baseline passed, challenger fails) and per capability tag."""
    pairs = q.paired(rule.metric, reducer, rule).subquery("p")
    regressed = q.with_outputs(parse("SELECT * FROM (SELECT 1) AS p WHERE b_passed AND NOT c_passed")
                               .from_(pairs.copy()), "p").limit(CASE_LIMIT)
    counts = parse("SELECT count(*) AS n, count(b_value) AS n_paired, "
                   "count(*) FILTER (WHERE b_passed AND NOT c_passed) AS regressed FROM (SELECT 1) AS p"
                   ).from_(pairs.copy())
    per_tag = parse("""SELECT tag, count(*) AS n, avg(b_value) AS b_mean, avg(c_value) AS c_mean
                         FROM (SELECT *, unnest(tags) AS tag FROM (SELECT 1) AS p) GROUP BY tag ORDER BY tag""")
    per_tag.find(exp.Subquery).this.from_(pairs, copy=False)

    def judge(rows, ctx):
        limit, tolerance = int(rule.options.max), float(rule.options.tag_tolerance)
        bound = f"regressed cases <= {limit}, tag drop <= {tolerance:g}"
        c = rows["counts"][0]
        if c["n"] == 0:
            return _result(ctx, "error", None, bound, "no challenger scores in scope: cannot compute")
        if c["n_paired"] < c["n"]:
            return _result(ctx, "error", None, bound,
                           f"{c['n'] - c['n_paired']} cases in scope have no baseline score: not comparable")
        n_bad = c["regressed"]
        tags = [dict(t, drop=(t["b_mean"] or 0) - (t["c_mean"] or 0)) for t in rows["per_tag"]]
        dropped = [t for t in tags if t["drop"] > tolerance + 1e-12]
        ok = n_bad <= limit and not dropped
        msg = f"{n_bad} regressed case(s) of {c['n']}"
        if dropped:
            msg += "; tags dropped: " + ", ".join(f"{t['tag']} {t['b_mean']:.3f}->{t['c_mean']:.3f}" for t in dropped)
        return _result(ctx, "pass" if ok else "fail", float(n_bad), bound, msg,
                       stats={"per_tag": tags}, cases=_cases(rows["regressed"], CASE_COLUMNS))

    return RuleSQL({"counts": counts, "regressed": regressed, "per_tag": per_tag}, judge)

