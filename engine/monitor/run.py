"""`flywheel monitor` end to end: online scoring, drift, KPIs and parity over the stored production data; the
results are appended to the store as a time series and returned as plain data."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

import pyarrow as pa

from engine.backend import DuckDBBackend
from engine.backend_choice import backend_for, provenance
from engine.executor import execute
from engine.ingest.batches import STALE_RUNS, stale_monitor_runs
from engine.monitor import kpis as kpi_mod
from engine.monitor import online, parity
from engine.monitor.drift_rules import evaluate_rule
from engine.monitor.joins import Coverage
from engine.monitor.spec import MonitorSpec
from engine.monitor.sources import periods as compute_periods, periods_statement
from engine.provenance import canonical_json, config_hash, git_commit, utc_now
from engine.sql import Plan, Statement, Write, parse
from engine.store import Store


def online_hashes(cfg: dict) -> dict[str, str]:
    metrics = cfg.get("metrics") or {}
    names = list((cfg["monitor"].get("online") or {}).get("metrics") or [])
    return {m: online.metric_hash(metrics[m]) for m in names if m in metrics}


def compile_plan(cfg: dict) -> Plan:
    """What `flywheel compile monitor` prints: every statement it runs, drift statistics included (each rule's
    samples, reference profile, bins and statistic; engine/monitor/rule_plan.py), with parameters as parameters."""
    from engine.monitor.drift_rules import rule_plan, sample_statements

    spec, metrics = MonitorSpec.of(cfg["monitor"]), cfg.get("metrics") or {}
    scope = spec.scope
    statements: list[Statement] = [periods_statement(scope)]
    for m in spec.online.metrics:
        statements.append(online.score_statement(scope, spec.online, m, metrics[m]))
    if spec.online.metrics:
        statements.append(online.summary_statement(scope))
    if spec.reference.kind == "golden":
        statements.append(GOLDEN_VERSION)
    for rule in spec.drift.values():
        statements += sample_statements(rule, spec, online_hashes(cfg))
        statements += rule_plan(rule, spec).steps()
    kpis = tuple(spec.kpis.values())
    statements += list(kpi_mod.source_statements(kpis, scope).values())
    for kpi in kpis:
        statements += kpi_mod.statements(kpi, scope)
        statements += list(kpi_mod.coverage_statements(kpi, scope).values())
    for check in spec.parity.values():
        statements.append(parity.live_statement(check, scope))
        coverage = parity.coverage_of(check, scope)
        if coverage is not None:
            statements.append(coverage)
    if spec.parity:
        statements += [LAB_RUN, LAB_SCORES]
    return Plan("monitor", (*statements, STALE_RUNS, WRITE_RESULTS, RUN_ROW, POLICY_ROW))


WRITE_RESULTS = Write("write:monitor_results", "monitor_results", "append",
                      "every statistic, KPI and parity gap as rows of the time series")
RUN_ROW = Statement("monitor:run", parse("INSERT INTO monitor_runs VALUES ($run_id, $started_at, $finished_at, "
                                         "$config_hash, $git_commit, $healthy, $n_alerts, $result)"),
                    ("run_id", "started_at", "finished_at", "config_hash", "git_commit", "healthy", "n_alerts",
                     "result"), "the run and its whole result")
POLICY_ROW = Statement("monitor:policy", parse("INSERT INTO monitor_policies VALUES ($run_id, $policy)"),
                       ("run_id", "policy"), "the policy the run used (what `whatif monitor` replays)")


GOLDEN_VERSION = Statement("reference.golden_version", parse(
    "SELECT dataset_version FROM dataset_versions WHERE name = $dataset ORDER BY created_at DESC LIMIT 1"),
    ("dataset",), "the golden dataset version that is the drift reference")
LAB_RUN = Statement("parity.lab_run", parity.LAB_RUN, ("model_name", "model_version", "lab_metric"),
                    "the latest lab run of the live model version (else its name) scored on the lab metric")
LAB_SCORES = Statement("parity.lab_scores", parity.LAB_SCORES, ("run_id", "lab_metric"),
                       "that run's passes on the lab metric, overall and per tag")


@dataclass
class MonitorOutcome:
    result: dict
    healthy: bool


def run_monitor(store: Store, cfg: dict, project_dir, data_sources: dict | None = None) -> MonitorOutcome:
    """`data_sources`: what traces, feedback and events were read from (engine/lake.py; None: the store's tables)."""
    monitor, metrics = cfg["monitor"], cfg.get("metrics") or {}
    spec = MonitorSpec.of(monitor)
    scope = spec.scope
    backend = backend_for(store, cfg, project_dir)  # DuckDB, or Spark over the production sources
    run = backend.run
    started = utc_now()
    hashes = online_hashes(cfg)

    # 1. online scoring first: drift features and parity may read live scores
    with store.transaction():
        newly_scored = {}
        for m in hashes:
            rows = run(online.score_statement(scope, spec.online, m, metrics[m]), {})
            newly_scored[m] = int(next(iter(rows[0].values()))) if rows else 0
    periods = compute_periods(None, spec, lambda st: run(st, {}))
    params = {**periods.params(), "pairs": [f"{m}:{h}" for m, h in hashes.items()]}
    online_summary = run(online.summary_statement(scope), params) if hashes and periods.cur_start else []

    # 2. drift, reference profiles stored as they are fitted
    golden_version = _golden_version(run, spec)
    with store.transaction():
        drift = [evaluate_rule(backend, rule, spec, monitor, periods, hashes, golden_version).to_json()
                 for rule in spec.drift.values()]

    # 3. KPIs, each with the rows of its sources and the join coverage of its feedback
    min_share = spec.min_join_share
    sources = {t: kpi_mod.source_coverage(t, _one(run, st, params))
               for t, st in kpi_mod.source_statements(tuple(spec.kpis.values()), scope).items()}
    kpis = []
    for kpi in spec.kpis.values():
        rows = {st.name.rsplit(".", 1)[1]: run(st, params) for st in kpi_mod.statements(kpi, scope)}
        where = {a.name: a.where for a in kpi.aggregates}
        filtered = {a: Coverage.from_row("feedback", f"feedback records ({where[a]})", _one(run, st, params))
                    for a, st in kpi_mod.coverage_statements(kpi, scope).items()}
        kpis.append(kpi_mod.judge(kpi, rows, sources, filtered, min_share).to_json())

    # 4. prod-lab parity
    parity_results = []
    for check in spec.parity.values():
        p = {**params, "lab_metric": check.lab_metric, "lab_metric_hash": hashes.get(check.lab_metric, "")}
        live_rows = run(parity.live_statement(check, scope), p) if periods.cur_start else []
        lookup = _lab_lookup(run, check.lab_metric)
        statement = parity.coverage_of(check, scope)
        coverage = (Coverage.from_row("feedback", "scored feedback records", _one(run, statement, params))
                    if statement is not None else None)
        parity_results += [r.to_json() for r in parity.judge(check, live_rows, lookup, coverage, min_share,
                                                             scope.model)]

    stale = stale_monitor_runs(store.con)  # earlier monitor runs that read ingest batches retracted since
    alerts = ([("drift", d) for d in drift if d["status"] != "ok"] + [("kpi", k) for k in kpis if k["status"] != "ok"]
              + [("parity", r) for r in parity_results if r["status"] != "ok"])
    # no_data fails closed: a figure computed from nothing blocks whatever the check's severity
    blocking = [f"{section}.{a['name']}" for section, a in alerts
                if a["severity"] == "blocking" or a["status"] == "no_data"]
    join_warnings = [{"check": f"{section}.{c['name']}", "message": c["join_warning"]}
                     for section, c in [("kpi", k) for k in kpis] + [("parity", r) for r in parity_results]
                     if c.get("join_warning")]
    result = {
        "command": "monitor",
        "run_id": f"monitor-{started.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}",
        "healthy": not blocking,
        "blocking_alerts": blocking,
        "warnings": [f"{section}.{a['name']}" for section, a in alerts
                     if a["severity"] != "blocking" and a["status"] != "no_data"],
        "join_warnings": join_warnings,
        "min_join_share": min_share,
        "config_hash": config_hash(monitor),
        "git_commit": git_commit(project_dir),
        "started_at": started.isoformat(),
        "window": scope.window,
        "model": scope.model,
        "periods": periods.to_json(),
        # the rate as written (null: the schema's default rate was used)
        "online": {"rate": (monitor.get("online") or {}).get("rate"), "newly_scored": newly_scored,
                   "metrics": online_summary},
        "drift": drift,
        "kpis": kpis,
        "parity": parity_results,
        "store": str(store.path),
        "backend": provenance(backend),  # the engine that ran the statements (Spark: its master and version)
        "data_sources": data_sources or {t: {"format": "store"} for t in ("traces", "feedback", "events")},
        "stale_runs": stale,  # earlier runs that read records retracted since
    }
    _append(store, result, {"monitor": monitor, "online_metric_hashes": hashes})
    return MonitorOutcome(result, not blocking)


def _one(run, statement: Statement, params: dict) -> dict:
    """The single row of a coverage or count statement (zeros when there is no current period)."""
    if params.get("cur_start") is None:
        return {"matched": 0, "unmatched": 0, "out_of_scope": 0, "unmatched_ids": 0, "examples": [], "n": 0}
    return run(statement, params)[0]


def _golden_version(run, spec: MonitorSpec) -> str | None:
    if spec.reference.kind != "golden":
        return None
    rows = run(GOLDEN_VERSION, {"dataset": spec.reference.dataset})
    return rows[0]["dataset_version"] if rows else None


def _lab_lookup(run, lab_metric: str):
    def lookup(model_name, model_version):
        params = {"model_name": model_name, "model_version": model_version, "lab_metric": lab_metric}
        lab_run = run(LAB_RUN, params)
        if not lab_run:
            return None
        rows = run(LAB_SCORES, {"run_id": lab_run[0]["run_id"], "lab_metric": lab_metric})
        return lab_run[0]["run_id"], rows
    return lookup


def _append(store: Store, result: dict, policy: dict) -> None:
    """Results as rows of a long time series, plus the run itself and its policy (what `whatif monitor` needs
    to tell a bound edit from a changed statistic), in one transaction."""
    rows = []
    rid = result["run_id"]
    for d in result["drift"]:
        bound = d["threshold"].get("bound")
        for w in d["windows"]:
            rows.append((rid, "drift", d["name"], result["model"], w["window"], w["statistic"], w["p_value"],
                         bound, w["alert"], d["severity"], canonical_json({"feature": d["feature"], "test": d["test"],
                                                                           "n": w["n"]})))
    for k in result["kpis"]:
        rows.append((rid, "kpi", k["name"], None, None, k["value"], None, (k["target"] or {}).get("value"),
                     k["status"] in ("alert", "no_data"), k["severity"], canonical_json({"target": k["target"],
                                                                                       "status": k["status"]})))
        for w in k["windows"]:
            rows.append((rid, "kpi", k["name"], None, w["window"], w["value"], None,
                         (k["target"] or {}).get("value"), w["meets_target"] is False, k["severity"], None))
    for p in result["parity"]:
        rows.append((rid, "parity", p["name"], p["model_version"], None, p["gap"], None, p["tolerance"],
                     p["status"] in ("alert", "no_data"), p["severity"],
                     canonical_json({"lab": p["lab"], "live": p["live"], "slices": p["slices"][:5],
                                     "status": p["status"], "coverage": p.get("coverage")})))
    for m in result["online"]["metrics"]:
        rows.append((rid, "online", m["metric"], None, None, m["mean"], None, None, False, "info",
                     canonical_json({"n": m["n"], "pass_rate": m["pass_rate"]})))
    with store.transaction() as con:
        DuckDBBackend(store).write_step(WRITE_RESULTS, _results_table(rows))
        execute(con, RUN_ROW, {"run_id": rid, "started_at": result["started_at"], "finished_at": utc_now(),
                               "config_hash": result["config_hash"], "git_commit": result["git_commit"],
                               "healthy": result["healthy"],
                               "n_alerts": len(result["blocking_alerts"]) + len(result["warnings"]),
                               "result": canonical_json(result)})
        execute(con, POLICY_ROW, {"run_id": rid, "policy": canonical_json(policy)})


_RESULT_COLUMNS = (("run_id", pa.string()), ("section", pa.string()), ("name", pa.string()), ("model", pa.string()),
                   ("window_start", pa.string()), ("statistic", pa.float64()), ("p_value", pa.float64()),
                   ("threshold", pa.float64()), ("alert", pa.bool_()), ("severity", pa.string()),
                   ("details", pa.string()))


def _results_table(rows: list[tuple]) -> pa.Table:
    """monitor_results rows as Arrow (ISO window strings and JSON text are cast by the insert)."""
    columns = list(zip(*rows)) if rows else [()] * len(_RESULT_COLUMNS)
    return pa.table({name: pa.array([None if v is None else (float(v) if kind == pa.float64() else v)
                                     for v in values], kind)
                     for (name, kind), values in zip(_RESULT_COLUMNS, columns)})
