"""`flywheel whatif gate`: re-judge stored gate decisions under another policy, with no model calls.

For each selected decision (oldest first) the candidate policy's rules run over the decision's two stored runs:
stored scores where the metric definition is the one the runs were scored with, re-scored rows from the
stored outputs where it differs. The outcome is compared with the stored one (the rules it was decided with),
or with another policy replayed the same way (`against=REV`). A decision that cannot be replayed faithfully
(a run, dataset version or output no longer stored) is refused with the reason and counted.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from engine import journal
from engine.errors import UserError
from engine.gate.spec import GateSpec
from engine.sql import Plan
from engine.whatif.compare import compare
from engine.whatif.history import (
    HISTORY,
    Selection,
    StoredDecision,
    StoredRun,
    dataset_versions_of,
    load_runs,
    refusal,
    select_decisions,
    stored_versions,
)
from engine.whatif.policy import Policy
from engine.whatif.replay import CompiledGate, compile_gate, judge, rule_definitions, verdict
from engine.whatif.prepared import Prepared
from engine.whatif.rescore import CHECKS, Rescorer, rescore_statements, table_statement


@dataclass
class SideReplay:
    verdict: str | None
    rules: list[dict]  # rule results as the gate stores them, in the policy's order
    metrics: dict[str, dict]  # metric -> hash used, hashes the runs were scored with, source
    rescored: list[str]
    recomputed: list[str]  # rules run again (the others keep their stored outcome: same definition)
    refused: str | None = None


SLOTS = ("policy", "against")  # the candidate policy's statements, and the reference policy's


@dataclass(frozen=True)
class CompiledSide:
    """One policy's statements: the re-scored rows' table, the re-scoring SQL, the gate's rule queries."""

    table: str
    gate: CompiledGate
    create: Prepared
    rescores: dict[str, Prepared]

    def statements(self) -> list:
        return [self.create.statement, *(p.statement for p in self.rescores.values()), *self.gate.statements()]


def compile_side(policy: Policy, slot: int) -> CompiledSide:
    prefix, table = f"{SLOTS[slot]}:", f"whatif_rescored_{slot}"
    gate, metrics = policy.config["gate"], policy.config["metrics"]
    compiled = compile_gate(gate, metrics, table, prefix)
    return CompiledSide(table, compiled, table_statement(table, prefix),
                        rescore_statements(metrics, compiled.used_metrics, table, prefix))


def compile_sides(candidate: Policy, reference: Policy) -> list[CompiledSide]:
    return [compile_side(candidate, 0)] + ([compile_side(reference, 1)] if reference.config is not None else [])


def compile_plan(candidate: Policy, reference: Policy) -> Plan:
    """What `flywheel whatif gate` runs: the stored history, then each policy's statements."""
    return plan_of(compile_sides(candidate, reference))


def plan_of(sides: list[CompiledSide]) -> Plan:
    return Plan("whatif", (*HISTORY, *(p.statement for p in CHECKS), *(st for side in sides for st in side.statements())))


class Side:
    """One policy, compiled once, replayed decision after decision.

    A rule whose definition (config, metric definition, reducer; engine/whatif/replay.py::rule_definitions)
    equals the one a decision was decided with keeps its stored outcome, with the policy's severity: it is the
    same query over the same stored scores. Only the other rules run again, reading only their metrics."""

    def __init__(self, con, policy: Policy, slot: int, compiled: "CompiledSide | None" = None):
        self.con, self.policy = con, policy
        self.gate, metrics = policy.config["gate"], policy.config["metrics"]
        side = compiled or compile_side(policy, slot)
        self.compiled: CompiledGate = side.gate
        self.rescorer = Rescorer(con, metrics, side.table, side.rescores, side.create)
        self.definitions = rule_definitions(self.gate, self.rescorer.hash)
        self.spec = GateSpec.of(self.gate)
        self.rule_metrics = {name: r.metric for name, r in self.spec.rules.items()}

    def replay(self, decision: StoredDecision, runs: dict[str, StoredRun], with_cases: bool) -> SideReplay:
        b, c = runs[decision.baseline_run], runs[decision.challenger_run]
        stored = {r["name"]: r for r in decision.rules}

        def scored_with(m: str) -> str | None:
            return c.metric_hash(m) if c.metric_hash(m) == b.metric_hash(m) else None

        decided = rule_definitions(decision.gate_config, scored_with)
        compute = {n for n, d in self.definitions.items() if n not in stored or decided.get(n) != d}
        needed = {self.rule_metrics[n] for n in compute}
        used, from_store, rescored = {}, [], []
        for m in self.compiled.used_metrics:
            differs = self.rescorer.differs(m, [b, c])
            used[m] = {"hash": self.rescorer.hash(m),
                       "scored_with": {"baseline": b.metric_hash(m), "challenger": c.metric_hash(m)},
                       "source": "re-scored from stored outputs" if differs else "stored scores"}
            if m not in needed:
                continue
            if not differs:
                from_store.append(m)
                continue
            reason = self.rescorer.refusal(m, [b, c])
            if reason:
                return SideReplay(None, [], used, rescored, sorted(compute), reason)
            rescored.append(m)
        for m in rescored:
            self.rescorer.rescore(b, m)
            self.rescorer.rescore(c, m)
        computed = judge(self.con, self.compiled, b.run_id, c.run_id, from_store, rescored, compute, with_cases)
        rules = []
        for name, rule in self.spec.rules.items():
            if name in computed:
                rules.append(computed[name].to_json())
            else:
                rules.append({**stored[name], "severity": rule.severity})
        outcome, rules = verdict(rules)
        return SideReplay(outcome, rules, used, rescored, sorted(compute))


def _record(decision: StoredDecision) -> dict:
    return {"decision_id": decision.decision_id, "decided_at": decision.decided_at.isoformat(),
            "baseline": {"name": decision.baseline_model, "run_id": decision.baseline_run},
            "challenger": {"name": decision.challenger_model, "run_id": decision.challenger_run},
            "status": "unchanged", "reason": None,
            "verdict": {"before": decision.verdict, "after": None},
            "dataset_versions": {}, "metrics": {}, "rescored": [], "recomputed": [], "changes": [], "rules": []}


def replay_decisions(con, candidate: Policy, reference: Policy, selection: Selection) -> dict:
    """The whole replay as plain data (schemas/whatif_gate_result.schema.json, without the command fields)."""
    started = time.perf_counter()
    sides = compile_sides(candidate, reference)
    journal.running_plan(plan_of(sides))
    decisions = select_decisions(con, selection)
    if not decisions:
        raise UserError("no stored gate decisions match the selection "
                        f"({', '.join(f'{k}={v}' for k, v in selection.to_json().items() if v is not None) or 'all'}); "
                        "run `flywheel gate` first, or widen since=/challenger=")
    runs = load_runs(con, {r for d in decisions for r in (d.baseline_run, d.challenger_run)})
    versions = stored_versions(con)
    after_side = Side(con, candidate, 0, sides[0])
    before_side = Side(con, reference, 1, sides[1]) if len(sides) > 1 else None
    records, replay_ms = [], []
    for decision in decisions:
        t0 = time.perf_counter()
        rec = _record(decision)
        records.append(rec)
        reason = refusal(decision, runs, versions)
        if reason is None:
            rec["dataset_versions"] = dataset_versions_of(decision, runs)
            reason = _replay_one(rec, decision, runs, after_side, before_side)
        if reason:
            rec.update(status="refused", reason=reason)
        replay_ms.append((time.perf_counter() - t0) * 1000)
    summary = summarise(records)
    return {"selection": {**selection.to_json(), "matched": len(decisions)},
            "summary": summary, "summary_line": summary_line(summary),
            "metric_hashes": after_side.compiled.metric_hashes(),
            "model_calls": after_side.rescorer.model_calls + (before_side.rescorer.model_calls if before_side else 0),
            "decisions": records,
            "timings_ms": {"total": (time.perf_counter() - started) * 1000,
                           "per_decision_mean": sum(replay_ms) / len(replay_ms)}}


def _replay_one(rec: dict, decision: StoredDecision, runs: dict[str, StoredRun], after_side: Side,
                before_side: Side | None) -> str | None:
    """Fill `rec` with the comparison; return a refusal reason instead when a side cannot be replayed."""
    for with_cases in (False, True):
        after = after_side.replay(decision, runs, with_cases)
        rec["metrics"], rec["rescored"], rec["recomputed"] = after.metrics, after.rescored, after.recomputed
        if after.refused:
            return after.refused
        if before_side is None:
            b_verdict, b_rules, b_cfg = decision.verdict, decision.rules, decision.gate_config
        else:
            before = before_side.replay(decision, runs, with_cases)
            if before.refused:
                return f"the reference policy cannot be replayed: {before.refused}"
            b_verdict, b_rules, b_cfg = before.verdict, before.rules, before_side.gate
            rec["verdict"]["before"] = b_verdict
            rec["reference_metrics"], rec["reference_rescored"] = before.metrics, before.rescored
        comparison = compare(b_verdict, b_rules, b_cfg, after.verdict, after.rules, after_side.gate)
        # counts first; only a decision whose outcome changed is judged again to list its offending cases
        if comparison.status == "unchanged" or with_cases:
            break
    rec["status"] = comparison.status
    rec["verdict"]["after"] = after.verdict
    rec["changes"] = comparison.changes
    rec["rules"] = [{k: r.get(k) for k in ("name", "severity", "status", "value", "bound")} for r in after.rules]
    return None


def summarise(records: list[dict]) -> dict:
    flipped = [r for r in records if r["status"] == "flipped"]
    return {
        "decisions": len(records),
        "replayed": sum(1 for r in records if r["status"] != "refused"),
        "flipped": len(flipped),
        "newly_blocked": sum(1 for r in flipped if r["verdict"]["after"] == "BLOCKED"),
        "newly_passing": sum(1 for r in flipped if r["verdict"]["after"] == "PASS"),
        "changed": sum(1 for r in records if r["status"] == "changed"),
        "unchanged": sum(1 for r in records if r["status"] == "unchanged"),
        "refused": sum(1 for r in records if r["status"] == "refused"),
        "rescored": sum(1 for r in records if r["rescored"]),
    }


def summary_line(s: dict) -> str:
    line = (f"this policy flips {s['flipped']} of {s['decisions']} past decision{'s' if s['decisions'] != 1 else ''}: "
            f"{s['newly_blocked']} newly blocked, {s['newly_passing']} newly passing")
    if s["changed"]:
        line += f"; rule outcomes change in {s['changed']} more (same verdict)"
    if s["rescored"]:
        line += f"; {s['rescored']} re-scored from stored outputs"
    if s["refused"]:
        line += f"; {s['refused']} could not be replayed (refused, see below)"
    return line


def exit_code(summary: dict) -> int:
    """0: nothing flips; 1: a verdict or rule outcome flips, or a decision could not be replayed (fail closed)."""
    return 0 if summary["unchanged"] == summary["decisions"] else 1
