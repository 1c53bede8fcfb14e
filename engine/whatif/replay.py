"""Re-judging one stored decision under a gate policy with the gate's own rule queries and judges.

`compile_gate` renders the policy's statements once (engine.gate.decide's `prepare_statements` and
`compile_rules`, unchanged); `judge` runs them for one decision's two runs and applies the gate's verdict
logic. The only difference from `flywheel gate` is where the per-case scores come from: the prepare statement
reads stored scores for the metrics whose definition is unchanged and the re-scored rows (engine/whatif/rescore.py)
for the others, and only the metrics the rules use.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from engine.compiler import default_aggregate
from engine.gate.decide import compile_rules, prepare_statements
from engine.gate.rules import RuleContext, RuleResult
from engine.sql import parse
from engine.whatif.prepared import Prepared
from engine.whatif.rescore import metric_hash


def _score_source(rescored_table: str) -> exp.Expression:
    """Both runs' rows of the used metrics: stored ones ($stored_metrics) and re-scored ones ($rescored_metrics)."""
    return parse(f"""
        SELECT * FROM scores
        WHERE run_id IN ($baseline_run, $challenger_run) AND list_contains($stored_metrics, metric)
        UNION ALL
        SELECT * FROM {rescored_table}
        WHERE run_id IN ($baseline_run, $challenger_run) AND list_contains($rescored_metrics, metric)
    """)


def _reading(tree: exp.Expression, source: exp.Expression) -> exp.Expression:
    """`tree` with every read of the `scores` table replaced by `source` (same alias)."""
    def swap(node):
        if isinstance(node, exp.Table) and node.name.lower() == "scores" and not node.db:
            return exp.Subquery(this=source.copy(), alias=exp.TableAlias(this=exp.to_identifier(node.alias or "scores")))
        return node
    return tree.transform(swap)


@dataclass(frozen=True)
class CompiledRule:
    name: str
    rule: dict
    context: RuleContext
    judge: object  # RuleSQL.judge
    queries: tuple[tuple[str, Prepared, bool], ...]  # (query name, statement, lists cases: reads model outputs)


@dataclass(frozen=True)
class CompiledGate:
    gate: dict
    metrics: dict
    used_metrics: tuple[str, ...]  # the metrics the rules read
    repeated: Prepared
    prepare: dict[bool, Prepared]  # repeated runs? -> the prepare statement
    rules: tuple[CompiledRule, ...]

    def metric_hashes(self) -> dict[str, str]:
        return {m: metric_hash(self.metrics[m]) for m in self.used_metrics}


def compile_gate(gate: dict, metrics: dict, rescored_table: str) -> CompiledGate:
    check, single, repeated = prepare_statements(gate)
    source = _score_source(rescored_table)
    rules = []
    for name, rule_sql in compile_rules(gate, metrics).items():
        rule = gate["rules"][name]
        aggregate = default_aggregate(metrics[rule["metric"]]) if rule.get("metric") in metrics else "mean"
        queries = []
        for query_name, tree in rule_sql.queries.items():
            prepared = Prepared.of(f"{name}:{query_name}", tree)
            queries.append((query_name, prepared, "outputs" in prepared.tables))
        rules.append(CompiledRule(name, rule, RuleContext(name, rule, gate, aggregate), rule_sql.judge, tuple(queries)))
    used = tuple(sorted({r["metric"] for r in (gate.get("rules") or {}).values() if r.get("metric") in metrics}))
    return CompiledGate(gate, metrics, used, Prepared.of("repeated", check.tree),
                        {False: Prepared.of("prepare", _reading(single.tree, source)),
                         True: Prepared.of("prepare", _reading(repeated.tree, source))},
                        tuple(rules))


@dataclass
class Judged:
    verdict: str  # PASS | BLOCKED
    rules: list[RuleResult] = field(default_factory=list)
    with_cases: bool = True  # the offending cases were listed (False: counts only, see `judge`)

    def to_rules_json(self) -> list[dict]:
        return [r.to_json() for r in self.rules]


def judge(con, compiled: CompiledGate, baseline_run: str, challenger_run: str, stored_metrics: list[str],
          rescored_metrics: list[str], with_cases: bool = True) -> Judged:
    """The verdict of one decision under the compiled policy, exactly as engine.gate.decide.decide reaches it.

    With `with_cases=False` the queries that list offending cases (they join the model outputs) are skipped:
    a rule's status and value come from its counting queries, so the replay lists cases only for decisions
    whose outcome changed."""
    params = {"baseline_run": baseline_run, "challenger_run": challenger_run, "stored_metrics": stored_metrics,
              "rescored_metrics": rescored_metrics}
    is_repeated = bool(compiled.repeated.rows(con, params)[0]["repeated"])
    compiled.prepare[is_repeated].rows(con, params)
    results = []
    for rule in compiled.rules:
        rows = {name: (prepared.rows(con, params) if with_cases or not lists else [])
                for name, prepared, lists in rule.queries}
        results.append(rule.judge(rows, rule.context))
    verdict = "BLOCKED" if any(r.severity == "blocking" and r.status != "pass" for r in results) else "PASS"
    if not results:  # as decide(): a gate with no rules cannot vouch for anything
        results.append(RuleResult("gate", "config", "blocking", "error", None, "at least one rule",
                                  "the gate has no rules: nothing to decide on"))
        verdict = "BLOCKED"
    return Judged(verdict, results, with_cases)
