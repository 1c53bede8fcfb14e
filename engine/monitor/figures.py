"""Every figure of a monitor result by a stable key: what two runs over the same data (DuckDB and Spark, the
store and a lake) must agree on. Used by the parity suite and benchmarks/bench_scale.py."""
from __future__ import annotations

import math


def figures(result: dict) -> dict[str, tuple]:
    """key -> (value, count): drift statistics and p-values per window, KPI values overall and per window,
    online means, parity gaps; counts compare exactly, values within a relative tolerance."""
    out: dict[str, tuple] = {}
    for d in result["drift"]:
        out[f"drift.{d['name']}.status"] = (d["status"], None)
        for w in d["windows"]:
            out[f"drift.{d['name']}.{w['window']}"] = (w["statistic"], w["n"])
            out[f"drift.{d['name']}.{w['window']}.p"] = (w["p_value"], w["alert"])
    for k in result["kpis"]:
        out[f"kpi.{k['name']}"] = (k["value"], k["status"])
        for w in k["windows"]:
            out[f"kpi.{k['name']}.{w['window']}"] = (w["value"], None)
    for m in result["online"]["metrics"]:
        out[f"online.{m['metric']}"] = (m["mean"], m["n"])
    for p in result["parity"]:
        out[f"parity.{p['name']}.{p.get('model_version')}"] = (p["gap"], p["status"])
    return out


def differences(a: dict, b: dict, rel: float = 1e-9) -> tuple[int, list[str]]:
    """(figures compared, keys that differ) between two monitor results."""
    fa, fb = figures(a), figures(b)
    differ = [k for k in sorted(fa.keys() | fb.keys())
              if k not in fa or k not in fb or fa[k][1] != fb[k][1] or not _close(fa[k][0], fb[k][0], rel)]
    return len(fa.keys() | fb.keys()), differ


def _close(x, y, rel: float) -> bool:
    if not isinstance(x, (int, float)) or not isinstance(y, (int, float)) or isinstance(x, bool):
        return x == y
    if math.isinf(x) or math.isinf(y) or math.isnan(x) or math.isnan(y):
        return x == y or (math.isnan(x) and math.isnan(y))
    return math.isclose(x, y, rel_tol=rel, abs_tol=1e-12)
