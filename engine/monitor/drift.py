"""Drift between a reference and a current sample of one feature: compile, execute, finish.

    profile = fit_reference(con, "SELECT x FROM ref", "numeric", Binning("quantile", 10))   # once; plain data
    specs = [DriftSpec.from_dict({"test": "psi"}), DriftSpec.from_dict({"test": "ks"})]
    results = compute_drift(con, specs, "SELECT day, x FROM cur", profile=profile,
                            reference="SELECT x FROM ref", window="day")
    # -> one DriftResult per (test, window): statistic, p_value, sizes, details

Binned tests (psi, kl, jensen_shannon, hellinger, chi_square, share_change) need only the stored
`ReferenceProfile`; whole-sample tests (ks, wasserstein) also need the reference sample itself (`reference`,
e.g. a stored reference table), since an exact ECDF comparison cannot be done from bins. Every test of one
shape is computed by one SQL statement for every window at once (`compile_drift` returns those statements
without running them); only p-values are computed in Python afterwards.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from engine.monitor import queries as q
from engine.monitor.binning import ReferenceProfile, fit_reference  # noqa: F401  (re-exported)
from engine.monitor.spec import Binning, DriftSpec  # noqa: F401  (re-exported)
from engine.monitor.stattests import TESTS, TestSQL
from engine.sql import Statement


@dataclass
class DriftResult:
    test: str
    window: Any  # the window column's value (0 when no window column is given)
    statistic: float | None  # None: cannot compute (empty window, constant reference for wasserstein)
    p_value: float | None  # for ks and chi_square; None for distances
    n_current: int  # non-missing current values in the window
    n_missing: int  # NULL / NaN current values in the window
    n_reference: int
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CompiledDrift:
    """The statements that compute a feature's drift tests, and which test reads which output columns."""

    statements: dict[str, exp.Expression]  # name -> query (one row per window)
    tests: tuple[tuple[str, int, DriftSpec, TestSQL], ...]  # (statement name, column prefix index, spec, sql)

    def to_statements(self, prefix: str = "drift") -> tuple[Statement, ...]:
        """The queries as named plan statements (for `flywheel compile` and the executor)."""
        def tests(name: str) -> str:
            return ", ".join(sorted({spec.test for st, _, spec, _ in self.tests if st == name}))

        return tuple(Statement(f"{prefix}.{name}", tree, description=tests(name))
                     for name, tree in self.statements.items())


def compile_drift(specs: Sequence[DriftSpec], current, *, profile: ReferenceProfile | None = None,
                  reference=None, value: str = "x", window: str | None = None,
                  value_counts: bool | None = None) -> CompiledDrift:
    """Pure: the SQL for all `specs` on one feature. Binned tests sharing an epsilon share one statement.

    `value_counts` picks the KS/Wasserstein plan (same results): None decides from the profile, aggregating
    equal values first when the reference has at most one distinct value in 10 (integer or rounded data)."""
    if value_counts is None:
        value_counts = bool(profile and profile.n_distinct is not None
                            and profile.n_distinct * 10 <= profile.n)
    statements: dict[str, exp.Expression] = {}
    tests = []
    groups: dict[str, list[tuple[int, DriftSpec, TestSQL]]] = {}
    for i, spec in enumerate(specs):
        test = TESTS[spec.test]
        if test.method == "binned":
            _check_profile(spec, profile)
            name = f"binned_eps_{spec.epsilon!r}"
        else:
            if reference is None:
                raise ValueError(f"drift test {spec.test!r} compares whole samples: pass the reference sample")
            name = "ecdf"
        groups.setdefault(name, []).append((i, spec, test.build(spec)))
    for name, members in groups.items():
        columns = {f"t{i}__{f}": e for i, _, sql in members for f, e in sql.columns.items()}
        cur = q.as_query(current)
        if name == "ecdf":
            statements[name] = q.ecdf_query(cur, q.as_query(reference), columns, value, window, value_counts)
        else:
            assert profile is not None
            statements[name] = q.binned_query(cur, profile.kind, profile.keys, profile.labels, profile.counts,
                                              profile.cuts, members[0][1].epsilon, columns, value, window)
        tests.extend((name, i, spec, sql) for i, spec, sql in members)
    return CompiledDrift(statements, tuple(sorted(tests, key=lambda t: t[1])))


def _check_profile(spec: DriftSpec, profile: ReferenceProfile | None) -> None:
    if profile is None:
        raise ValueError(f"drift test {spec.test!r} needs the reference profile (fit_reference)")
    if spec.kind != profile.kind:
        raise ValueError(f"drift test {spec.test!r} is declared {spec.kind} but the profile is {profile.kind}")
    if spec.kind == "numeric" and spec.binning != profile.binning:
        raise ValueError(f"drift test {spec.test!r} declares binning {spec.binning} but the profile was fitted "
                         f"with {profile.binning}: fit a profile per binning")


def finish(compiled: CompiledDrift, rows: dict[str, list[dict]], n_reference: int | None = None) -> list[DriftResult]:
    """Turn the statements' rows into results (p-values here); ordered by test as declared, then window."""
    results = []
    for name, i, spec, sql in compiled.tests:
        for row in rows[name]:
            prefix = f"t{i}__"
            fields = {k[len(prefix):]: v for k, v in row.items() if k.startswith(prefix)}
            out = sql.finish(fields, row)
            m = int(row["m"]) if "m" in row else n_reference
            details = {k: v for k, v in out.items() if k not in ("statistic", "p_value")}
            if "bins" in row:
                details["bins"] = int(row["bins"])
            results.append(DriftResult(spec.test, row["w"], _plain(out.get("statistic")), _plain(out.get("p_value")),
                                       int(row["n"] or 0), int(row["n_missing"] or 0), int(m or 0),
                                       {k: _plain(v) for k, v in details.items()}))
    return results


def compute_drift(con, specs: Sequence[DriftSpec], current, *, profile: ReferenceProfile | None = None,
                  reference=None, value: str = "x", window: str | None = None,
                  value_counts: bool | None = None) -> list[DriftResult]:
    """Compile, run each statement once on `con` (DuckDB), and finish. See the module docstring."""
    compiled = compile_drift(specs, current, profile=profile, reference=reference, value=value, window=window,
                             value_counts=value_counts)
    rows = {name: q.fetch(con, stmt) for name, stmt in compiled.statements.items()}
    return finish(compiled, rows, profile.n if profile else None)


def _plain(v: Any) -> Any:
    """DuckDB returns Decimal/HUGEINT-derived values in places; results are plain floats, ints and strings."""
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return v
