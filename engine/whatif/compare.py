"""What changes between two outcomes of one stored decision: the verdict, each rule's outcome, and by how much.

A rule's outcome is its status (pass | fail | error) and severity (blocking | warn). Rules are matched by name:
a rule only in the new policy is `added` (an outcome change unless it passes), one only in the old is `removed`
(an outcome change unless it passed). A changed value with the same outcome is reported, not counted.
The margin says by how much a rule clears (positive) or misses (negative) its bound, in the rule's own unit:
the delta above `min_delta`, the aggregate against a threshold's bound, regressed cases below `max`, failing
cases (all_pass).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from engine.gate.spec import RuleSpec

CASES_SHOWN = 20  # newly offending cases listed per changed rule


def margin(spec: RuleSpec | None, rule: dict) -> float | None:
    """How far a rule's value is from its bound (`spec`: the rule's config): >= 0 clears it on that count, < 0
    misses it."""
    value = rule.get("value")
    if value is None or spec is None or rule.get("status") == "error":
        return None
    kind, o = rule.get("kind"), spec.options
    if kind == "threshold":
        bound, op = float(o.bound), o.op
        if op in (">=", ">"):
            return value - bound
        if op in ("<=", "<"):
            return bound - value
        return -abs(value - bound)
    if kind == "improvement":
        return value - o.min_delta
    if kind == "no_regression":
        return int(o.max) - value
    if kind == "all_pass":
        return -value
    return None


def _side(spec: RuleSpec | None, rule: dict) -> dict:
    return {"status": rule["status"], "severity": rule["severity"], "value": rule.get("value"),
            "bound": rule.get("bound"), "margin": margin(spec, rule), "message": rule.get("message", "")}


def _rule_spec(gate: dict, name: str) -> RuleSpec | None:
    rule = (gate.get("rules") or {}).get(name)
    return RuleSpec.of(name, rule) if rule is not None else None


def _num(v) -> str:
    return "-" if v is None else f"{v:.4g}"


def _explain(name: str, before: dict | None, after: dict | None) -> str:
    if after is None:
        return f"{name}: removed (was {before['status']}, {before['severity']}: {before['message']})"
    if before is None:
        text = f"{name}: new rule, {after['status']} ({after['severity']}): {after['message']}; bound {after['bound']}"
    else:
        text = (f"{name}: {before['status']} -> {after['status']}"
                + (f" ({before['severity']} -> {after['severity']})" if before["severity"] != after["severity"] else "")
                + f": {after['message']}; bound {after['bound']}")
        if before["bound"] != after["bound"]:
            text += f" (was {before['bound']})"
    m = after.get("margin")
    if m is not None and after["status"] != "error":
        text += f"; {'misses' if m < 0 else 'clears'} it by {_num(abs(m))}"
        if before is not None and before.get("margin") is not None:
            text += f" (was {'-' if before['margin'] < 0 else '+'}{_num(abs(before['margin']))})"
    return text


def _case_key(case: dict) -> tuple:
    return case.get("dataset"), case.get("case_id")


@dataclass
class Comparison:
    verdict_before: str
    verdict_after: str
    changes: list[dict] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.verdict_before != self.verdict_after:
            return "flipped"
        return "changed" if any(c["outcome_changed"] for c in self.changes) else "unchanged"


def compare(before_verdict: str, before_rules: list[dict], before_cfg: dict,
            after_verdict: str, after_rules: list[dict], after_cfg: dict) -> Comparison:
    """`*_rules`: rule results as the gate stores them; `*_cfg`: the gate configs (for the margins)."""
    old = {r["name"]: r for r in before_rules}
    new = {r["name"]: r for r in after_rules}
    out = Comparison(before_verdict, after_verdict)
    for name in list(new) + [n for n in old if n not in new]:
        b_rule, a_rule = old.get(name), new.get(name)
        b_spec, a_spec = _rule_spec(before_cfg, name), _rule_spec(after_cfg, name)
        before = _side(b_spec, b_rule) if b_rule else None
        after = _side(a_spec, a_rule) if a_rule else None
        if after is not None:
            stats = a_rule.get("stats") or {}
            if "p_value" in stats:
                after["p_value"] = stats["p_value"]
                after["alpha"] = a_spec.options.alpha
        if before is None:
            change, changed = "added", after["status"] != "pass"
        elif after is None:
            change, changed = "removed", before["status"] != "pass"
        elif (before["status"], before["severity"]) != (after["status"], after["severity"]):
            change, changed = ("status" if before["status"] != after["status"] else "severity"), True
        elif not _same(before["value"], after["value"]) or before["bound"] != after["bound"]:
            change, changed = "value", False
        else:
            continue
        record = {"rule": name, "change": change, "outcome_changed": changed, "before": before, "after": after,
                  "explanation": _explain(name, before, after), "new_cases": []}
        if a_rule and a_rule.get("cases"):
            seen = {_case_key(c) for c in (b_rule or {}).get("cases") or []}
            record["new_cases"] = [_case_brief(c) for c in a_rule["cases"] if _case_key(c) not in seen][:CASES_SHOWN]
        out.changes.append(record)
    return out


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _case_brief(case: dict) -> dict:
    keep = ("dataset", "case_id", "input_text", "challenger_output", "challenger_error", "c_detail")
    return {k: case.get(k) for k in keep if k in case}
