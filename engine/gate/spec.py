"""The `gate` section as frozen specs (engine/specs.py): the gate's defaults from schemas/gate.schema.json, each
rule's from its kind's registered schema (engine/gate/rules.py), so a kind reads `rule.options.min_delta`, never
`rule.get("min_delta", 0.0)`.

A spec is read from the validated section; the raw section is still what the gate hashes and stores
(`gate_config_hash`, `gate_decisions.gate_config`) and what `whatif gate` compares rule definitions by, so
filling in defaults changes no stored hash.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from engine import registry
from engine.schemas import load_schema
from engine.specs import with_defaults

# Each rule kind's options class, filled in by engine/gate/rules.py's `rule_kind` as it registers the kind (the
# registry imports engine.gate.kinds on the first lookup), so this module needs no import of the kinds.
OPTIONS: dict[str, type] = {}


class Options:
    """A kind's own options (a frozen dataclass whose fields are its schema's properties), read from a rule whose
    missing options were filled with their schema defaults; an option with no default and not given is None."""

    @classmethod
    def of(cls, rule: dict) -> Any:
        return cls(**{f.name: rule.get(f.name) for f in fields(cls)})


@dataclass(frozen=True)
class RuleSpec:
    """One gate rule: what every kind has (engine/gate/rules.py COMMON) and its kind's `options`."""

    name: str
    kind: str
    metric: str
    datasets: tuple[str, ...]  # scope: cases of these datasets (empty: every dataset)
    tags: tuple[str, ...]  # scope: cases with any of these tags (empty: every case)
    severity: str  # blocking | warn
    description: str | None
    options: Any  # OPTIONS[kind] (None for a kind without options of its own)

    @classmethod
    def of(cls, name: str, rule: dict) -> "RuleSpec":
        r = with_defaults(registry.schema("gate_rule", rule["kind"]), rule)
        options = OPTIONS.get(r["kind"])
        return cls(name, r["kind"], r["metric"], tuple(r["datasets"]), tuple(r["tags"]), r["severity"],
                   r.get("description"), options.of(r) if options else None)


@dataclass(frozen=True)
class BootstrapSpec:
    resamples: int
    seed: int


@dataclass(frozen=True)
class GateSpec:
    reducer: str  # all | majority | any
    bootstrap: BootstrapSpec
    rules: dict[str, RuleSpec]  # by name, in config order

    @classmethod
    def of(cls, gate: dict | None) -> "GateSpec":
        """The validated `gate` section (the section itself, not the whole config)."""
        g = with_defaults(load_schema("gate"), gate)
        boot = g["bootstrap"]
        return cls(g["reducer"], BootstrapSpec(int(boot["resamples"]), int(boot["seed"])),
                   {name: RuleSpec.of(name, rule) for name, rule in (g["rules"] or {}).items()})
