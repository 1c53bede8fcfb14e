"""Benchmark: drift statistics through engine.monitor (DuckDB + numpy) vs numpy/scipy vs Evidently 0.7.

    .venv/bin/python benchmarks/bench_drift.py --rows 1000000 --repeat 3

Generates seeded synthetic reference and current samples (N rows each; 6 numeric and 4 categorical columns,
some of them shifted), writes them to Parquet, and computes PSI + Kolmogorov-Smirnov per numeric column and
PSI + chi-square per categorical column three ways, each in its own subprocess:

* engine:    engine.monitor.drift.compute_drift_many (reference profile fit + current side for all ten features;
             SQL on DuckDB, numeric samples sorted in numpy, p-values in Python);
* numpy:     the same definitions in numpy/scipy (np.quantile/np.digitize bins, scipy.stats.ks_2samp,
             scipy.stats.chi2_contingency) - also the oracle for the statistics' equality check;
* evidently: an Evidently Report of ValueDrift(method=psi|ks|chisquare) metrics, run by the interpreter given
             with --evidently-python (Evidently 0.7 needs pandas < 3: see benchmarks/README.md). Evidently's
             PSI bins differ (Sturges equal-width bins over both samples) and its chi-square is a goodness of fit
             test, so only its KS p-value is comparable value for value; its time is what matters.

Each worker loads the Parquet files first (timed apart as "load") and then runs the computation --repeat times;
"compute" is the fastest repeat by wall time, "cpu" the fewest CPU seconds of the process (getrusage: user +
system time of all its threads, DuckDB's included). Memory is the worker's peak resident set size (ru_maxrss,
so DuckDB's native memory is included; the RSS after imports is shown as the baseline). The load average is
printed at the start and the end: on a shared machine wall time suffers from other processes (DuckDB's
threads more than single-threaded numpy), CPU time much less, so the goals are checked on both.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NUMERIC = [f"num_{i}" for i in range(6)]
CATEGORICAL = [f"cat_{i}" for i in range(4)]
EPSILON, N_BINS = 1e-4, 10
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EVIDENTLY = "/tmp/evidently-venv/bin/python"


# ---- data -------------------------------------------------------------------------------------------------
def generate(n: int, out: Path, seed: int = 20240601) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    def categories(rng, k, size, skew):
        weights = 1.0 / np.arange(1, k + 1) ** skew
        codes = rng.choice(k, size, p=weights / weights.sum())
        return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()),
                                              pa.array([f"c{j:03d}" for j in range(k)])).cast(pa.string())

    rng = np.random.default_rng(seed)
    for side, shift in (("reference", 0.0), ("current", 1.0)):
        cols = {
            "num_0": rng.normal(0.0, 1.0, n),  # stable
            "num_1": rng.normal(0.05 * shift, 1.0, n),  # mean shift
            "num_2": rng.lognormal(0.0, 0.5, n),  # stable, skewed
            "num_3": rng.exponential(1.0 + 0.2 * shift, n),  # scale shift
            "num_4": rng.poisson(5.0, n).astype(np.float64),  # integer-valued: many ties, stable
            "num_5": np.round(rng.uniform(0.0 + 5 * shift, 100.0 + 5 * shift, n), 2),  # ties + range shift
            "cat_0": categories(rng, 5, n, 0.0),  # stable, uniform
            "cat_1": categories(rng, 20, n, 1.0 + 0.3 * shift),  # Zipf exponent shift
            "cat_2": categories(rng, 200, n, 1.1),  # many categories, stable
            "cat_3": categories(rng, 3, n, 0.5 * shift),  # uniform -> skewed
        }
        pq.write_table(pa.table(cols), out / f"{side}.parquet")


# ---- workers (each runs in its own process) -------------------------------------------------------------------
def _loaded(d: Path, threads: int | None):
    """A fresh DuckDB with the two samples as tables `ref` and `cur`: (connection, RSS before, load seconds)."""
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    rss0 = _rss_mb()
    t = time.perf_counter()
    for side, name in (("reference", "ref"), ("current", "cur")):
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{d / (side + '.parquet')}')")
    return con, rss0, time.perf_counter() - t


def worker_engine(d: Path, repeat: int, threads: int | None) -> dict:
    sys.path.insert(0, str(ROOT))
    from engine.monitor.drift import DriftSpec, compute_drift_many

    con, rss0, load = _loaded(d, threads)
    psi = {"test": "psi", "epsilon": EPSILON, "n_bins": N_BINS}
    numeric = [DriftSpec.from_dict(psi), DriftSpec.from_dict({"test": "ks"})]
    categorical = [DriftSpec.from_dict({**psi, "kind": "categorical"}),
                   DriftSpec.from_dict({"test": "chi_square", "kind": "categorical"})]
    features = {**{c: numeric for c in NUMERIC}, **{c: categorical for c in CATEGORICAL}}

    def run(profiles=None):
        batch = compute_drift_many(con, features, "cur", reference="ref", profiles=profiles)
        return {col: _stats({r.test: r for r in res}) for col, res in batch.results.items()}, batch.profiles

    times, cpu = [], []
    for _ in range(repeat):
        c0, t = _cpu(), time.perf_counter()
        stats, profiles = run()
        times.append(time.perf_counter() - t)
        cpu.append(_cpu() - c0)
    stored, stored_cpu = [], []
    for _ in range(repeat):  # the monitor's steady state: reference profiles already stored
        c0, t = _cpu(), time.perf_counter()
        run(profiles)
        stored.append(time.perf_counter() - t)
        stored_cpu.append(_cpu() - c0)
    return {"load_s": load, "compute_s": min(times), "all_s": times, "cpu_s": min(cpu), "all_cpu_s": cpu,
            "stored_profiles_s": min(stored), "stored_profiles_cpu_s": min(stored_cpu), "rss_base_mb": rss0,
            "stats": stats, "threads": con.execute("SELECT current_setting('threads')").fetchall()[0][0]}


def worker_plan(d: Path, repeat: int, threads: int | None) -> dict:
    """The monitor's drift rules as plan statements (engine/monitor/rule_plan.py): one rule per (feature, test),
    each over its two materialised samples, as `flywheel monitor` runs them (the store and thresholds aside)."""
    sys.path.insert(0, str(ROOT))
    from engine.monitor.drift import DriftSpec
    from engine.monitor.drift_rules import rule_statistics
    from engine.monitor.rule_plan import compile_rule

    con, rss0, load = _loaded(d, threads)
    psi = {"test": "psi", "epsilon": EPSILON, "n_bins": N_BINS}
    rules = {c: [DriftSpec.from_dict(psi), DriftSpec.from_dict({"test": "ks"})] for c in NUMERIC}
    rules.update({c: [DriftSpec.from_dict({**psi, "kind": "categorical"}),
                      DriftSpec.from_dict({"test": "chi_square", "kind": "categorical"})] for c in CATEGORICAL})
    plans = {c: [compile_rule(f"{c}_{s.test}", s) for s in specs] for c, specs in rules.items()}

    def run(profiles=None):
        out, fitted, samples = {}, {}, 0.0
        for col, col_plans in plans.items():
            t0 = time.perf_counter()
            for table, side in (("fw_drift_current", "cur"), ("fw_drift_reference", "ref")):
                con.execute(f'CREATE OR REPLACE TEMP TABLE {table} AS SELECT 0 AS window_start, "{col}" AS x '
                            f"FROM {side}")
            samples += time.perf_counter() - t0
            results = {}
            for plan in col_plans:
                profile, rows = rule_statistics(con, plan, (profiles or {}).get(plan.name))
                fitted[plan.name] = profile
                results[plan.spec.test] = rows[0]
            out[col] = _stats(results)
        return out, fitted, samples

    times, cpu, sample_s = [], [], []
    for _ in range(repeat):
        c0, t = _cpu(), time.perf_counter()
        stats, profiles, samples = run()
        times.append(time.perf_counter() - t)
        cpu.append(_cpu() - c0)
        sample_s.append(samples)
    stored, stored_cpu = [], []
    for _ in range(repeat):
        c0, t = _cpu(), time.perf_counter()
        run(profiles)
        stored.append(time.perf_counter() - t)
        stored_cpu.append(_cpu() - c0)
    return {"load_s": load, "compute_s": min(times), "all_s": times, "cpu_s": min(cpu), "all_cpu_s": cpu,
            "samples_s": min(sample_s), "stored_profiles_s": min(stored), "stored_profiles_cpu_s": min(stored_cpu),
            "rss_base_mb": rss0, "stats": stats,
            "threads": con.execute("SELECT current_setting('threads')").fetchall()[0][0]}


def worker_numpy(d: Path, repeat: int, threads: int | None) -> dict:
    import numpy as np
    import pyarrow.parquet as pq
    from scipy import stats as st

    rss0 = _rss_mb()
    t = time.perf_counter()
    data = {}
    for side in ("reference", "current"):
        table = pq.read_table(d / f"{side}.parquet")
        data[side] = {c: table[c].to_numpy() for c in NUMERIC}
        data[side].update({c: table[c].to_numpy(zero_copy_only=False).astype(str) for c in CATEGORICAL})
        del table
    load = time.perf_counter() - t
    ref, cur = data["reference"], data["current"]

    def smooth(counts):
        return (counts / counts.sum() + EPSILON) / (1 + len(counts) * EPSILON)

    def psi(rc, cc):
        p, q = smooth(rc), smooth(cc)
        return float(np.sum((q - p) * np.log(q / p)))

    def run():
        out = {}
        for col in NUMERIC:
            r, c = ref[col], cur[col]
            cuts = np.unique(np.quantile(r, np.arange(1, N_BINS) / N_BINS))
            k = len(cuts) + 1
            rc, cc = np.bincount(np.digitize(r, cuts), minlength=k), np.bincount(np.digitize(c, cuts), minlength=k)
            ks = st.ks_2samp(r, c)
            out[col] = {"psi": psi(rc, cc), "ks": float(ks.statistic), "ks_p": float(ks.pvalue)}
        for col in CATEGORICAL:
            rk, rc = np.unique(ref[col], return_counts=True)
            ck, cc = np.unique(cur[col], return_counts=True)
            keys = np.union1d(rk, ck)
            rfull, cfull = np.zeros(len(keys)), np.zeros(len(keys))
            rfull[np.searchsorted(keys, rk)], cfull[np.searchsorted(keys, ck)] = rc, cc
            chi = st.chi2_contingency(np.array([rfull, cfull]), correction=False)
            out[col] = {"psi": psi(rfull, cfull), "chi2": float(chi.statistic), "chi2_p": float(chi.pvalue)}
        return out

    times, cpu = [], []
    for _ in range(repeat):
        c0, t = _cpu(), time.perf_counter()
        stats = run()
        times.append(time.perf_counter() - t)
        cpu.append(_cpu() - c0)
    return {"load_s": load, "compute_s": min(times), "all_s": times, "cpu_s": min(cpu), "all_cpu_s": cpu,
            "rss_base_mb": rss0, "stats": stats}


def worker_evidently(d: Path, repeat: int, threads: int | None) -> dict:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    rss0 = _rss_mb()
    t = time.perf_counter()
    ref, cur = pd.read_parquet(d / "reference.parquet"), pd.read_parquet(d / "current.parquet")
    load = time.perf_counter() - t
    t = time.perf_counter()
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    ref_ds = Dataset.from_pandas(ref, data_definition=definition)
    cur_ds = Dataset.from_pandas(cur, data_definition=definition)
    datasets = time.perf_counter() - t
    metrics = []
    for col in NUMERIC:
        metrics += [ValueDrift(column=col, method="psi"), ValueDrift(column=col, method="ks")]
    for col in CATEGORICAL:
        metrics += [ValueDrift(column=col, method="psi"), ValueDrift(column=col, method="chisquare")]
    times, cpu = [], []
    for _ in range(repeat):
        report = Report(metrics)
        c0, t = _cpu(), time.perf_counter()
        snapshot = report.run(current_data=cur_ds, reference_data=ref_ds)
        values = [m["value"] for m in snapshot.dict()["metrics"]]
        times.append(time.perf_counter() - t)
        cpu.append(_cpu() - c0)
    stats, i = {}, 0
    for col in NUMERIC:
        stats[col] = {"psi": float(values[i]), "ks_p": float(values[i + 1])}
        i += 2
    for col in CATEGORICAL:
        stats[col] = {"psi": float(values[i]), "chi2_p": float(values[i + 1])}
        i += 2
    import evidently
    return {"load_s": load, "datasets_s": datasets, "compute_s": min(times), "all_s": times, "cpu_s": min(cpu),
            "all_cpu_s": cpu, "rss_base_mb": rss0, "stats": stats, "version": evidently.__version__,
            "pandas": pd.__version__}


def _stats(r: dict) -> dict:
    if "ks" in r:
        return {"psi": r["psi"].statistic, "ks": r["ks"].statistic, "ks_p": r["ks"].p_value}
    return {"psi": r["psi"].statistic, "chi2": r["chi_square"].statistic, "chi2_p": r["chi_square"].p_value}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


WORKERS = {"engine": worker_engine, "plan": worker_plan, "numpy": worker_numpy, "evidently": worker_evidently}


# ---- driver -------------------------------------------------------------------------------------------------------
def spawn(python: str, impl: str, d: Path, repeat: int, threads: int | None) -> dict:
    cmd = [python, str(Path(__file__).resolve()), "--worker", impl, "--dir", str(d), "--repeat", str(repeat)]
    if threads:
        cmd += ["--threads", str(threads)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["peak_rss_mb"] = out.pop("rss_peak_mb")
    # the whole worker process (imports, load, every repeat), as its parent sees it
    out["process_wall_s"] = wall
    out["process_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out


def evidently_available(python: str) -> str | None:
    """None if `python` can import Evidently 0.7 (with pandas < 3), else the reason."""
    if not Path(python).exists():
        return f"{python} not found"
    proc = subprocess.run([python, "-c", "import evidently, pandas; print(evidently.__version__, pandas.__version__)"],
                          check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or ["import failed"])[-1]
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: DuckDB's choice)")
    ap.add_argument("--evidently-python", default=os.environ.get("EVIDENTLY_PYTHON", DEFAULT_EVIDENTLY))
    ap.add_argument("--worker", choices=list(WORKERS))
    ap.add_argument("--dir")
    args = ap.parse_args()

    if args.worker:
        result = WORKERS[args.worker](Path(args.dir), args.repeat, args.threads)
        result["rss_peak_mb"] = _rss_mb()
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="bench_drift_") as tmp:
        d = Path(tmp)
        t = time.perf_counter()
        generate(args.rows, d)
        print(f"data: {args.rows:,} reference + {args.rows:,} current rows, {len(NUMERIC)} numeric + "
              f"{len(CATEGORICAL)} categorical columns, Parquet written in {time.perf_counter() - t:.1f} s")
        print(f"machine: {os.cpu_count()} CPUs; load average at start {_load()}")
        results = {"engine": spawn(sys.executable, "engine", d, args.repeat, args.threads),
                   "plan": spawn(sys.executable, "plan", d, args.repeat, args.threads),
                   "numpy": spawn(sys.executable, "numpy", d, args.repeat, args.threads)}
        reason = evidently_available(args.evidently_python)
        if reason:
            print(f"\nEVIDENTLY SKIPPED: {reason}\n  install it in its own venv (benchmarks/README.md) or pass "
                  f"--evidently-python PATH")
        else:
            results["evidently"] = spawn(args.evidently_python, "evidently", d, max(1, min(args.repeat, 2)),
                                         args.threads)
    print(f"load average at end {_load()}")
    report(results)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min), {fifteen:.2f} (15 min)"


def report(results: dict) -> None:
    eng = results["engine"]
    if "error" in eng:
        sys.exit(f"engine worker failed: {eng['error']}")
    print("\ncompute = fastest repeat (wall), cpu = fewest CPU seconds of a repeat (process, all threads); "
          "x engine = their time / the engine's")
    print(f"{'implementation':<12} {'load s':>7} {'compute s':>10} {'x engine':>9} {'cpu s':>7} {'x engine':>9} "
          f"{'peak RSS MB':>12} {'(after imports)':>16} {'process wall/cpu s':>19}")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<12} FAILED: {r['error']}")
            continue
        print(f"{name:<12} {r['load_s']:>7.2f} {r['compute_s']:>10.3f} {r['compute_s'] / eng['compute_s']:>8.1f}x "
              f"{r['cpu_s']:>7.3f} {r['cpu_s'] / eng['cpu_s']:>8.1f}x {r['peak_rss_mb']:>12.0f} "
              f"{r['rss_base_mb']:>16.0f} {r['process_wall_s']:>9.1f}/{r['process_cpu_s']:.1f}")
    for name, r in results.items():
        if "error" not in r:
            print(f"  {name} repeats: wall {', '.join(f'{t:.3f}' for t in r['all_s'])} s; "
                  f"cpu {', '.join(f'{t:.3f}' for t in r['all_cpu_s'])} s")
    print(f"engine with stored reference profiles (the monitor's steady state): {eng['stored_profiles_s']:.3f} s "
          f"wall, {eng['stored_profiles_cpu_s']:.3f} s cpu; DuckDB threads: {eng['threads']}")
    plan = results.get("plan", {})
    if "error" not in plan and plan:
        print(f"plan (the monitor's statements) with stored reference profiles: {plan['stored_profiles_s']:.3f} s "
              f"wall, {plan['stored_profiles_cpu_s']:.3f} s cpu; of its compute, materialising the samples "
              f"{plan['samples_s']:.3f} s")
    if "evidently" in results and "error" not in results["evidently"]:
        ev = results["evidently"]
        print(f"evidently {ev['version']} (pandas {ev['pandas']}): Dataset.from_pandas {ev['datasets_s']:.2f} s "
              f"(not in compute)")

    num = results["numpy"]
    for name in ("engine", "plan"):
        if "error" in num or "error" in results.get(name, {"error": 1}):
            continue
        print(f"\nstatistics, {name} vs numpy/scipy (same definitions): max |difference| over the columns")
        diffs: dict[str, float] = {}
        for col, s in results[name]["stats"].items():
            for k, v in s.items():
                diffs[k] = max(diffs.get(k, 0.0), abs(v - num["stats"][col][k]))
        print("  " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items())
              + f"  -> {'all below 1e-9' if max(diffs.values()) < 1e-9 else 'ABOVE 1e-9'}")
    print(f"\n{'column':<7} {'engine psi':>11} {'ks D / chi2':>12} {'p-value':>10}   "
          f"{'evidently psi':>13} {'p-value':>10}")
    ev_stats = results.get("evidently", {}).get("stats", {})
    for col, s in eng["stats"].items():
        stat, p = (s["ks"], s["ks_p"]) if "ks" in s else (s["chi2"], s["chi2_p"])
        ev = ev_stats.get(col, {})
        ev_p = ev.get("ks_p", ev.get("chi2_p"))
        print(f"{col:<7} {s['psi']:>11.3g} {stat:>12.4g} {p:>10.3g}   "
              f"{ev.get('psi', float('nan')):>13.3g} {ev_p if ev_p is not None else float('nan'):>10.3g}")
    if ev_stats:
        ks_diff = max(abs(eng["stats"][c]["ks_p"] - ev_stats[c]["ks_p"]) for c in NUMERIC)
        print(f"KS p-value, engine vs Evidently (both scipy's ks_2samp definition): max |difference| {ks_diff:.1e}")

    print("\ngoals (wall | cpu):")
    if "error" not in num:
        w, c = num["compute_s"] / eng["compute_s"], num["cpu_s"] / eng["cpu_s"]
        print(f"  engine vs numpy/scipy: {w:.1f}x | {c:.1f}x  (goal >= 1x: {_met(w, c, 1.0)})")
    if "evidently" in results and "error" not in results["evidently"]:
        ev = results["evidently"]
        w, c = ev["compute_s"] / eng["compute_s"], ev["cpu_s"] / eng["cpu_s"]
        print(f"  engine vs Evidently:   {w:.1f}x | {c:.1f}x  (goal >= 20x: {_met(w, c, 20.0)})")


def _met(wall: float, cpu: float, goal: float) -> str:
    return {(True, True): "met on both", (True, False): "met on wall only", (False, True): "met on cpu only",
            (False, False): "NOT met"}[(wall >= goal, cpu >= goal)]


if __name__ == "__main__":
    main()
