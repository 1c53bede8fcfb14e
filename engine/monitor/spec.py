"""The `monitor` section as frozen specs (MonitorSpec, at the end: defaults from schemas/monitor.schema.json), and
declared drift tests as frozen specs: what a config block `{test: psi, n_bins: 10, ...}` pins down.

A drift test compares the distribution of one feature in a *reference* sample (e.g. the lab or last month)
with a *current* sample (e.g. each day of production). Everything that changes a statistic's value is part of
the spec, so two runs with the same spec are comparable:

* `kind`: "numeric" (binned for PSI/KL/JS/Hellinger/chi-square; whole samples for KS/Wasserstein) or
  "categorical" (one bin per category; the union of the reference's and the window's categories).
* `binning`: "quantile" (cut points at the reference's quantiles j/n_bins, linear interpolation as
  numpy.quantile / DuckDB quantile_cont; repeated cut points are merged) or "fixed" (`edges` given).
  Numeric bins are [c_(i-1), c_i) over the sorted cut points c_1..c_k with open outer bins (-inf, c_1) and
  [c_k, +inf), i.e. bin index = numpy.digitize(x, cuts): values outside the reference range still count.
* `epsilon`: zero-bin smoothing. Every bin proportion gets epsilon added and the vector is renormalised:
  p_i = (count_i / n + epsilon) / (1 + k * epsilon), on both sides, over the k bins of the comparison.
  epsilon = 0 disables it (then a bin empty on one side only makes PSI/KL infinite).
* `log_base`: the logarithm of PSI, KL and Jensen-Shannon; e by default, 2 for Jensen-Shannon.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from engine.specs import with_defaults

KINDS = ("numeric", "categorical")
BINNINGS = ("quantile", "fixed")

# The options every drift test's definition pins down, with their defaults (engine/specs.py): a test's registered
# schema (engine/monitor/stattests.py) lists those it reads, and this fills the rest, so that two specs of one
# test compare (and key stored reference profiles) the same whether or not a config restates a default.
BINNING = {
    "binning": {"enum": list(BINNINGS), "default": "quantile",
                "description": "numeric bins: reference quantiles or fixed edges"},
    "n_bins": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10, "description": "quantile bins"},
    "edges": {"type": "array", "items": {"type": "number"}, "default": [],
              "description": "cut points for binning: fixed"},
}
EPSILON = {"epsilon": {"type": "number", "minimum": 0, "default": 0.0001,
                       "description": "added to every bin proportion, then renormalised"}}


def log_base(default: str | float) -> dict:
    return {"log_base": {"anyOf": [{"const": "e"}, {"type": "number", "exclusiveMinimum": 1}], "default": default,
                         "description": "the logarithm's base: e or a number"}}


DEFINITION = {"properties": {"kind": {"enum": list(KINDS), "default": "numeric"}, **BINNING, **EPSILON,
                             **log_base("e")}}
_DEFAULT = {k: v["default"] for k, v in DEFINITION["properties"].items()}


# Each drift test's traits (kinds it applies to, binned or whole-sample), filled in by engine/monitor/stattests.py
# as it registers the test (importing engine.monitor does), so this module needs no import of it.
TEST_TRAITS: dict[str, Any] = {}


@dataclass(frozen=True)
class Binning:
    """How a numeric feature is cut into bins (ignored for categorical features)."""

    method: str = _DEFAULT["binning"]  # quantile | fixed
    n_bins: int = _DEFAULT["n_bins"]
    edges: tuple[float, ...] = ()  # the cut points, for method "fixed"

    def to_dict(self) -> dict:
        return {"method": self.method, "n_bins": self.n_bins, "edges": list(self.edges)}

    @classmethod
    def from_dict(cls, d: dict) -> Binning:
        """A binning as `to_dict` wrote it (a stored reference profile)."""
        return cls(d["method"], int(d["n_bins"]), tuple(float(e) for e in d["edges"]))


@dataclass(frozen=True)
class DriftSpec:
    """One declared drift test on one feature; built from a plain (YAML) dict by `DriftSpec.from_dict`."""

    test: str
    kind: str = _DEFAULT["kind"]
    binning: Binning = field(default_factory=Binning)
    epsilon: float = _DEFAULT["epsilon"]
    log_base: float = math.e
    options: tuple[tuple[str, Any], ...] = ()  # test-specific options (e.g. ks method, kl direction)

    def option(self, name: str) -> Any:
        """A test-specific option (its default filled from the test's schema by `from_dict`)."""
        options = dict(self.options)
        if name not in options:
            raise KeyError(f"drift test {self.test!r}: option {name!r} is not set (build the spec with from_dict)")
        return options[name]

    @classmethod
    def from_dict(cls, d: dict) -> DriftSpec:
        """Validate `d` against the test's registered JSON Schema and fill the defaults.

        Raises ValueError naming every problem (unknown test, wrong kind, bad options) at once."""
        import jsonschema

        from engine import registry

        name = d.get("test")
        if name not in registry.names("drift_test"):
            raise ValueError(f"unknown drift test {name!r}; available: {', '.join(registry.names('drift_test'))}")
        schema = registry.schema("drift_test", name)
        errors = [f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
                  for e in jsonschema.Draft202012Validator(schema).iter_errors(d)]
        d = with_defaults(DEFINITION, with_defaults(schema, d))  # the test's own defaults first (its log base)
        kind = d["kind"]
        test = TEST_TRAITS[name]
        if kind not in test.kinds:
            errors.append(f"kind: test {name!r} applies to {' or '.join(test.kinds)} features, not {kind!r}")
        binning = Binning(d["binning"], int(d["n_bins"]), tuple(float(e) for e in d["edges"]))
        if kind == "numeric" and test.method == "binned":
            if binning.method == "fixed" and not binning.edges:
                errors.append("edges: binning 'fixed' needs at least one cut point")
            if list(binning.edges) != sorted(set(binning.edges)):
                errors.append("edges: cut points must be strictly increasing")
        if errors:
            raise ValueError(f"drift test {name!r}: " + "; ".join(errors))
        base = math.e if d["log_base"] == "e" else float(d["log_base"])
        common = {"test", *DEFINITION["properties"]}
        options = tuple(sorted((k, v) for k, v in d.items() if k not in common))
        return cls(name, kind, binning, float(d["epsilon"]), base, options)

    def to_dict(self) -> dict:
        return {"test": self.test, "kind": self.kind, "binning": self.binning.method, "n_bins": self.binning.n_bins,
                "edges": list(self.binning.edges), "epsilon": self.epsilon,
                "log_base": "e" if self.log_base == math.e else self.log_base, **dict(self.options)}


# ---- the `monitor` section (schemas/monitor.schema.json, defaults declared there) --------------------------------

RULE_KEYS = ("feature", "threshold", "p_value", "sigma", "severity", "description")  # a drift rule's, not its test's
BOUNDS = ("threshold", "p_value", "sigma")


def drift_definition(rule: dict, feature_type: str) -> DriftSpec:
    """The test a drift rule declares (its keys but the rule's own), on a feature of `feature_type`."""
    return DriftSpec.from_dict({**{k: v for k, v in rule.items() if k not in RULE_KEYS}, "kind": feature_type})


@dataclass(frozen=True)
class Scope:
    """Which traces are monitored, and the windows they fall in."""

    window: str  # hour | day | week (UTC)
    model: str | None  # None: every model
    start: str | None  # ISO bounds of the traffic monitored (None: unbounded)
    end: str | None

    @classmethod
    def of(cls, d: dict) -> "Scope":
        """From a dict with these keys (`window` required; the others None when left out)."""
        return cls(d["window"], d.get("model"), d.get("start"), d.get("end"))

    @classmethod
    def of_section(cls, monitor: dict | None) -> "Scope":
        """The scope a `monitor` section declares (its defaults filled)."""
        from engine.schemas import load_schema

        return cls.of(with_defaults(load_schema("monitor"), monitor))


@dataclass(frozen=True)
class ReferenceSpec:
    kind: str  # first_days | window | previous | golden
    days: int  # first_days
    start: str | None  # window
    end: str | None
    dataset: str | None  # golden


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    type: str  # numeric | categorical
    expr: str | None  # SQL over the trace columns, or
    score: str | None  # a live score (a metric of online.metrics)


@dataclass(frozen=True)
class DriftRuleSpec:
    name: str
    feature: str
    test: str
    severity: str
    bound_kind: str  # threshold | p_value | sigma
    bound: float  # the declared value, as written
    definition: DriftSpec  # the test with its definition pinned (binning, epsilon, log base, options)


@dataclass(frozen=True)
class OnlineSpec:
    rate: float
    salt: str
    metrics: tuple[str, ...]


@dataclass(frozen=True)
class AggregateSpec:
    name: str
    table: str  # `from`: traces | feedback | events
    agg: str  # an aggregate SQL expression over the table's columns
    where: str | None  # a row filter


@dataclass(frozen=True)
class TargetSpec:
    op: str
    value: float

    def to_json(self) -> dict:
        return {"op": self.op, "value": self.value}


@dataclass(frozen=True)
class KPISpec:
    name: str
    category: str
    description: str
    aggregates: tuple[AggregateSpec, ...]
    value: str  # SQL over the aggregate names
    target: TargetSpec | None  # None: reported, never alerts on its value
    severity: str


@dataclass(frozen=True)
class ParitySpec:
    name: str
    lab_metric: str
    live: str  # feedback | online
    tolerance: float
    slice: str  # topic | channel | locale | feature
    severity: str


def entries_with_defaults(section: str, block: dict) -> dict[str, dict]:
    """Each entry of a section keyed by name (features, drift, kpis, parity) with its schema's defaults."""
    from engine.schemas import load_schema

    entry = load_schema("monitor")["properties"][section]["additionalProperties"]
    return {name: with_defaults(entry, value) for name, value in block.items()}


@dataclass(frozen=True)
class MonitorSpec:
    """The validated `monitor` section. Its hash and stored policy (and the stored reference profiles' keys) are
    computed from the section as written, so filling defaults changes none of them."""

    scope: Scope
    min_join_share: float
    reference: ReferenceSpec
    features: dict[str, FeatureSpec]
    drift: dict[str, DriftRuleSpec]
    online: OnlineSpec
    kpis: dict[str, KPISpec]
    parity: dict[str, ParitySpec]

    @classmethod
    def of(cls, monitor: dict | None) -> "MonitorSpec":
        """The validated `monitor` section (the section itself, not the whole config)."""
        from engine.schemas import load_schema

        m = with_defaults(load_schema("monitor"), monitor)
        r, o = m["reference"], m["online"]
        features = {n: FeatureSpec(n, f["type"], f.get("expr"), f.get("score"))
                    for n, f in entries_with_defaults("features", m["features"]).items()}
        drift = {}
        for n, d in entries_with_defaults("drift", m["drift"]).items():
            bound = next(k for k in BOUNDS if k in d)
            drift[n] = DriftRuleSpec(n, d["feature"], d["test"], d["severity"], bound, d[bound],
                                     drift_definition(d, features[d["feature"]].type))
        kpis = {n: KPISpec(n, k["category"], k["description"],
                           tuple(AggregateSpec(a, x["from"], x["agg"], x.get("where"))
                                 for a, x in k["aggregates"].items()),
                           k["value"], TargetSpec(k["target"]["op"], k["target"]["value"]) if "target" in k else None,
                           k["severity"])
                for n, k in entries_with_defaults("kpis", m["kpis"]).items()}
        parity = {n: ParitySpec(n, p["lab_metric"], p["live"], float(p["tolerance"]), p["slice"], p["severity"])
                  for n, p in entries_with_defaults("parity", m["parity"]).items()}
        return cls(Scope.of(m), float(m["min_join_share"]),
                   ReferenceSpec(r["kind"], int(r["days"]), r.get("start"), r.get("end"), r.get("dataset")),
                   features, drift, OnlineSpec(float(o["rate"]), str(o["salt"]), tuple(o["metrics"])), kpis, parity)
