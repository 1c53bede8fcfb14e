"""Declared drift tests as frozen specs: what a config block `{test: psi, n_bins: 10, ...}` pins down.

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

KINDS = ("numeric", "categorical")
BINNINGS = ("quantile", "fixed")


# Each drift test's traits (kinds it applies to, binned or whole-sample), filled in by engine/monitor/stattests.py
# as it registers the test (importing engine.monitor does), so this module needs no import of it.
TEST_TRAITS: dict[str, Any] = {}


@dataclass(frozen=True)
class Binning:
    """How a numeric feature is cut into bins (ignored for categorical features)."""

    method: str = "quantile"  # quantile | fixed
    n_bins: int = 10
    edges: tuple[float, ...] = ()  # the cut points, for method "fixed"

    def to_dict(self) -> dict:
        return {"method": self.method, "n_bins": self.n_bins, "edges": list(self.edges)}

    @classmethod
    def from_dict(cls, d: dict) -> Binning:
        return cls(d.get("method", "quantile"), int(d.get("n_bins", 10)), tuple(float(e) for e in d.get("edges", ())))


@dataclass(frozen=True)
class DriftSpec:
    """One declared drift test on one feature; built from a plain (YAML) dict by `DriftSpec.from_dict`."""

    test: str
    kind: str = "numeric"
    binning: Binning = field(default_factory=Binning)
    epsilon: float = 1e-4
    log_base: float = math.e
    options: tuple[tuple[str, Any], ...] = ()  # test-specific options (e.g. ks method, kl direction)

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.options).get(name, default)

    @classmethod
    def from_dict(cls, d: dict) -> DriftSpec:
        """Validate `d` against the test's registered JSON Schema and fill the defaults.

        Raises ValueError naming every problem (unknown test, wrong kind, bad options) at once."""
        import jsonschema

        from engine import registry

        name = d.get("test")
        if name not in registry.names("drift_test"):
            raise ValueError(f"unknown drift test {name!r}; available: {', '.join(registry.names('drift_test'))}")
        entry = registry.get("drift_test", name)
        errors = [f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
                  for e in jsonschema.Draft202012Validator(entry.schema).iter_errors(d)]
        kind = d.get("kind", "numeric")
        test = TEST_TRAITS[name]
        if kind not in test.kinds:
            errors.append(f"kind: test {name!r} applies to {' or '.join(test.kinds)} features, not {kind!r}")
        binning = Binning(d.get("binning", "quantile"), int(d.get("n_bins", 10)),
                          tuple(float(e) for e in d.get("edges", ())))
        if kind == "numeric" and test.method == "binned":
            if binning.method == "fixed" and not binning.edges:
                errors.append("edges: binning 'fixed' needs at least one cut point")
            if list(binning.edges) != sorted(set(binning.edges)):
                errors.append("edges: cut points must be strictly increasing")
        if errors:
            raise ValueError(f"drift test {name!r}: " + "; ".join(errors))
        base = d.get("log_base", test.default_log_base)
        base = math.e if base == "e" else float(base)
        common = {"test", "kind", "binning", "n_bins", "edges", "epsilon", "log_base"}
        options = tuple(sorted((k, v) for k, v in d.items() if k not in common))
        return cls(name, kind, binning, float(d.get("epsilon", 1e-4)), base, options)

    def to_dict(self) -> dict:
        return {"test": self.test, "kind": self.kind, "binning": self.binning.method, "n_bins": self.binning.n_bins,
                "edges": list(self.binning.edges), "epsilon": self.epsilon,
                "log_base": "e" if self.log_base == math.e else self.log_base, **dict(self.options)}
