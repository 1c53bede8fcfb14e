"""Config checks of the monitor policy: its schema, and every name and SQL expression it refers to."""
from __future__ import annotations

from engine import registry
from engine.errors import did_you_mean
from engine.monitor.sources import TABLE_COLUMNS, TRACE_COLUMNS
from engine.monitor.spec import drift_definition, entries_with_defaults
from engine.schemas import all_errors, dotted, validator
from engine.usersql import parse_expression
from engine.config_checks import checker

RESERVED = {"grp", "kpi_value", "window_start", "x"}  # column names the compiled KPI and feature SQL use


@checker(section="monitor")
def check_monitor(composed, add) -> None:
    cfg = composed.config
    monitor = cfg.get("monitor")
    if not monitor:
        return
    for path, message in all_errors(validator("monitor"), monitor):
        add(dotted(path, "monitor"), message)
    try:  # the schema errors above are reported; the cross-checks below skip what is malformed
        _cross_check(cfg, monitor, add)
    except (KeyError, TypeError, AttributeError):
        pass


def _cross_check(cfg: dict, monitor: dict, add) -> None:
    metrics = cfg.get("metrics") or {}
    features = entries_with_defaults("features", monitor.get("features") or {})
    online_metrics = (monitor.get("online") or {}).get("metrics") or []
    for i, m in enumerate(online_metrics):
        if m not in metrics:
            add(f"monitor.online.metrics[{i}]", f"unknown metric '{m}'; {did_you_mean(m, list(metrics))}")
        elif registry.get("metric", metrics[m]["kind"]).fn.prepare is not None:
            add(f"monitor.online.metrics[{i}]", f"metric '{m}' ({metrics[m]['kind']}) needs a Python step "
                                                f"(a judge or an encoder) and is not supported online yet")
    for name, feature in features.items():
        if ("expr" in feature) == ("score" in feature):
            add(f"monitor.features.{name}", "give exactly one of `expr` (SQL over trace columns) or `score` (a live "
                                            "score)")
            continue
        if "expr" in feature:
            _, problems = parse_expression(feature["expr"], TRACE_COLUMNS, what="feature expression")
            for p in problems:
                add(f"monitor.features.{name}.expr", p)
        elif feature["score"] not in online_metrics:
            add(f"monitor.features.{name}.score", f"'{feature['score']}' is not scored online; add it to "
                                                  f"monitor.online.metrics (now: {', '.join(online_metrics) or 'none'})")
    for name, rule in (monitor.get("drift") or {}).items():
        where = f"monitor.drift.{name}"
        given = [k for k in ("threshold", "p_value", "sigma") if k in rule]
        if len(given) != 1:
            add(where, f"give exactly one of threshold, p_value or sigma (got {', '.join(given) or 'none'})")
        if rule["feature"] not in features:
            add(f"{where}.feature", f"unknown feature '{rule['feature']}'; {did_you_mean(rule['feature'], list(features))}")
            continue
        try:
            drift_definition(rule, features[rule["feature"]]["type"])
        except ValueError as e:
            add(where, str(e))
        if (monitor.get("reference") or {}).get("kind") == "golden" and "score" in features[rule["feature"]]:
            add(f"{where}.feature", f"feature '{rule['feature']}' is a live score: the golden set has no live "
                                    f"scores to compare with (monitor.reference.kind is golden); drift a feature "
                                    f"with an `expr`, or use reference.kind first_days or previous")
        if "p_value" in rule and rule["test"] not in ("ks", "chi_square"):
            add(f"{where}.p_value", f"test '{rule['test']}' has no p-value; use threshold or sigma")
    for name, kpi in (monitor.get("kpis") or {}).items():
        where = f"monitor.kpis.{name}"
        names = list(kpi["aggregates"])
        for agg_name, agg in kpi["aggregates"].items():
            if agg_name in RESERVED:
                add(f"{where}.aggregates.{agg_name}", f"'{agg_name}' is reserved; pick another name")
            columns = TABLE_COLUMNS[agg["from"]]
            for key, aggregates in (("agg", True), ("where", False)):
                if key in agg:
                    _, problems = parse_expression(agg[key], columns, aggregates=aggregates, what=f"KPI {key}")
                    for p in problems:
                        add(f"{where}.aggregates.{agg_name}.{key}", p)
        _, problems = parse_expression(kpi["value"], tuple(names), what="KPI value")
        for p in problems:
            add(f"{where}.value", p)
    for name, check in (monitor.get("parity") or {}).items():
        where = f"monitor.parity.{name}"
        if check["lab_metric"] not in metrics:
            add(f"{where}.lab_metric", f"unknown metric '{check['lab_metric']}'; "
                                       f"{did_you_mean(check['lab_metric'], list(metrics))}")
        if check.get("live") == "online" and check["lab_metric"] not in online_metrics:
            add(f"{where}.live", f"live: online needs '{check['lab_metric']}' in monitor.online.metrics")
