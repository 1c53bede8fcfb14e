"""Config checks of the gate: its schema, each rule's kind schema, and names it refers to."""
from __future__ import annotations

from engine import registry
from engine.errors import did_you_mean
from engine.schemas import all_errors, dotted, validator, validator_for
from engine.config_checks import checker
from engine.gate import judge_calibrated  # noqa: E402,F401  (its checker: blocking judge rules need one)


@checker(section="gate")
def check_gate(composed, add) -> None:
    import engine.gate.kinds  # noqa: F401  (registers the rule kinds)

    cfg = composed.config
    gate = cfg.get("gate") or {}
    for path, message in all_errors(validator("gate"), gate):
        add(dotted(path, "gate"), message)
    kinds = registry.names("gate_rule")
    metrics = sorted((cfg.get("metrics") or {}).keys())
    datasets = composed.known_dataset_names()
    for name, rule in (gate.get("rules") or {}).items():
        where = f"gate.rules.{name}"
        if not isinstance(rule, dict) or rule.get("kind") not in kinds:
            kind = rule.get("kind") if isinstance(rule, dict) else None
            add(f"{where}.kind", f"unknown rule kind '{kind}'; {did_you_mean(str(kind), kinds)}")
            continue
        for path, message in all_errors(validator_for(registry.get("gate_rule", rule["kind"]).schema), rule):
            add(dotted(path, where), message)
        if "metric" in rule and rule["metric"] not in metrics:
            add(f"{where}.metric", f"unknown metric '{rule['metric']}'; {did_you_mean(str(rule['metric']), metrics)}")
        for i, ds in enumerate(rule.get("datasets") or []):
            if ds not in datasets:
                add(f"{where}.datasets[{i}]", f"unknown dataset '{ds}'; {did_you_mean(ds, datasets)}")
    if bool(cfg.get("baseline_run")) != bool(cfg.get("challenger_run")):
        add("baseline_run", "set both baseline_run and challenger_run to compare stored runs")
