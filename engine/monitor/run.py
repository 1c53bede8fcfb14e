"""`flywheel monitor` end to end: online scoring, drift, KPIs and parity over the stored production data; the
results are appended to the store as a time series and returned as plain data."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from engine.executor import execute
from engine.ingest.batches import stale_monitor_runs
from engine.monitor import kpis as kpi_mod
from engine.monitor import online, parity
from engine.monitor.drift_rules import evaluate_rule
from engine.monitor.sources import periods as compute_periods
from engine.provenance import canonical_json, content_hash, git_commit, utc_now
from engine.sql import Plan, Statement
from engine.store import Store


def online_hashes(cfg: dict) -> dict[str, str]:
    metrics = cfg.get("metrics") or {}
    names = list((cfg["monitor"].get("online") or {}).get("metrics") or [])
    return {m: online.metric_hash(metrics[m]) for m in names if m in metrics}


def compile_plan(cfg: dict) -> Plan:
    """What `flywheel compile monitor` prints. Drift comparisons depend on the reference bins fitted from the
    data, so the drift part shows the feature relations each rule compares (see engine/monitor/drift.py)."""
    from engine.monitor.drift_rules import _relations
    from engine.monitor.sources import Periods

    monitor, metrics = cfg["monitor"], cfg.get("metrics") or {}
    statements: list[Statement] = []
    online_cfg = monitor.get("online") or {}
    for m in online_cfg.get("metrics") or []:
        statements.append(online.score_statement(monitor, online_cfg, m, metrics[m]))
    placeholder = Periods(None, None, None, None, None, None)
    for name, rule in (monitor.get("drift") or {}).items():
        feature = monitor["features"][rule["feature"]]
        current, reference = _relations(monitor, feature, placeholder, online_hashes(cfg), "<golden version>")
        statements.append(Statement(f"drift.{name}.current", current, (), f"{rule['test']} on {rule['feature']}"))
        statements.append(Statement(f"drift.{name}.reference", reference, (), "the reference sample"))
    for name, kpi in (monitor.get("kpis") or {}).items():
        statements += kpi_mod.statements(name, kpi, monitor)
    for name, check in (monitor.get("parity") or {}).items():
        statements.append(parity.live_statement(name, check, monitor, online_hashes(cfg)))
    return Plan("monitor", tuple(statements))


@dataclass
class MonitorOutcome:
    result: dict
    healthy: bool


def run_monitor(store: Store, cfg: dict, project_dir) -> MonitorOutcome:
    monitor, metrics = cfg["monitor"], cfg.get("metrics") or {}
    con = store.con
    started = utc_now()
    hashes = online_hashes(cfg)

    # 1. online scoring first: drift features and parity may read live scores
    online_cfg = monitor.get("online") or {}
    with store.transaction():
        newly_scored = {}
        for m in hashes:
            rows = execute(con, online.score_statement(monitor, online_cfg, m, metrics[m]), {})
            newly_scored[m] = int(next(iter(rows[0].values()))) if rows else 0
    periods = compute_periods(con, monitor)
    params = {**periods.params(), "pairs": [f"{m}:{h}" for m, h in hashes.items()]}
    online_summary = execute(con, online.summary_statement(monitor), params) if hashes and periods.cur_start else []

    # 2. drift, reference profiles stored as they are fitted
    golden_version = _golden_version(con, monitor)
    with store.transaction():
        drift = [evaluate_rule(con, name, rule, cfg["monitor"], periods, hashes, golden_version).to_json()
                 for name, rule in (monitor.get("drift") or {}).items()]

    # 3. KPIs
    kpis = []
    for name, kpi in (monitor.get("kpis") or {}).items():
        rows = {st.name.rsplit(".", 1)[1]: execute(con, st, params) for st in kpi_mod.statements(name, kpi, monitor)}
        kpis.append(kpi_mod.judge(name, kpi, rows).to_json())

    # 4. prod-lab parity
    parity_results = []
    for name, check in (monitor.get("parity") or {}).items():
        p = {**params, "lab_metric": check["lab_metric"], "lab_metric_hash": hashes.get(check["lab_metric"], "")}
        live_rows = execute(con, parity.live_statement(name, check, monitor, hashes), p)
        lookup = _lab_lookup(con, check["lab_metric"])
        parity_results += [r.to_json() for r in parity.judge(name, check, live_rows, lookup)]

    alerts = ([("drift", d) for d in drift if d["status"] != "ok"] + [("kpi", k) for k in kpis if k["status"] != "ok"]
              + [("parity", r) for r in parity_results if r["status"] != "ok"])
    blocking = [f"{section}.{a['name']}" for section, a in alerts if a["severity"] == "blocking"]
    result = {
        "command": "monitor",
        "run_id": f"monitor-{started.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}",
        "healthy": not blocking,
        "blocking_alerts": blocking,
        "warnings": [f"{section}.{a['name']}" for section, a in alerts if a["severity"] != "blocking"],
        "config_hash": content_hash(monitor),
        "git_commit": git_commit(project_dir),
        "started_at": started.isoformat(),
        "window": monitor.get("window", "day"),
        "model": monitor.get("model"),
        "periods": periods.to_json(),
        "online": {"rate": online_cfg.get("rate"), "newly_scored": newly_scored, "metrics": online_summary},
        "drift": drift,
        "kpis": kpis,
        "parity": parity_results,
        "store": str(store.path),
        "stale_runs": stale_monitor_runs(con),  # earlier runs that read records retracted since
    }
    _append(store, result)
    return MonitorOutcome(result, not blocking)


def _golden_version(con, monitor: dict) -> str | None:
    ref = monitor.get("reference") or {}
    if ref.get("kind") != "golden":
        return None
    row = con.execute("SELECT dataset_version FROM dataset_versions WHERE name = ? ORDER BY created_at DESC LIMIT 1",
                      [ref["dataset"]]).fetchall()
    return row[0][0] if row else None


def _lab_lookup(con, lab_metric: str):
    def lookup(model_name, model_version):
        params = {"model_name": model_name, "model_version": model_version, "lab_metric": lab_metric}
        run = execute(con, Statement("lab_run", parity.LAB_RUN), params)
        if not run:
            return None
        rows = execute(con, Statement("lab_scores", parity.LAB_SCORES), {"run_id": run[0]["run_id"],
                                                                        "lab_metric": lab_metric})
        return run[0]["run_id"], rows
    return lookup


def _append(store: Store, result: dict) -> None:
    """Results as rows of a long time series, plus the run itself, in one transaction."""
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
                     k["status"] == "alert", k["severity"], canonical_json({"target": k["target"]})))
        for w in k["windows"]:
            rows.append((rid, "kpi", k["name"], None, w["window"], w["value"], None,
                         (k["target"] or {}).get("value"), w["meets_target"] is False, k["severity"], None))
    for p in result["parity"]:
        rows.append((rid, "parity", p["name"], p["model_version"], None, p["gap"], None, p["tolerance"],
                     p["status"] == "alert", p["severity"],
                     canonical_json({"lab": p["lab"], "live": p["live"], "slices": p["slices"][:5]})))
    for m in result["online"]["metrics"]:
        rows.append((rid, "online", m["metric"], None, None, m["mean"], None, None, False, "info",
                     canonical_json({"n": m["n"], "pass_rate": m["pass_rate"]})))
    with store.transaction() as con:
        if rows:
            con.executemany("INSERT INTO monitor_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute("INSERT INTO monitor_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [rid, result["started_at"], utc_now(), result["config_hash"], result["git_commit"],
                     result["healthy"], len(result["blocking_alerts"]) + len(result["warnings"]),
                     canonical_json(result)])
