"""Every drift test means the same on Spark as on DuckDB (issue 14).

Each registered drift test (engine/monitor/stattests.py), on every feature kind it accepts, runs as a monitor
drift rule: the rule's compiled statements (`sample_statements`, then the fit, bins and statistic statements of
`rule_plan`) are chained exactly as `evaluate_rule` chains them (engine/monitor/drift_rules.py
`rule_statistics`, `current_distribution`, the sigma bound's reference windows and the `previous` reference), once
with a DuckDB connection and once with a Spark runner, over the same fixture traces: ten daily windows, missing
values (NULL and NaN), ties, a category seen only in the current period and a current window whose values are all
missing. Counts, labels, cut points and windows must be equal; statistics, p-values, means and proportions within
1e-9 (relative). KS and Wasserstein are also held to scipy on each window.

The Spark rewrites these statements need (engine/dialects/spark_drift.py): `range_tables` (cut points and the
reference bins read `range(a, b) AS t(i)`), `list_parameters_by_position` (`$ref_keys[t.i]`), and, for the
library's all-SQL plan, `zipped_unnests`; `exact_percentiles` is tested in test_dialect_rewrites.py.
"""
from __future__ import annotations

import datetime as dt
import math
import random

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from engine import executor
from engine.monitor import drift_rules
from engine.monitor.sources import periods
from engine.monitor.spec import MonitorSpec
from engine.monitor.stattests import TESTS
from tests.parity.harness import load_tables, run_spark, same

DAY0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
DAYS, REFERENCE_DAYS, ALL_MISSING_DAY = 10, 5, 7
PREVIOUS_END = DAY0 + dt.timedelta(days=3)  # reference kind previous: three windows, two pairs
FEATURES = {"latency": {"expr": "latency_ms", "type": "numeric"},  # continuous with ties, NULL and NaN
            "tokens": {"expr": "prompt_tokens", "type": "numeric"},  # few distinct values: the counted ECDF plan
            "topic": {"expr": "topic", "type": "categorical"},  # 'billing' only in the current period
            "input_length": {"expr": "length(input)", "type": "numeric"}}  # what a golden reference has
NUMERIC_FEATURE = {"ks": "tokens", "wasserstein": "latency"}  # numeric feature per test (default: latency)
CASES = [(name, kind) for name, test in TESTS.items() for kind in test.kinds]
EXTRA = {"chi_square": {"method": "goodness_of_fit"}}  # a second rule for the other method


class Runner:
    """What drift_rules runs statements on (as engine/spark/backend.py does: `run(statement, params)`), on one
    engine. A statement already run with the same text and parameters over the same samples is not run again
    (rules on one feature share their summary, cut points and bins): the statements still all run, once."""

    def __init__(self, dialect: str, run):
        self.dialect, self._run, self._seen = dialect, run, {}

    def reset(self) -> None:
        self._seen.clear()

    def run(self, statement, params):
        key = (statement.text, repr(sorted((k, v) for k, v in params.items() if k in statement.placeholders)))
        if key not in self._seen:
            self._seen[key] = self._run(statement, params)
        return self._seen[key]


def _dispatch(con, statement, params):
    return con.run(statement, params) if hasattr(con, "dialect") else executor.execute(con, statement, params)


def traces() -> tuple[pa.Table, pa.Table]:
    rng = random.Random(14)
    rows = []
    for i in range(600):
        day = i % DAYS
        shift = 15.0 if day >= REFERENCE_DAYS else 0.0
        latency = round(rng.gauss(100 + shift, 20), 0 if i % 3 else 1)  # rounded: many ties
        if i % 13 == 0:
            latency = None
        elif i % 29 == 0:
            latency = float("nan")
        topics = ["refund", "shipping", "account"] + (["billing"] if day >= REFERENCE_DAYS + 1 else [])
        topic = None if i % 11 == 0 else rng.choice(topics)
        tokens = rng.choice([1, 2, 2, 3, 3, 3, 4]) + (1 if day >= 8 and i % 2 else 0)
        if day == ALL_MISSING_DAY:
            latency, topic, tokens = None, None, None
        ts = DAY0 + dt.timedelta(days=day, seconds=37 * i)
        rows.append({"trace_id": f"tr-{i:04d}", "session_id": f"s{i % 40}", "user_id": None, "timestamp": ts,
                     "model": "m", "model_version": "1", "input": "q" * (1 + i % 23), "output": "a",
                     "latency_ms": latency, "prompt_tokens": tokens, "completion_tokens": 5, "cost": 0.01,
                     "error": None, "topic": topic, "channel": "web", "locale": "en", "feature": None,
                     "attributes": "{}", "span_id": None})
    schema = pa.schema([("trace_id", pa.string()), ("session_id", pa.string()), ("user_id", pa.string()),
                        ("timestamp", pa.timestamp("us", "UTC")), ("model", pa.string()),
                        ("model_version", pa.string()), ("input", pa.string()), ("output", pa.string()),
                        ("latency_ms", pa.float64()), ("prompt_tokens", pa.int64()),
                        ("completion_tokens", pa.int64()), ("cost", pa.float64()), ("error", pa.string()),
                        ("topic", pa.string()), ("channel", pa.string()), ("locale", pa.string()),
                        ("feature", pa.string()), ("attributes", pa.string()), ("span_id", pa.string())])
    steps = pa.table({"trace_id": pa.array(["tr-0001", "tr-0001"]), "span_id": pa.array(["a", "b"]),
                      "step": pa.array([0, 1], pa.int32()), "tool_name": pa.array(["search", None]),
                      "error": pa.array([None, "boom"])})
    return pa.Table.from_pylist(rows, schema=schema), steps


GOLDEN_VERSION = "v2"


def golden_cases() -> pa.Table:
    """The `cases` rows `reference.kind: golden` reads (engine/monitor/sources.py golden_relation): input and the
    first tag (a list index: 1-based in DuckDB, 0-based in Spark) as the topic, a case with no tags, and an older
    version of the dataset that must not be read."""
    rows = [{"dataset_version": GOLDEN_VERSION, "input_text": "q" * (1 + i % 7) + "é" * (i % 2),
             "tags": [["refund", "x"], ["shipping"], ["account", "refund"], []][i % 4],
             "metadata": "{}"} for i in range(40)]
    rows += [{"dataset_version": "v1", "input_text": "old" * 9, "tags": ["billing"], "metadata": "{}"}] * 30
    return pa.Table.from_pylist(rows, schema=pa.schema([("dataset_version", pa.string()), ("input_text", pa.string()),
                                                         ("tags", pa.list_(pa.string())), ("metadata", pa.string())]))


def monitor(rules: dict, reference: dict | None = None, end: dt.datetime | None = None) -> MonitorSpec:
    return MonitorSpec.of({"window": "day", "reference": reference or {"kind": "first_days", "days": REFERENCE_DAYS},
                           "features": FEATURES, "drift": rules, **({"end": end.isoformat()} if end else {})})


def rules() -> dict:
    out = {}
    for name, kind in CASES:
        feature = NUMERIC_FEATURE.get(name, "latency") if kind == "numeric" else "topic"
        out[f"{name}_{kind}"] = {"feature": feature, "test": name, "threshold": 0.1}
        if name in EXTRA:
            out[f"{name}_{kind}_alt"] = {**out[f"{name}_{kind}"], **EXTRA[name]}
    out["psi_sigma"] = {"feature": "latency", "test": "psi", "sigma": 3}
    out["ks_sigma"] = {"feature": "latency", "test": "ks", "sigma": 3}
    return out


def chain(con, spec: MonitorSpec, params: dict) -> dict:
    """Every rule of `spec` as evaluate_rule runs it; the samples are materialised once per feature (the
    statements are the same for every rule on a feature)."""
    out, materialised = {}, None
    for name, rule in sorted(spec.drift.items(), key=lambda kv: kv[1].feature):
        if rule.feature != materialised:
            con.reset()
            for statement in drift_rules.sample_statements(rule, spec, {}):
                _dispatch(con, statement, params)
            materialised = rule.feature
        plan = drift_rules.rule_plan(rule, spec)
        try:
            if spec.reference.kind == "previous":
                out[name] = ("previous", drift_rules._previous_windows(con, plan))
                continue
            profile, rows = drift_rules.rule_statistics(con, plan)
            current = drift_rules.current_distribution(_dispatch(con, plan.statements["distribution"], {}),
                                                       profile)
            sigma = None
            if rule.bound_kind == "sigma":
                sigma = drift_rules._statistic(con, plan, profile, {}, "reference_window_bins", "reference_windows")
            out[name] = (profile.to_dict(), rows, current, sigma)
        except ValueError as e:  # evaluate_rule reports these as errors: the same error on both engines
            out[name] = ("error", str(e))
    return out


@pytest.fixture(scope="module")
def results(spark):
    """All rules on both engines (one batch: the Spark session is shared by the whole parity suite)."""
    # drift_rules runs each statement with engine.backend.run_on: a runner with a dialect is a backend
    trace_table, steps = traces()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    load_tables(spark, con, {"traces": trace_table, "trace_tool_steps": steps, "cases": golden_cases()})
    runners = (Runner("duckdb", lambda st, p: executor.execute(con, st, p)),
               Runner("spark", lambda st, p: run_spark(spark, st, p)))
    out = {}
    for label, spec in (("first_days", monitor(rules())),
                        ("previous", monitor({"psi_previous": {"feature": "latency", "test": "psi",
                                                               "threshold": 0.1}},
                                             {"kind": "previous"}, PREVIOUS_END)),
                        ("golden", monitor({"psi_golden_topic": {"feature": "topic", "test": "psi", "threshold": 0.1},
                                            "ks_golden_length": {"feature": "input_length", "test": "ks",
                                                                 "threshold": 0.1}},
                                           {"kind": "golden", "dataset": "support_qa"}))):
        params = {**periods(con, spec).params(), "golden_version": GOLDEN_VERSION}
        out[label] = tuple(chain(runner, spec, params) for runner in runners)
    yield out, trace_table


def _utc(value):
    return value.astimezone(dt.timezone.utc) if isinstance(value, dt.datetime) else value


def assert_same_results(duck: list, spark: list, what: str) -> None:
    assert len(duck) == len(spark), f"{what}: {len(duck)} windows on DuckDB, {len(spark)} on Spark"
    for d, s in zip(sorted(duck, key=lambda r: str(_utc(r.window))), sorted(spark, key=lambda r: str(_utc(r.window)))):
        where = f"{what} window {_utc(d.window)}"
        assert _utc(d.window) == _utc(s.window), where
        assert (d.test, d.n_current, d.n_missing, d.n_reference) == (s.test, s.n_current, s.n_missing,
                                                                     s.n_reference), where
        assert same(d.statistic, s.statistic), f"{where}: statistic {d.statistic!r} vs {s.statistic!r}"
        assert same(d.p_value, s.p_value), f"{where}: p-value {d.p_value!r} vs {s.p_value!r}"
        assert same(d.details, s.details), f"{where}: details {d.details} vs {s.details}"


def _rule_names(name: str, kind: str) -> list[str]:
    return [f"{name}_{kind}"] + ([f"{name}_{kind}_alt"] if name in EXTRA else [])


@pytest.mark.parametrize("name,kind", CASES)
def test_drift_test_is_the_same_on_spark(results, name, kind):
    duck, spark = results[0]["first_days"]
    for rule in _rule_names(name, kind):
        d, s = duck[rule], spark[rule]
        assert d[0] != "error", f"{rule}: {d[1]}"
        assert s[0] != "error", f"{rule} failed on Spark only: {s[1]}"
        d_profile, s_profile = d[0], s[0]
        for key in ("kind", "n", "n_missing", "keys", "labels", "counts", "cuts", "n_distinct"):
            assert d_profile[key] == s_profile[key], f"{rule}: profile {key} {d_profile[key]} vs {s_profile[key]}"
        assert same(d_profile["mean"], s_profile["mean"]) and same(d_profile["std"], s_profile["std"]), rule
        assert_same_results(d[1], s[1], rule)
        assert d[2]["labels"] == s[2]["labels"] and d[2]["n"] == s[2]["n"], rule
        assert same(d[2]["proportions"], s[2]["proportions"]), rule
        windows = {str(_utc(r.window))[:10] for r in d[1]}
        assert len(windows) == DAYS - REFERENCE_DAYS, windows  # the all-missing window is reported too
        missing_day = [r for r in d[1] if _utc(r.window).day == DAY0.day + ALL_MISSING_DAY]
        assert missing_day and missing_day[0].n_current == 0 and missing_day[0].statistic is None


def test_a_category_only_in_the_current_period_is_counted_on_both(results):
    duck, spark = results[0]["first_days"]
    for rule in ("psi_categorical", "share_change_categorical"):
        assert "billing" not in duck[rule][0]["labels"]
        assert "billing" in duck[rule][2]["labels"] and duck[rule][2]["labels"] == spark[rule][2]["labels"]
    # the new category is the largest change in some window, on both engines
    categories = {r.details.get("category") for r in duck["share_change_categorical"][1]}
    assert categories == {r.details.get("category") for r in spark["share_change_categorical"][1]}


@pytest.mark.parametrize("rule", ["psi_sigma", "ks_sigma"])
def test_sigma_bound_windows_are_the_same_on_spark(results, rule):
    duck, spark = results[0]["first_days"]
    assert duck[rule][3] and len(duck[rule][3]) == REFERENCE_DAYS
    assert_same_results(duck[rule][3], spark[rule][3], f"{rule} reference windows")
    assert_same_results(duck[rule][1], spark[rule][1], rule)


def test_previous_window_reference_is_the_same_on_spark(results):
    duck, spark, rule = *results[0]["previous"], "psi_previous"
    assert duck[rule][0] == "previous" and len(duck[rule][1]) == 2, duck[rule]
    assert_same_results(duck[rule][1], spark[rule][1], rule)


@pytest.mark.parametrize("rule", ["psi_golden_topic", "ks_golden_length"])
def test_golden_reference_is_the_same_on_spark(results, rule):
    """`reference.kind: golden`: the reference is the golden dataset's version, its first tag the topic."""
    duck, spark = results[0]["golden"]
    assert duck[rule][0] != "error", duck[rule]
    d_profile, s_profile = duck[rule][0], spark[rule][0]
    assert d_profile == {**s_profile, "mean": d_profile["mean"], "std": d_profile["std"]}
    assert same(d_profile["mean"], s_profile["mean"]) and same(d_profile["std"], s_profile["std"]), rule
    if rule == "psi_golden_topic":  # a case without tags has no topic; the old version's 'billing' is not read
        assert sorted(d_profile["labels"]) == ["account", "refund", "shipping"], d_profile
        assert (d_profile["n"], d_profile["n_missing"]) == (30, 10), d_profile
    else:
        assert (d_profile["n"], d_profile["n_missing"]) == (40, 0), d_profile
    assert len(duck[rule][1]) == DAYS  # no reference period in the traffic: every window is current
    assert_same_results(duck[rule][1], spark[rule][1], rule)


@pytest.mark.parametrize("test,feature", [("ks", "tokens"), ("wasserstein", "latency"), ("ks_sigma", "latency")])
def test_ecdf_statistics_equal_scipy_on_both_engines(results, test, feature):
    """The merged-ECDF statements (queries.ecdf_query: window functions, both the raw and the counted plan) give
    scipy.stats.ks_2samp's D and wasserstein_distance on every window, on DuckDB and on Spark."""
    (duck, spark), table = results[0]["first_days"], results[1]
    rule = test if test.endswith("sigma") else f"{test}_numeric"
    column = FEATURES[feature]["expr"]
    days = np.array([(t - DAY0).days for t in table.column("timestamp").to_pylist()])
    values = np.array([np.nan if v is None else v for v in table.column(column).to_pylist()], float)
    ref = values[(days < REFERENCE_DAYS) & ~np.isnan(values)]
    for engine, rows in (("duckdb", duck[rule][1]), ("spark", spark[rule][1])):
        for r in rows:
            cur = values[(days == (_utc(r.window) - DAY0).days) & ~np.isnan(values)]
            if not cur.size:
                assert r.statistic is None
                continue
            if test.startswith("ks"):
                want = stats.ks_2samp(ref, cur)
                assert math.isclose(r.statistic, want.statistic, rel_tol=1e-12), (engine, r)
                assert math.isclose(r.p_value, want.pvalue, rel_tol=1e-9, abs_tol=1e-300), (engine, r)
            else:
                want = stats.wasserstein_distance(ref, cur)
                assert math.isclose(r.details["distance"], want, rel_tol=1e-9), (engine, r)
                assert math.isclose(r.statistic, want / np.std(ref), rel_tol=1e-9), (engine, r)


def test_every_registered_drift_test_has_a_parity_case():
    """A drift test registered without running here on both engines fails this."""
    covered = {(name, kind) for name, kind in CASES}
    assert covered == {(n, k) for n, t in TESTS.items() for k in t.kinds}
    assert {r["test"] for r in rules().values()} == set(TESTS)


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
def test_the_all_sql_plan_is_the_same_on_spark(spark, kind):
    """`compile_drift` (the library's all-SQL plan of one feature, engine/monitor/drift_plan.py) inlines the
    reference bins as literal lists unnested side by side: rewrite `zipped_unnests` makes Spark zip them as
    DuckDB does (Spark's cross product of several generators made every binned value wrong)."""
    from engine.monitor.drift import compile_drift, fit_reference
    from engine.monitor.spec import DriftSpec
    from engine.sql import Statement
    from tests.parity.harness import assert_same_rows, run_duckdb

    rng = random.Random(3)
    if kind == "numeric":
        ref = [round(rng.gauss(0, 1), 1) for _ in range(300)] + [None, float("nan")]
        cur = [round(rng.gauss(0.3, 1), 1) for _ in range(300)] + [None]
        column = pa.float64()
    else:
        ref = [rng.choice("abc") for _ in range(200)] + [None]
        cur = [rng.choice("abcd") for _ in range(200)]
        column = pa.string()
    con = duckdb.connect()
    load_tables(spark, con, {"fw_zs_ref": pa.table({"w": [0] * len(ref), "x": pa.array(ref, column)}),
                             "fw_zs_cur": pa.table({"w": [i % 3 for i in range(len(cur))], "x": pa.array(cur, column)})})
    specs = [DriftSpec.from_dict({"test": name, "kind": kind}) for name, t in TESTS.items() if kind in t.kinds]
    profile = fit_reference(con, "SELECT * FROM fw_zs_ref", kind)
    compiled = compile_drift(specs, "SELECT * FROM fw_zs_cur", profile=profile, reference="SELECT * FROM fw_zs_ref",
                             window="w")
    assert any(n.startswith("binned") for n in compiled.statements)
    for name, tree in compiled.statements.items():
        statement = Statement(name, tree)
        duck = run_duckdb(con, statement)
        assert len(duck) == 3, name
        assert_same_rows(duck, run_spark(spark, statement), ["w"], what=f"{kind} {name}")
