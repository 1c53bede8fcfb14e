"""Compile the gate's rules to SQL, run them over two stored runs, and decide PASS or BLOCKED."""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field

from engine import registry
from engine.compiler import default_aggregate
from engine.executor import execute
from engine.gate.queries import REPEATED, prepare
from engine.gate.rules import RuleContext, RuleResult, RuleSQL
from engine.gate.spec import GateSpec, RuleSpec
from engine.report.summary import per_tag_statement
from engine.sql import Plan, Statement, parse
from engine.store import Store
from engine.plan_memo import by_content

PARAMS = ("baseline_run", "challenger_run")


@by_content
def prepare_statements(gate: dict) -> tuple[Statement, Statement, Statement]:
    reducer = GateSpec.of(gate).reducer
    return (Statement("repeated", parse(REPEATED), PARAMS, "did either run call its model more than once per case?"),
            Statement("prepare_single", prepare(reducer, repeated=False), PARAMS,
                      "both runs' per-case scores, read by every rule", "when neither run has repeats"),
            Statement("prepare_repeated", prepare(reducer, repeated=True), PARAMS,
                      f"both runs' per-case scores reduced over repeats with '{reducer}'",
                      "when a run has repeats"))


def metric_aggregate(rule: RuleSpec, metrics: dict) -> str:
    """The aggregate the rule's metric declares (a threshold rule without `aggregate` checks it)."""
    return default_aggregate(metrics[rule.metric]) if rule.metric in metrics else "mean"


@by_content
def compile_rules(gate: dict, metrics: dict) -> dict[str, RuleSQL]:
    spec = GateSpec.of(gate)
    out = {}
    for name, rule in spec.rules.items():
        fn = registry.get("gate_rule", rule.kind).fn
        # a kind that reads metric definitions (judge_calibrated: the judge's rubric) declares a `metrics` parameter
        extra = {"metrics": metrics} if "metrics" in inspect.signature(fn).parameters else {}
        out[name] = fn(rule, spec.reducer, metric_aggregate(rule, metrics), **extra)
    return out


def compile_plan(gate: dict, metrics: dict) -> Plan:
    """Every rule's queries as one plan: what `flywheel compile gate` prints."""
    statements = list(prepare_statements(gate))
    for name, rule_sql in compile_rules(gate, metrics).items():
        statements += rule_statements(gate, name, rule_sql).values()
    statements += [FLAKY, per_tag_statement(GateSpec.of(gate).reducer)]
    return Plan("gate", tuple(statements))


def rule_statements(gate: dict, name: str, rule_sql) -> dict[str, Statement]:
    """A rule's queries as named plan statements (`<rule>:<query>`), by query name."""
    description = registry.get("gate_rule", gate["rules"][name]["kind"]).description
    return {qn: Statement(f"{name}:{qn}", query, PARAMS, description) for qn, query in rule_sql.queries.items()}


@dataclass
class GateOutcome:
    verdict: str  # PASS | BLOCKED
    rules: list[RuleResult]
    flaky: list[dict] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def blocking_failures(self) -> list[RuleResult]:
        return [r for r in self.rules if r.severity == "blocking" and r.status != "pass"]


FLAKY = Statement("flaky", parse("""
SELECT metric, dataset, case_id, count(*) AS repeats, count(*) FILTER (WHERE passed) AS passed_repeats
FROM scores WHERE run_id = $challenger_run
GROUP BY metric, dataset, case_id
HAVING bool_or(passed) AND NOT bool_and(passed)
ORDER BY metric, dataset, case_id
"""), ("challenger_run",), "cases whose repeats disagree (flaky)")


def decide(store: Store, gate: dict, metrics: dict, baseline_run: str, challenger_run: str) -> GateOutcome:
    """`gate`: the validated gate section (read as a GateSpec)."""
    spec = GateSpec.of(gate)
    params = {"baseline_run": baseline_run, "challenger_run": challenger_run}
    results, timings = [], {}
    started = time.perf_counter()
    check, single, repeated = prepare_statements(gate)
    execute(store.con, repeated if execute(store.con, check, params)[0]["repeated"] else single, params)
    timings["prepare"] = (time.perf_counter() - started) * 1000
    for name, rule_sql in compile_rules(gate, metrics).items():
        rule = spec.rules[name]
        started = time.perf_counter()
        ctx = RuleContext(rule, spec, metric_aggregate(rule, metrics))
        rows = {qn: execute(store.con, st, params) for qn, st in rule_statements(gate, name, rule_sql).items()}
        results.append(rule_sql.judge(rows, ctx))
        timings[name] = (time.perf_counter() - started) * 1000
    flaky = execute(store.con, FLAKY, params)
    verdict = "BLOCKED" if any(r.severity == "blocking" and r.status != "pass" for r in results) else "PASS"
    if not results:  # a gate with no rules cannot vouch for anything
        results.append(RuleResult("gate", "config", "blocking", "error", None, "at least one rule",
                                  "the gate has no rules: nothing to decide on"))
        verdict = "BLOCKED"
    return GateOutcome(verdict, results, flaky, timings)
