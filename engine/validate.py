"""Validate a composed config: JSON Schemas per part plus cross-references, every problem at once.

Each problem names the config file the key came from, the dotted key path and what is allowed.
"""
from __future__ import annotations

import re
from typing import Callable

from engine import registry
from engine.config import Composed, activate
from engine.config_checks import CHECKERS
from engine.errors import ConfigError, ConfigProblem, did_you_mean
from engine.jsonlines import holds_lone_surrogate
from engine.output_identity import IDENTITIES, identity_problem
from engine.redaction import redact_message
from engine.schemas import all_errors, dotted, validator, validator_for

# Features add checkers for their own config section (gate, monitor, bridge, ...). A command validates the
# sections it reads, so a project that only evaluates is not held up by a monitor policy it never runs.
# The module that registers each optional section's checker.
SECTION_CHECKERS = {"bridge": ("engine.bridge.config",),
                    "gate": ("engine.gate.validation", "engine.gate.judge_calibrated"),
                    "monitor": ("engine.monitor.config",), "ingest": ("engine.commands.ingest",),
                    "source": ("engine.lake",),
                    "simulate": ("engine.commands.simulate",), "judges": ("engine.judges.config",)}


def lone_surrogates(value: object, prefix: str = "") -> list[str]:
    """Key paths of the strings (keys or values) holding a lone surrogate: YAML's "\\ud800" makes one."""
    if isinstance(value, str):
        return [prefix or "(root)"] if holds_lone_surrogate(value) else []
    if isinstance(value, dict):
        return [p for k, v in value.items()
                for p in ([f"{prefix}.{k}".lstrip(".")] if holds_lone_surrogate(str(k)) else
                          lone_surrogates(v, f"{prefix}.{k}".lstrip(".")))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in lone_surrogates(v, f"{prefix}[{i}]")]
    return []


def validate(composed: Composed, sections: tuple[str, ...] | None = None) -> None:
    """Raise ConfigError listing every problem; return None when the config is valid.

    `sections`: the optional config sections the command uses (gate, monitor, bridge, ingest, simulate);
    None checks them all. The core (store, datasets, models, metrics) is always checked."""
    import importlib

    import engine.metrics  # noqa: F401  (metric kinds must be registered before checking names)

    activate(composed)
    # Register the checkers of the sections this command reads, importing only those (a command that only
    # evaluates does not load the monitor's statistics).
    for section, modules in SECTION_CHECKERS.items():
        if sections is None or section in sections:
            for module in modules:
                importlib.import_module(module)

    problems: list[ConfigProblem] = []

    def add(key_path: str, message: str) -> None:
        # an error must not print a secret, neither in its message nor in the override it names
        source = redact_message(composed.source_of(key_path), key_path, composed.config)
        message = redact_message(message, key_path, composed.config)
        problems.append(ConfigProblem(source, key_path, message))

    def check(schema_name: str, value: object, prefix: str) -> None:
        for path, message in all_errors(validator(schema_name), value):
            add(dotted(path, prefix), message)

    cfg = composed.config
    for key_path in lone_surrogates(cfg):
        add(key_path, "holds a lone surrogate (a \\uD800-\\uDFFF escape on its own), which is not a Unicode "
                      "character and cannot be stored; write the character itself")
    check("config", cfg, "")
    if isinstance(cfg.get("store"), dict):
        check("store", cfg["store"], "store")
    if isinstance(cfg.get("backend"), dict):
        check("backend", cfg["backend"], "backend")
    for name, spec in (cfg.get("dataset") or {}).items():
        if isinstance(spec, dict):
            check("dataset", spec, f"dataset.{name}")
        else:
            add(f"dataset.{name}", "expected a mapping with `path`")
    for slot in ("model", "baseline", "challenger"):
        if isinstance(cfg.get(slot), dict):
            check("model", cfg[slot], slot)
            # (a missing adapter is the schema's error; only replay fixes the identity)
            problem = identity_problem(cfg[slot].get("adapter"), cfg[slot].get("output_identity"))
            if problem and cfg[slot].get("output_identity") in IDENTITIES:  # the schema names a bad value
                add(f"{slot}.output_identity", problem)
    _check_metrics(cfg, composed.known_dataset_names(), add)
    _check_duplicate_names(composed, add)
    for section, extra in CHECKERS:
        if section is None or sections is None or section in sections:
            extra(composed, add)
    if problems:
        raise ConfigError(problems)


def _check_metrics(cfg: dict, datasets: list[str], add: Callable[[str, str], None]) -> None:
    kinds = registry.names("metric")
    metrics = cfg.get("metrics") or {}
    if not metrics:
        add("metrics", "no metrics selected; pick at least one suite, e.g. metrics=[support]")
    for name, spec in metrics.items():
        where = f"metrics.{name}"
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            add(where, "metric names are letters, digits and underscores, starting with a letter")
        if not isinstance(spec, dict) or "kind" not in spec:
            add(where, f"expected a mapping with `kind` (one of: {', '.join(kinds)})")
            continue
        kind = spec["kind"]
        if kind not in kinds:
            add(f"{where}.kind", f"unknown metric kind '{kind}'; {did_you_mean(str(kind), kinds)}")
            continue
        for path, message in all_errors(validator_for(registry.get("metric", kind).schema), spec):
            add(dotted(path, where), message)
        for i, ds in enumerate(spec.get("datasets") or []):
            if ds not in datasets:
                add(f"{where}.datasets[{i}]", f"unknown dataset '{ds}'; {did_you_mean(ds, datasets)}")
        both = sorted(set(spec.get("tags") or []) & set(spec.get("exclude_tags") or []))
        if both:
            add(f"{where}.exclude_tags", f"tag(s) {', '.join(both)} both included (tags) and excluded: "
                                         f"such a case cannot be in scope; keep each tag in one list")


def _check_duplicate_names(composed: Composed, add: Callable[[str, str], None]) -> None:
    """Hydra merges same-named keys from two selected files silently; a duplicate name is a mistake."""
    from engine import yaml_fast

    for group in ("dataset", "metrics"):
        first_seen: dict[str, str] = {}
        for option, path in composed.files_of_group(group):
            content = yaml_fast.safe_load(path.read_text(encoding="utf-8")) or {}
            for key in content if isinstance(content, dict) else []:
                if key == "defaults":
                    continue
                if key in first_seen and first_seen[key] != option:
                    add(f"{group}.{key}", f"'{key}' is defined in both {group}/{first_seen[key]}.yaml and "
                                          f"{group}/{option}.yaml; rename one")
                else:
                    first_seen[key] = option
