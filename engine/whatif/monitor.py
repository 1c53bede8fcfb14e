"""`flywheel whatif monitor`: the stored monitor history under edited drift rules and bounds.

The history is every stored monitor run's statistics, per rule and window (a later run's value of a window
replaces an earlier one's): drift statistics and p-values per window, KPI values per window and over the
period, prod-lab parity per model version (the gap lab - live, per window and over the period). Each is judged
again under the candidate policy's bound (threshold, p_value, sigma, KPI target, parity tolerance) and compared
with the stored alert (or with the reference policy's bound, `against=`).

Only bounds are replayed; statistics are never recomputed. A rule whose statistic's definition differs from the
one stored (another test, binning, feature, window, reference, aggregate...), a rule new to the policy, or a
new `sigma` (it needs the statistic over the reference windows, which is not stored) is refused with the
reason, counted and left out of the alert counts (fail closed). The definition a run was computed with comes
from `monitor_policies` (stored with each run), else from a policy at hand with the run's config hash.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engine import journal
from engine.errors import UserError
from engine.executor import execute
from engine.monitor.kpis import OPS
from engine.monitor.run import online_hashes
from engine.monitor.spec import entries_with_defaults
from engine.provenance import config_hash
from engine.sql import Plan, statement
from engine.whatif.policy import Policy

SECTIONS = {"drift": "drift", "kpi": "kpis", "parity": "parity"}
BOUND_KEYS = {"drift": ("threshold", "p_value", "sigma", "severity", "description"),
              "kpi": ("target", "severity", "description", "category"),
              "parity": ("tolerance", "severity", "description")}
SCOPE_KEYS = ("window", "model", "start", "end", "reference")  # what every statistic depends on
PERIOD = None  # the window of a whole-period observation (KPI value, parity gap over the current period)


@dataclass
class Observation:
    section: str
    name: str
    model: str | None
    window: str | None  # ISO start, or None for the whole current period
    value: float | None  # statistic, KPI value or parity gap
    p_value: float | None
    run_id: str
    stored_alert: bool
    stored: dict = field(repr=False)  # the run's result entry for the rule


@dataclass(frozen=True)
class RunPolicy:
    monitor: dict
    online_metric_hashes: dict


def _iso(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


MONITOR_RUNS = statement("monitor_runs", "SELECT run_id, started_at, config_hash, result FROM monitor_runs "
                         "ORDER BY started_at, run_id", "every stored monitor run, oldest first")
# the store is opened read-only (no migrations): a store older than monitor_policies does not have the table
HAS_POLICIES = statement("policies:exists", "SELECT count(*) AS n FROM duckdb_tables() "
                         "WHERE table_name = 'monitor_policies' AND database_name = current_database()",
                         "does the store keep each run's policy?")
STORED_POLICIES = statement("policies", "SELECT run_id, policy FROM monitor_policies",
                            "the policy each monitor run was computed with", "when the store keeps them")
PLAN = Plan("whatif", (MONITOR_RUNS, HAS_POLICIES, STORED_POLICIES))


def load_history(con, since: datetime | None) -> tuple[list[dict], dict[tuple, Observation], dict[tuple, str]]:
    """The stored runs (oldest first), the latest observation of every (section, rule, model, window) (`since`
    keeps windows starting at or after it; whole-period observations are kept), and the latest stored message of
    every rule (for rules stored without a single observation, e.g. no traffic in scope)."""
    runs = [{**r, "result": json.loads(r["result"])} for r in execute(con, MONITOR_RUNS, {})]
    latest: dict[tuple, Observation] = {}
    messages: dict[tuple, str] = {}
    for run in runs:
        result = run["result"]
        for section, key in SECTIONS.items():
            for entry in result.get(key) or []:
                messages[(section, entry["name"])] = entry.get("message", "")
        for obs in _observations(run["run_id"], result):
            if since is not None and obs.window is not None and datetime.fromisoformat(obs.window) < since:
                continue
            latest[(obs.section, obs.name, obs.model, obs.window)] = obs
    return runs, latest, messages


def _observations(run_id: str, result: dict):
    for d in result.get("drift") or []:
        for w in d.get("windows") or []:
            yield Observation("drift", d["name"], None, w["window"], w.get("statistic"), w.get("p_value"), run_id,
                              bool(w.get("alert")), d)
    for k in result.get("kpis") or []:
        for w in k.get("windows") or []:
            yield Observation("kpi", k["name"], None, w["window"], w.get("value"), None, run_id,
                              w.get("meets_target") is False, k)
        yield Observation("kpi", k["name"], None, PERIOD, k.get("value"), None, run_id, k["status"] != "ok", k)
    for p in result.get("parity") or []:
        lab = (p.get("lab") or {}).get("rate")
        tolerance = float(p.get("tolerance", 0.1))
        for w in p.get("windows") or []:
            gap = lab - w["rate"] if lab is not None and w.get("rate") is not None else None
            # the monitor alerts on the period's gap only; per window the stored tolerance is applied here
            yield Observation("parity", p["name"], p.get("model_version"), w["window"], gap, None, run_id,
                              gap is not None and gap > tolerance, p)
        yield Observation("parity", p["name"], p.get("model_version"), PERIOD, p.get("gap"), None, run_id,
                          p["status"] != "ok", p)


def run_policies(con, runs: list[dict], known: list[Policy]) -> dict[str, RunPolicy | None]:
    """The policy each run was computed with: stored with it, else a policy at hand with its config hash."""
    stored = {}
    if execute(con, HAS_POLICIES, {})[0]["n"]:
        stored = {r["run_id"]: json.loads(r["policy"]) for r in execute(con, STORED_POLICIES, {})}
    # hashed as monitor runs store it (secrets as fingerprints)
    by_hash = {config_hash(p.config["monitor"]): RunPolicy(p.config["monitor"], online_hashes(p.config))
               for p in known if p.config is not None}
    out = {}
    for run in runs:
        if run["run_id"] in stored:
            p = stored[run["run_id"]]
            out[run["run_id"]] = RunPolicy(p["monitor"], p.get("online_metric_hashes") or {})
        else:
            out[run["run_id"]] = by_hash.get(run["config_hash"])
    return out


def definition(section: str, name: str, monitor: dict, hashes: dict) -> dict | None:
    """Everything that decides a rule's statistic (not its bound), or None when the policy has no such rule."""
    rule = (monitor.get(SECTIONS[section]) or {}).get(name)
    if rule is None:
        return None
    out = {"rule": {k: v for k, v in rule.items() if k not in BOUND_KEYS[section]},
           "scope": {k: monitor.get(k) for k in SCOPE_KEYS}}
    if section == "drift":
        feature = (monitor.get("features") or {}).get(rule.get("feature"))
        out["feature"] = feature
        if isinstance(feature, dict) and "score" in feature:
            out["score_metric"] = hashes.get(feature["score"])
    if section == "parity" and rule.get("live") == "online":
        out["lab_metric"] = hashes.get(rule.get("lab_metric"))
    return out


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k} {json.dumps(va)} -> {json.dumps(vb)}")
    return out


def bound_text(section: str, rule: dict | None) -> str | None:
    if rule is None:
        return None
    if section == "drift":
        kind = next((k for k in ("threshold", "p_value", "sigma") if k in rule), None)
        return {"threshold": f"statistic > {rule.get('threshold')}", "p_value": f"p < {rule.get('p_value')}",
                "sigma": f"statistic > mean + {rule.get('sigma')} sd"}.get(kind, "-")
    if section == "kpi":
        target = rule.get("target") or {}
        return f"alert unless {target['op']} {target['value']}" if target.get("op") else "no target"
    return f"gap > {float(rule['tolerance']):g}"


def judge(section: str, rule: dict, obs: Observation) -> tuple[bool | None, str | None]:
    """(alert, None) under `rule`'s bound, or (None, why it cannot be judged from what is stored)."""
    if section == "drift":
        if "threshold" in rule:
            return obs.value is not None and obs.value > float(rule["threshold"]), None
        if "p_value" in rule:
            return obs.p_value is not None and obs.p_value < float(rule["p_value"]), None
        stored = obs.stored.get("threshold") or {}
        if stored.get("kind") == "sigma" and float(stored.get("value")) == float(rule["sigma"]):
            bound = stored.get("bound")
            return bound is not None and obs.value is not None and obs.value > bound, None
        return None, ("a new sigma bound needs the statistic over the reference windows, which is not stored; "
                      "run `flywheel monitor` with it")
    if section == "kpi":
        target = rule.get("target")
        if obs.value is None:
            return obs.window is PERIOD, None  # the period's KPI that cannot be computed alerts (as the monitor)
        return target is not None and not OPS[target["op"]](obs.value, target["value"]), None
    if obs.window is PERIOD and obs.stored.get("status") == "error":
        return True, None  # no lab run: an error, which the monitor counts as an alert, whatever the tolerance
    return obs.value is not None and obs.value > float(rule["tolerance"]), None


def _week(window: str) -> str:
    day = datetime.fromisoformat(window).date()
    return (day - timedelta(days=day.weekday())).isoformat()


def _obs_json(obs: Observation) -> dict:
    return {"window": obs.window or "period", "model": obs.model, "value": obs.value, "p_value": obs.p_value,
            "run_id": obs.run_id}


class _Side:
    """One policy's judgement of the history (None policy: the stored alerts)."""

    def __init__(self, policy: Policy, policies: dict[str, RunPolicy | None]):
        self.policy, self.policies = policy, policies
        cfg = policy.config
        self.monitor = cfg["monitor"] if cfg else None
        self.hashes = online_hashes(cfg) if cfg else {}

    def rule(self, section: str, name: str) -> dict | None:
        """The policy's rule with its schema's defaults filled in (None: the policy has no such rule). What a rule
        computes is compared as written (`definition`), as the stored policies hold it."""
        rule = (self.monitor.get(SECTIONS[section]) or {}).get(name) if self.monitor is not None else None
        return None if rule is None else entries_with_defaults(SECTIONS[section], {name: rule})[name]

    def alerts(self, section: str, name: str, observations: list[Observation]) -> tuple[list[bool] | None, str | None]:
        """Each observation's alert under this side, or (None, reason) when it cannot be judged."""
        if self.monitor is None:
            return [o.stored_alert for o in observations], None
        rule = self.rule(section, name)
        if rule is None:
            return [False] * len(observations), None  # the rule is gone: it alerts on nothing
        mine = definition(section, name, self.monitor, self.hashes)
        out = []
        for obs in observations:
            run_policy = self.policies.get(obs.run_id)
            if run_policy is None:
                return None, (f"monitor run {obs.run_id} has no stored policy and its config hash matches no policy "
                              f"at hand: what its statistics measured is unknown")
            theirs = definition(section, name, run_policy.monitor, run_policy.online_metric_hashes)
            if theirs is None:
                return None, f"{section} '{name}' is not in the policy of run {obs.run_id}: its statistics are not stored"
            if theirs != mine:
                changed = "; ".join(_differences(theirs, mine)[:3])
                return None, (f"the statistic's definition differs from the one stored by run {obs.run_id} ({changed}): "
                              f"run `flywheel monitor` with it to compute it")
            alert, reason = judge(section, rule, obs)
            if reason:
                return None, reason
            out.append(alert)
        return out, None

    def severity(self, section: str, name: str, observations: list[Observation]) -> str | None:
        if self.monitor is None:
            return observations[-1].stored.get("severity") if observations else None
        rule = self.rule(section, name)
        return None if rule is None else rule["severity"]

    def bound(self, section: str, name: str, observations: list[Observation]) -> str | None:
        if self.monitor is not None:
            return bound_text(section, self.rule(section, name))
        if not observations:
            return None
        stored = observations[-1].stored
        if section == "drift":
            t = stored.get("threshold") or {}
            return bound_text("drift", {t.get("kind"): t.get("value")}) if t.get("kind") else None
        if section == "kpi":
            return bound_text("kpi", stored)
        return bound_text("parity", stored)


def replay_monitor(con, candidate: Policy, reference: Policy, since: datetime | None, composed=None) -> dict:
    journal.running_plan(PLAN)
    runs, latest, messages = load_history(con, since)
    if not runs:
        raise UserError("no stored monitor runs: run `flywheel monitor` first")
    known = [p for p in (candidate, reference) if p.config is not None]
    policies = run_policies(con, runs, known)
    after, before = _Side(candidate, policies), _Side(reference, policies)
    grouped: dict[tuple[str, str], list[Observation]] = {}
    for obs in latest.values():
        grouped.setdefault((obs.section, obs.name), []).append(obs)
    for section, key in SECTIONS.items():  # rules of the candidate with no stored statistic at all
        for name in (candidate.config["monitor"].get(key) or {}):
            grouped.setdefault((section, name), [])
    rules, weeks = [], {}
    for (section, name), observations in sorted(grouped.items()):
        observations.sort(key=lambda o: (o.model or "", o.window or "~"))
        rules.append(_replay_rule(section, name, observations, before, after, weeks, messages.get((section, name))))
    weeks_list = [{"week": w, "before": b, "after": a} for w, (b, a) in sorted(weeks.items())]
    summary = _summary(rules, weeks_list)
    windows = sorted({o.window for o in latest.values() if o.window})
    return {"history": {"runs": len(runs), "observations": len(latest), "first_window": windows[0] if windows else None,
                        "last_window": windows[-1] if windows else None,
                        "since": since.isoformat() if since else None},
            "summary": summary, "summary_line": summary_line(summary), "rules": rules, "weeks": weeks_list}


def _replay_rule(section, name, observations, before: _Side, after: _Side, weeks: dict, message: str | None
                 ) -> dict:
    rec = {"section": section, "name": name, "status": "unchanged", "reason": None,
           "severity": {"before": before.severity(section, name, observations),
                        "after": after.severity(section, name, observations)},
           "bound": {"before": before.bound(section, name, observations),
                     "after": after.bound(section, name, observations)},
           "observations": len(observations), "alerts": {"before": 0, "after": 0}, "appear": [], "disappear": []}
    if not observations and after.rule(section, name) is not None:
        reason = (f"no stored statistics to replay: the stored runs could not compute it ({message})"
                  if message is not None else
                  f"new {section} rule: no stored statistics to replay; run `flywheel monitor` with it to compute them")
        rec.update(status="refused", reason=reason)
        return rec
    old, why_old = before.alerts(section, name, observations)
    new, why_new = after.alerts(section, name, observations)
    if old is None or new is None:
        rec.update(status="refused", reason=why_new or f"the reference policy: {why_old}")
        return rec
    rec["alerts"] = {"before": sum(old), "after": sum(new)}
    for obs, a, b in zip(observations, old, new):
        if a != b:
            rec["appear" if b else "disappear"].append(_obs_json(obs))
        if obs.window is not None:
            counts = weeks.setdefault(_week(obs.window), [0, 0])
            counts[0] += a
            counts[1] += b
    if after.rule(section, name) is None:
        rec["status"] = "removed"
    elif rec["appear"] or rec["disappear"] or (
            rec["severity"]["before"] != rec["severity"]["after"] and (rec["alerts"]["before"] or rec["alerts"]["after"])):
        rec["status"] = "changed"
    return rec


def _summary(rules: list[dict], weeks: list[dict]) -> dict:
    counted = [r for r in rules if r["status"] != "refused"]
    n_weeks = len(weeks)
    return {"rules": len(rules),
            "changed_rules": sum(1 for r in rules if r["status"] == "changed"
                                 or (r["status"] == "removed" and r["alerts"]["before"])),
            "refused_rules": sum(1 for r in rules if r["status"] == "refused"),
            "appear": sum(len(r["appear"]) for r in counted),
            "disappear": sum(len(r["disappear"]) for r in counted),
            "alerts_before": sum(r["alerts"]["before"] for r in counted),
            "alerts_after": sum(r["alerts"]["after"] for r in counted),
            "weeks": n_weeks,
            "per_week_before": sum(w["before"] for w in weeks) / n_weeks if n_weeks else None,
            "per_week_after": sum(w["after"] for w in weeks) / n_weeks if n_weeks else None}


def summary_line(s: dict) -> str:
    line = (f"this policy changes {s['appear'] + s['disappear']} alert(s) in {s['changed_rules']} of {s['rules']} "
            f"rule(s): {s['appear']} appear, {s['disappear']} disappear")
    if s["weeks"]:
        line += f"; windowed alerts per week {s['per_week_before']:.1f} -> {s['per_week_after']:.1f}"
    if s["refused_rules"]:
        line += f"; {s['refused_rules']} rule(s) could not be replayed (refused, left out of the counts)"
    return line


def exit_code(summary: dict) -> int:
    return 0 if not summary["changed_rules"] and not summary["refused_rules"] else 1
