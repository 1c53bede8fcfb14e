"""Re-judging one stored decision under a gate policy with the gate's own rule queries and judges.

`compile_gate` renders the policy's statements once (engine.gate.decide's `prepare_statements` and
`compile_rules`, unchanged); `judge` runs them for one decision's two runs and applies the gate's verdict
logic. The only difference from `flywheel gate` is where the per-case scores come from: the prepare statement
reads stored scores for the metrics whose definition is unchanged and the re-scored rows (engine/whatif/rescore.py)
for the others, and only the metrics the rules use.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from engine.gate.decide import compile_rules, metric_aggregate, prepare_statements
from engine.gate.rules import RuleContext, RuleResult
from engine.gate.spec import GateSpec, RuleSpec
from engine.schemas import load_schema
from engine.specs import with_defaults
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
    rule: RuleSpec
    context: RuleContext
    judge: object  # RuleSQL.judge
    queries: tuple[tuple[str, Prepared, bool], ...]  # (query name, statement, lists cases: reads model outputs)


_RECOMPUTED = "for a decision decided with another definition of the rule"


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

    def statements(self) -> list:
        """Its plan statements, in the order a replay runs them."""
        out = [self.repeated.statement, self.prepare[False].statement, self.prepare[True].statement]
        return out + [p.statement for rule in self.rules for _, p, _ in rule.queries]


def compile_gate(gate: dict, metrics: dict, rescored_table: str, prefix: str = "") -> CompiledGate:
    """The policy's gate statements, named `{prefix}...` (a replay compiles two policies side by side)."""
    check, single, repeated = prepare_statements(gate)
    source = _score_source(rescored_table)
    spec = GateSpec.of(gate)
    rules = []
    for name, rule_sql in compile_rules(gate, metrics).items():
        rule = spec.rules[name]
        queries = []
        for query_name, tree in rule_sql.queries.items():
            lists = "outputs" in {t.name.lower() for t in tree.find_all(exp.Table)}
            when = _RECOMPUTED + (", when its outcome changed (listing the cases)" if lists else "")
            prepared = Prepared.of(f"{prefix}{name}:{query_name}", tree, f"rule {name}", when)
            queries.append((query_name, prepared, lists))
        rules.append(CompiledRule(name, rule, RuleContext(rule, spec, metric_aggregate(rule, metrics)), rule_sql.judge,
                                  tuple(queries)))
    used = tuple(sorted({r.metric for r in spec.rules.values() if r.metric in metrics}))
    some = "for a decision with a rule to compute"
    return CompiledGate(gate, metrics, used,
                        Prepared.of(f"{prefix}repeated", check.tree, "do the runs have repeats?", some),
                        {False: Prepared.of(f"{prefix}prepare", _reading(single.tree, source),
                                            "the runs' per-case scores, stored or re-scored", some + " (no repeats)"),
                         True: Prepared.of(f"{prefix}prepare_repeated", _reading(repeated.tree, source),
                                           "the runs' per-case scores over repeats", some + " (with repeats)")},
                        tuple(rules))


def rule_definitions(gate: dict, metric_hash) -> dict[str, dict]:
    """What decides each rule's status and value: its config (but its severity and description), the metric
    definition it reads (`metric_hash(metric)`, None when unknown), the gate's reducer and, for a bootstrap,
    its settings. Two equal definitions over the same stored runs give the same outcome: the rules are queries
    over immutable stored scores."""
    out = {}
    reducer = with_defaults(load_schema("gate"), gate)["reducer"]  # (a stored decision's config as it was written)
    for name, rule in (gate.get("rules") or {}).items():
        d = {k: v for k, v in rule.items() if k not in ("severity", "description")}
        d["__reducer"] = reducer
        d["__metric"] = metric_hash(rule["metric"]) if rule.get("metric") else None
        if (rule.get("significance") or {}).get("test") == "bootstrap":
            d["__bootstrap"] = gate.get("bootstrap") or {}
        out[name] = d
    return out


def judge(con, compiled: CompiledGate, baseline_run: str, challenger_run: str, stored_metrics: list[str],
          rescored_metrics: list[str], rules: set[str], with_cases: bool = True) -> dict[str, RuleResult]:
    """The results of the named rules for one decision, exactly as engine.gate.decide.decide computes them.

    With `with_cases=False` the queries that list offending cases (they join the model outputs) are skipped:
    a rule's status and value come from its counting queries, so the replay lists cases only for decisions
    whose outcome changed."""
    if not rules:
        return {}
    params = {"baseline_run": baseline_run, "challenger_run": challenger_run, "stored_metrics": stored_metrics,
              "rescored_metrics": rescored_metrics}
    is_repeated = bool(compiled.repeated.rows(con, params)[0]["repeated"])
    compiled.prepare[is_repeated].rows(con, params)
    results = {}
    for rule in compiled.rules:
        if rule.name not in rules:
            continue
        rows = {name: (prepared.rows(con, params) if with_cases or not lists else [])
                for name, prepared, lists in rule.queries}
        results[rule.name] = rule.judge(rows, rule.context)
    return results


def verdict(rules: list[dict]) -> tuple[str, list[dict]]:
    """The gate's verdict over rule results (as decide: any blocking rule not passing blocks; no rule blocks)."""
    if not rules:
        return "BLOCKED", [RuleResult("gate", "config", "blocking", "error", None, "at least one rule",
                                      "the gate has no rules: nothing to decide on").to_json()]
    return ("BLOCKED" if any(r["severity"] == "blocking" and r["status"] != "pass" for r in rules) else "PASS"), rules
