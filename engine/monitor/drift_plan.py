"""Drift plans: the statements that compare a reference with a current sample, and how their rows become results.

Pure: nothing here touches a database. `engine/monitor/drift.py` runs these plans (and documents the engine).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from engine.monitor import queries as q
from engine.monitor.binning import ReferenceProfile
from engine.monitor.spec import Binning, DriftSpec
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



# ---- several features over the same relations ---------------------------------------------------------------
@dataclass(frozen=True)
class FeaturePlan:
    """How one feature of a batch is computed (plain data, part of `DriftBatchPlan`)."""

    index: int  # position in the batch: the `f` column of the batch statements
    value: str  # the column
    kind: str
    specs: tuple[DriftSpec, ...]
    binning: Binning | None  # numeric: the binning of the binned tests (None without binned tests)
    fit: bool  # the profile is fitted from the reference sample (none was passed)
    ecdf: bool  # has whole-sample tests (ks, wasserstein): needs the reference sample
    counts: bool  # numeric: samples loaded as (value, count) pairs by SQL GROUP BY instead of raw values
    binned: tuple[tuple[int, str, int], ...] = ()  # (spec position, statement name, column group j) of binned tests

    @property
    def needs_reference(self) -> bool:
        return self.fit or self.ecdf


@dataclass(frozen=True)
class DriftBatchPlan:
    """The statements computing every feature's drift tests, and how their results come together.

    `statements` run in order; a `bins.*` statement reads the per-bin counts table that the executor builds
    from the earlier statements' results and registers as `queries.BINS_RELATION`."""

    features: tuple[FeaturePlan, ...]
    window: str | None
    statements: dict[str, exp.Expression]
    columns: dict[str, tuple[TestSQL, ...]]  # bins statement -> TestSQL per column group j (prefix t{j}__)

    def to_statements(self, prefix: str = "drift") -> tuple[Statement, ...]:
        """The queries as named plan statements (for `flywheel compile` and the executor)."""
        described = {
            "reference.values": "numeric reference values -> numpy (sorted: cut points, bin counts, ks/wasserstein)",
            "reference.value_counts": "numeric reference values with few distinct values, counted",
            "reference.categories": "categorical reference counts",
            "current.windows": "windows in result order",
            "current.values": "numeric current values -> numpy (sorted per window: bin counts, ks/wasserstein)",
            "current.value_counts": "numeric current values with few distinct values, counted per window",
            "current.categories": "categorical current counts per window",
        }
        return tuple(Statement(f"{prefix}.{name}", tree,
                               description=described.get(name, "binned tests over the per-bin counts"))
                     for name, tree in self.statements.items())


@dataclass
class DriftBatch:
    results: dict[str, list[DriftResult]]  # feature -> results, ordered by test as declared, then window
    profiles: dict[str, ReferenceProfile]  # feature -> the reference profile used (passed in or fitted)

    def to_json(self) -> dict:
        return {"results": {k: [r.to_json() for r in v] for k, v in self.results.items()},
                "profiles": {k: p.to_dict() for k, p in self.profiles.items()}}


def _spec_kind(name: str, specs: Sequence[DriftSpec]) -> str:
    kinds = {spec.kind for spec in specs}
    if len(kinds) != 1:
        raise ValueError(f"feature {name!r}: its drift tests must all be numeric or all categorical, not {kinds}")
    return kinds.pop()


def _column_key(spec: DriftSpec) -> tuple:
    return (spec.test, spec.log_base, spec.options)


def compile_drift_many(features: Mapping[str, Sequence[DriftSpec]], current, *, reference=None,
                       profiles: Mapping[str, ReferenceProfile] | None = None, window: str | None = None,
                       value_counts: bool | None = None) -> DriftBatchPlan:
    """Pure: the statements for all features' drift tests (see the module docstring). Each feature is a column
    of `current` (and of `reference`); profiles not passed in are fitted from `reference`.

    `value_counts` picks how numeric samples are loaded (same results): None decides per feature from its
    profile (counted in SQL when the reference has at most one distinct value in 10), True counts every numeric
    feature, False reads raw values."""
    profiles = dict(profiles or {})
    plans: list[FeaturePlan] = []
    groups: dict[str, dict[tuple, int]] = {}
    group_sql: dict[str, list[TestSQL]] = {}
    for index, (name, specs) in enumerate(features.items()):
        specs = tuple(specs)
        if not specs:
            raise ValueError(f"feature {name!r} declares no drift test")
        kind = _spec_kind(name, specs)
        profile = profiles.get(name)
        binned_specs = [s for s in specs if TESTS[s.test].method == "binned"]
        ecdf = len(binned_specs) < len(specs)
        binning = None
        if binned_specs:
            if profile is not None:
                for spec in binned_specs:
                    _check_profile(spec, profile)
            if kind == "numeric":
                binning = binned_specs[0].binning
                for spec in binned_specs[1:]:
                    if spec.binning != binning:
                        raise ValueError(f"feature {name!r}: binned tests declare different binnings ({binning} and "
                                         f"{spec.binning}): fit a profile per binning (one feature each)")
                if profile is not None:
                    binning = profile.binning
        fit = bool(binned_specs) and profile is None
        if ecdf and reference is None:
            raise ValueError(f"feature {name!r}: drift tests ks / wasserstein compare whole samples: pass the "
                             "reference sample")
        if fit and reference is None:
            raise ValueError(f"feature {name!r}: binned drift tests need the reference profile (fit_reference) or "
                             "the reference sample")
        if value_counts is None:
            counts = bool(profile is not None and profile.n_distinct is not None
                          and profile.n_distinct * 10 <= profile.n)
        else:
            counts = bool(value_counts)
        binned = []
        for i, spec in enumerate(specs):
            if TESTS[spec.test].method != "binned":
                continue
            stmt = f"bins.eps_{spec.epsilon!r}"
            cols = groups.setdefault(stmt, {})
            key = _column_key(spec)
            if key not in cols:
                cols[key] = len(cols)
                group_sql.setdefault(stmt, []).append(_build(spec))
            binned.append((i, stmt, cols[key]))
        plans.append(FeaturePlan(index, name, kind, specs, binning, fit, ecdf,
                                 counts and kind == "numeric", tuple(binned)))

    statements: dict[str, exp.Expression] = {}
    for side, relation in (("reference", reference), ("current", current)):
        chosen = [p for p in plans if side == "current" or p.needs_reference]
        win = window if side == "current" else None
        if win:
            statements["current.windows"] = q.ordered_windows_query(relation, win)
        values = [p.value for p in chosen if p.kind == "numeric" and not p.counts]
        if values:
            statements[f"{side}.values"] = q.values_query(relation, values, win)
        counted = [(p.index, p.value) for p in chosen if p.counts]
        if counted:
            statements[f"{side}.value_counts"] = q.grouped_counts_query(relation, counted, "numeric", win)
        cats = [(p.index, p.value) for p in chosen if p.kind == "categorical" and (side == "current" or p.fit)]
        if cats:
            statements[f"{side}.categories"] = q.grouped_counts_query(relation, cats, "categorical", win)
    columns: dict[str, tuple[TestSQL, ...]] = {}
    for stmt, sqls in group_sql.items():
        eps = float(stmt[len("bins.eps_"):])
        statements[stmt] = q.bin_stats_query(eps, {f"t{j}__{f}": e for j, sql in enumerate(sqls)
                                                   for f, e in sql.columns.items()})
        columns[stmt] = tuple(sqls)
    return DriftBatchPlan(tuple(plans), window, statements, columns)


_BUILT: dict[tuple, TestSQL] = {}


def _build(spec: DriftSpec) -> TestSQL:
    """The test's SQL and finish step; cached (building parses SQL templates, which is slow)."""
    key = (*_column_key(spec), spec.epsilon)
    try:
        hit = _BUILT.get(key)
    except TypeError:  # an unhashable option value
        return TESTS[spec.test].build(spec)
    if hit is None:
        hit = _BUILT[key] = TESTS[spec.test].build(spec)
    return hit



def _plain(v: Any) -> Any:
    """DuckDB returns Decimal/HUGEINT-derived values in places; results are plain floats, ints and strings."""
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return v
