"""Config checks of the bridge policy: its schema, each sampler's schema, and the names it refers to."""
from __future__ import annotations

from engine import registry
from engine.errors import did_you_mean
from engine.schemas import all_errors, dotted, validator, validator_for
from engine.config_checks import checker


@checker(section="bridge")
def check_bridge(composed, add) -> None:
    import engine.bridge.sampling  # noqa: F401  (registers the samplers)

    cfg = composed.config
    bridge = cfg.get("bridge")
    if not bridge:
        return
    for path, message in all_errors(validator("bridge"), bridge):
        add(dotted(path, "bridge"), message)
    kinds = registry.names("sampler")
    policies = bridge.get("policies") or {}
    drift_rules = list(((cfg.get("monitor") or {}).get("drift") or {}))
    online = list(((cfg.get("monitor") or {}).get("online") or {}).get("metrics") or [])
    for name, policy in policies.items():
        where = f"bridge.policies.{name}"
        kind = policy.get("kind") if isinstance(policy, dict) else None
        if kind not in kinds:
            add(f"{where}.kind", f"unknown sampler '{kind}'; {did_you_mean(str(kind), kinds)}")
            continue
        for path, message in all_errors(validator_for(registry.get("sampler", kind).schema), policy):
            add(dotted(path, where), message)
        if kind == "failure_first" and ("forbidden_tool" in (policy.get("signals") or [])) != \
                bool(policy.get("forbidden_tools")):
            add(where, "the forbidden_tool signal and forbidden_tools go together: name the tools an agent must "
                       "never call in forbidden_tools, with forbidden_tool in signals")
        if kind == "stratified" and ("per_stratum" in policy) == ("total" in policy):
            add(where, "give exactly one of per_stratum or total")
        if kind == "drift_segment" and policy.get("rule") not in drift_rules:
            add(f"{where}.rule", f"unknown drift rule '{policy.get('rule')}'; {did_you_mean(str(policy.get('rule')), drift_rules)}")
        sides = [(side, policy.get(side)) for side in ("a", "b")] if kind == "disagreement" else \
            [(f"against[{i}]", a) for i, a in enumerate(policy.get("against") or [])] if kind == "judge_disagreement" else []
        for side, source in sides:
            source = str(source or "")
            if source.startswith("online:") and source[7:] not in online:
                add(f"{where}.{side}", f"'{source[7:]}' is not scored online (monitor.online.metrics: "
                                       f"{', '.join(online) or 'none'})")
    golden = bridge.get("golden") or {}
    if golden.get("dataset") and golden["dataset"] not in composed.known_dataset_names():
        add("bridge.golden.dataset", f"unknown dataset '{golden['dataset']}'; "
                                     f"{did_you_mean(golden['dataset'], composed.known_dataset_names())}")
    for i, p in enumerate(golden.get("from_policies") or []):
        if p not in policies:
            add(f"bridge.golden.from_policies[{i}]", f"unknown policy '{p}'; {did_you_mean(p, list(policies))}")
