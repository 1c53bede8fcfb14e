"""The gate and monitor sections as frozen specs (engine/gate/spec.py, engine/monitor/spec.py): every default lives
in a JSON Schema (schemas/gate.schema.json, schemas/monitor.schema.json, the registered schemas of the gate rule
kinds and the drift tests), a section that leaves an option out behaves as one that sets the schema's default,
and the README's option tables and the bundled configs agree with the schemas."""
from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml

from engine import registry
from engine.gate.rules import COMMON, RuleContext
from engine.gate.spec import OPTIONS, GateSpec, RuleSpec
from engine.judges.fingerprint import judge_fingerprint
from engine.monitor.spec import DEFINITION, Binning, DriftSpec, MonitorSpec, Scope
from engine.report.option_tables import table
from engine.schemas import load_schema
from engine.specs import schema_defaults

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
KINDS = registry.names("gate_rule")
JUDGE = {"kind": "llm_judge", "judge": {"name": "j", "adapter": "python", "_target_": "x.Y"}}


# ---- the README (tests/test_option_tables.py holds it to the rendered tables, these among them) -----------------

def _section(title: str) -> str:
    start = README.index(f"\n### {title}\n")
    return README[start:README.index("\n### ", start + 1)]


def _documented_default(key: str) -> object:
    """The schema default of an option named in README prose: a gate or monitor option by its dotted path, or a
    gate rule kind's or a drift test's own option by its name."""
    section, _, rest = key.partition(".")
    if section in ("gate", "monitor") and rest:
        return schema_defaults(load_schema(section))[rest]
    for family in ("gate_rule", "drift_test"):
        found = {schema_defaults(registry.schema(family, n)).get(key, KeyError) for n in registry.names(family)}
        found.discard(KeyError)
        if found:
            assert len(found) == 1, f"`{key}` has different defaults across {family} kinds: {found}"
            return found.pop()
    raise KeyError(key)


def test_the_defaults_the_readme_states_in_prose_are_the_schemas():
    """`key` (default X) in the gate's and the monitor's sections of the README: X is the schema's default."""
    text = _section("The release gate") + _section("Monitoring")
    stated = re.findall(r"`([a-z_.]+)`\)? \(default ([^)]+)\)", text)
    assert {k for k, _ in stated} >= {"max", "monitor.min_join_share"}, stated  # the parser still finds them
    for key, value in stated:
        assert yaml.safe_load(value) == _documented_default(key), f"README: `{key}` (default {value})"


def _table_defaults(name: str) -> dict[str, set[str]]:
    """option -> the default column of its rows in a rendered table (a kinds table may have one per default)."""
    out: dict[str, set[str]] = {}
    for line in table(name).splitlines():
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if line.startswith("| `"):
            out.setdefault(cells[0].strip("`"), set()).add(cells[-2])
    return out


def _shown(value) -> str:
    return f"`{value}`" if isinstance(value, str) and value else f"`{json.dumps(value)}`"  # (all short)


def test_every_option_with_a_default_is_in_a_table_with_that_default():
    monitor_schema = load_schema("monitor")
    expected = {("gate", f"gate.{k}"): v for k, v in schema_defaults(load_schema("gate")).items()}
    expected.update({("monitor", f"monitor.{k}"): v for k, v in schema_defaults(monitor_schema).items()})
    for section in ("features", "drift", "kpis", "parity"):
        entry = monitor_schema["properties"][section]["additionalProperties"]
        expected.update({("monitor", f"monitor.{section}.<name>.{k}"): v for k, v in schema_defaults(entry).items()})
    for kind in KINDS:
        expected.update({("gate_rules", k): v for k, v in schema_defaults(registry.schema("gate_rule", kind)).items()})
    expected = [(name, key, default) for (name, key), default in expected.items()]
    for test in registry.names("drift_test"):
        expected += [("drift_tests", k, v) for k, v in schema_defaults(registry.schema("drift_test", test)).items()
                     if k != "kind"]  # (a drift rule's kind is its feature's type)
    tables = {name: _table_defaults(name) for name in ("gate", "gate_rules", "monitor", "drift_tests")}
    for name, key, default in expected:
        if isinstance(default, dict) and default:  # an object's default shows in its options' rows
            continue
        if isinstance(default, dict):
            assert key in tables[name] or any(k.startswith(key + ".") for k in tables[name]), key
            continue
        assert _shown(default) in tables[name].get(key, set()), (name, key, default)


# ---- the gate -----------------------------------------------------------------------------------------------------

def test_an_empty_gate_section_is_the_schema_defaults():
    spec = GateSpec.of({})
    defaults = schema_defaults(load_schema("gate"))
    assert (spec.reducer, spec.bootstrap.resamples, spec.bootstrap.seed, spec.rules) == (
        defaults["reducer"], defaults["bootstrap.resamples"], defaults["bootstrap.seed"], {}) == ("all", 1000, 0, {})
    assert GateSpec.of(None) == spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.reducer = "any"


@pytest.mark.parametrize("kind", KINDS)
def test_every_option_of_a_rule_kind_is_a_field_of_its_options(kind):
    """A kind's options class reads each property of its schema (a nested object's properties as fields)."""
    own = {k: v for k, v in registry.schema("gate_rule", kind)["properties"].items() if k not in COMMON}
    fields = {f.name for f in dataclasses.fields(OPTIONS[kind])} if kind in OPTIONS else set()
    expected = set()
    for key, prop in own.items():
        expected |= set(prop["properties"]) if prop.get("type") == "object" else {key}
    assert fields == expected


@pytest.mark.parametrize("kind", KINDS)
def test_a_rule_that_leaves_its_options_out_gets_its_kinds_defaults(kind):
    minimal = {"kind": kind, "metric": "m", **{"threshold": {"op": "<=", "bound": 1}, "judge_calibrated": {
        "min_kappa": 0.5}}.get(kind, {})}
    spec = RuleSpec.of("r", minimal)
    defaults = schema_defaults(registry.schema("gate_rule", kind))
    assert (spec.datasets, spec.tags, spec.severity) == ((), (), defaults["severity"]) == ((), (), "blocking")
    explicit = RuleSpec.of("r", {**minimal, **{k: v for k, v in defaults.items() if "." not in k}})
    assert explicit == spec


def _judged(fn, rule: dict, rows: dict, **extra):
    spec = RuleSpec.of("r", rule)
    return fn(spec, "all", "mean", **extra).judge(rows, RuleContext(spec, GateSpec.of({}), "mean")).to_json()


IMPROVED = {"summary": [{"n": 100, "n_paired": 100, "c_mean": 0.55, "b_mean": 0.5, "b10": 5, "b01": 10}],
            "histogram": [{"d": -1.0, "k": 5}, {"d": 0.0, "k": 85}, {"d": 1.0, "k": 10}]}
REGRESSED = {"counts": [{"n": 10, "n_paired": 10, "regressed": 1}], "regressed": [],
             "per_tag": [{"tag": "a", "n": 10, "b_mean": 0.8, "c_mean": 0.75}]}


@pytest.mark.parametrize("kind,options,other,rows", [
    ("improvement", {"min_delta": 0.0, "relative": False, "significance": {"test": "none", "alpha": 0.05}},
     {"min_delta": 0.1}, IMPROVED),
    ("improvement", {"significance": {"test": "mcnemar", "alpha": 0.05}},
     {"significance": {"test": "mcnemar", "alpha": 0.5}}, IMPROVED),
    ("no_regression", {"max": 0, "tag_tolerance": 0.0}, {"max": 1, "tag_tolerance": 0.1}, REGRESSED),
])
def test_a_rule_judges_as_with_its_schema_defaults_written_out(kind, options, other, rows):
    """Leaving the options out equals writing the schema's defaults, and another value is really read."""
    fn = registry.get("gate_rule", kind).fn
    base = {"kind": kind, "metric": "m"}
    implicit = _judged(fn, {**base, **{k: v for k, v in options.items() if k == "significance"
                                      and "test" in v and v["test"] != "none"}}, rows)
    explicit = _judged(fn, {**base, **options}, rows)
    assert implicit == explicit
    assert _judged(fn, {**base, **options, **other}, rows) != explicit


def test_a_judge_calibrated_rule_needs_the_schemas_30_labels_unless_told_otherwise():
    fn = registry.get("gate_rule", "judge_calibrated").fn
    current = judge_fingerprint("model-fp", JUDGE)
    rows = {"judged": [{"model_fingerprint": "model-fp", "n": 40}],
            "calibrations": [{"slice": "*", "judge_fingerprint": current.fingerprint, "n_labels": 25, "kappa": 0.9,
                              "kappa_low": 0.5, "age_days": 1.0, "calibration_id": "c1", "calibrated_at": 1}]}
    rule = {"kind": "judge_calibrated", "metric": "q", "min_kappa": 0.6}
    implicit = _judged(fn, rule, rows, metrics={"q": JUDGE})
    assert implicit["status"] == "fail" and "too few labels (need 30)" in implicit["message"]
    assert _judged(fn, {**rule, "min_labels": 30, "statistic": "kappa", "allow_uncalibrated": False}, rows,
                   metrics={"q": JUDGE}) == implicit
    assert _judged(fn, {**rule, "min_labels": 20}, rows, metrics={"q": JUDGE})["status"] == "pass"  # kappa 0.9
    assert _judged(fn, {**rule, "min_labels": 20, "statistic": "kappa_low"}, rows,
                   metrics={"q": JUDGE})["status"] == "fail"  # kappa_low 0.5 < 0.6


# ---- the monitor --------------------------------------------------------------------------------------------------

def test_an_empty_monitor_section_is_the_schema_defaults():
    spec = MonitorSpec.of({})
    d = schema_defaults(load_schema("monitor"))
    assert spec.scope == Scope(d["window"], d["model"], d["start"], d["end"]) == Scope("day", None, None, None)
    assert (spec.reference.kind, spec.reference.days) == (d["reference"]["kind"], d["reference.days"]) == (
        "first_days", 7)
    assert (spec.online.rate, spec.online.salt, spec.online.metrics) == (d["online.rate"], d["online.salt"], ())
    assert spec.min_join_share == d["min_join_share"] == 0.9
    assert (spec.features, spec.drift, spec.kpis, spec.parity) == ({}, {}, {}, {})
    assert Scope.of_section(None) == spec.scope
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.min_join_share = 0.5


def test_each_entry_of_the_monitor_gets_its_sections_defaults():
    spec = MonitorSpec.of({
        "features": {"n": {"expr": "length(input)"}},
        "drift": {"d": {"feature": "n", "test": "kl", "threshold": 0.2}},
        "kpis": {"k": {"aggregates": {"a": {"from": "traces", "agg": "count(*)"}}, "value": "a"}},
        "parity": {"p": {"lab_metric": "accuracy"}}})
    assert spec.features["n"].type == "numeric"
    rule = spec.drift["d"]
    assert (rule.severity, rule.bound_kind, rule.bound) == ("blocking", "threshold", 0.2)
    assert rule.definition == DriftSpec.from_dict({"test": "kl", "kind": "numeric", "binning": "quantile",
                                                   "n_bins": 10, "edges": [], "epsilon": 0.0001, "log_base": "e",
                                                   "direction": "current_to_reference"})
    kpi = spec.kpis["k"]
    assert (kpi.category, kpi.severity, kpi.description, kpi.target) == ("business", "warn", "", None)
    assert kpi.aggregates[0].where is None
    p = spec.parity["p"]
    assert (p.live, p.tolerance, p.slice, p.severity) == ("feedback", 0.1, "topic", "blocking")


def test_a_drift_tests_options_come_from_its_schema():
    """DriftSpec.from_dict fills each option from the test's registered schema (the log base per test), and the
    options every test pins from DEFINITION; the dataclasses' own defaults are DEFINITION's."""
    defaults = schema_defaults(DEFINITION)
    assert Binning() == Binning(defaults["binning"], defaults["n_bins"], tuple(defaults["edges"]))
    assert (DriftSpec("psi").kind, DriftSpec("psi").epsilon) == (defaults["kind"], defaults["epsilon"])
    for name in registry.names("drift_test"):
        spec = DriftSpec.from_dict({"test": name})
        own = schema_defaults(registry.schema("drift_test", name))
        for key, value in own.items():
            if key not in DEFINITION["properties"]:
                assert spec.option(key) == value, (name, key)
        assert spec.log_base == (2.0 if own.get("log_base") == 2 else pytest.approx(2.718281828459045))
    with pytest.raises(KeyError, match="from_dict"):
        DriftSpec("kl").option("direction")  # built by hand, without its schema's defaults: no silent default


# ---- the bundled configs ------------------------------------------------------------------------------------------

def _bundled(path: str) -> dict:
    return yaml.safe_load((REPO / "conf" / path).read_text(encoding="utf-8"))


def _at(block: dict, key: str):
    for part in key.split("."):
        block = block[part]
    return block


# What the bundled configs set differently from the default, on purpose (each policy's own choice, not a
# restated default): a fixed seed per gate; the demo scores a quarter of its traffic online, with two metrics.
DELIBERATE = {("gate", "bootstrap.seed"), ("monitor", "online.rate"), ("monitor", "online.metrics")}


@pytest.mark.parametrize("path,section", [("gate/default.yaml", "gate"), ("gate/agent.yaml", "gate"),
                                          ("gate/judged.yaml", "gate"), ("monitor/default.yaml", "monitor")])
def test_the_bundled_configs_restate_the_sections_defaults(path, section):
    """Every section-level option a bundled config sets (not a rule's, a feature's ...) is the schema's default,
    but for the deliberate choices above; the documented starting point shows what a left-out key gets."""
    bundled, restated = _bundled(path), 0
    for key, default in schema_defaults(load_schema(section)).items():
        if isinstance(default, dict) or (section, key) in DELIBERATE:
            continue
        try:
            value = _at(bundled, key)
        except KeyError:
            continue
        assert value == default, f"conf/{path} @ {key}: {value!r}, the schema's default is {default!r}"
        restated += 1
    assert restated >= 2


@pytest.mark.parametrize("path,key", [
    ("gate/default.yaml", "rules.no_regressions.max"), ("gate/default.yaml", "rules.no_regressions.tag_tolerance"),
    ("gate/default.yaml", "rules.accuracy_improves.significance.alpha"),
    ("gate/agent.yaml", "rules.no_trajectory_regressions.max"),
    ("gate/judged.yaml", "rules.judge_trusted_on_troubleshooting.min_labels"),
    ("monitor/default.yaml", "reference"), ("monitor/default.yaml", "online.salt"),
    ("monitor/default.yaml", "drift.input_length_psi.binning"),
    ("monitor/default.yaml", "drift.input_length_psi.n_bins"), ("monitor/default.yaml", "drift.topic_mix.epsilon"),
    ("monitor/default.yaml", "drift.output_length_sigma.log_base"), ("monitor/default.yaml", "parity.accuracy.live"),
    ("monitor/default.yaml", "parity.accuracy.slice"), ("monitor/default.yaml", "parity.accuracy.severity")])
def test_the_bundled_rules_that_restate_a_default_agree_with_the_schema(path, key):
    """Where a bundled rule pins an option at its default (to show it), the value is the schema's default: its
    spec equals the spec of the same rule with that option left out."""
    bundled = _bundled(path)
    parts = key.split(".")
    where, inner = (parts[:2], parts[2:]) if parts[0] in ("rules", "drift", "kpis", "parity", "features") \
        else ([], parts)  # the rule (or entry) and the option's path in it
    entry = _at(bundled, ".".join(where)) if where else bundled
    without = copy.deepcopy(entry)
    _at(without, ".".join(inner[:-1])).pop(inner[-1]) if inner[:-1] else without.pop(inner[-1])
    if path.startswith("gate"):
        assert RuleSpec.of(where[1], without) == RuleSpec.of(where[1], entry)
    elif where:
        block = {**bundled, where[0]: {**bundled[where[0]], where[1]: without}}
        assert getattr(MonitorSpec.of(block), where[0]) == getattr(MonitorSpec.of(bundled), where[0])
    else:
        assert MonitorSpec.of(without) == MonitorSpec.of(bundled)
