"""Gate speed: N cases x 5 metrics, 1,000 bootstrap resamples, from stored scores to verdict.

Builds a store with two synthetic runs (baseline, challenger), then times `engine.gate.decide.decide` over
five rules (improvement with bootstrap, improvement with McNemar, no_regression, all_pass, threshold p95).
Prints the total and the share per rule. Goal: under 1 s for 100,000 cases on a 2-core machine.

    .venv/bin/python benchmarks/bench_gate.py [--n 100000] [--resamples 1000]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb

from engine.gate.decide import decide
from engine.store import Store

METRICS = {
    "accuracy": {"kind": "contains", "normalizer": "squad"},
    "token_f1": {"kind": "exact_match", "normalizer": "squad", "aggregate": "mean"},
    "safety": {"kind": "exact_match", "normalizer": "none"},
    "groundedness": {"kind": "exact_match", "normalizer": "none"},
    "latency": {"kind": "exact_match", "normalizer": "none", "aggregate": "p95"},
}
GATE = {
    "reducer": "all",
    "bootstrap": {"resamples": 1000, "seed": 1},
    "rules": {
        "accuracy_improves": {"kind": "improvement", "metric": "accuracy", "min_delta": 0.0,
                              "significance": {"test": "mcnemar", "alpha": 0.05}},
        "f1_improves": {"kind": "improvement", "metric": "token_f1", "min_delta": 0.0,
                        "significance": {"test": "bootstrap", "alpha": 0.05}},
        "no_regressions": {"kind": "no_regression", "metric": "accuracy", "max": 0},
        "safety_suite": {"kind": "all_pass", "metric": "safety"},
        "p95_latency": {"kind": "threshold", "metric": "latency", "aggregate": "p95", "op": "<=", "bound": 800},
    },
}


def build(path: Path, n: int) -> None:
    with Store.open(path) as store:
        con = store.con
        con.execute("""INSERT INTO dataset_versions VALUES ('dv', 'bench', 'synthetic', $n, NULL, now(), '{}')""",
                    {"n": n})
        con.execute("""INSERT INTO cases SELECT 'dv', 'c' || i, i, to_json('q' || i), 'question ' || i,
                       to_json('a'), ['a'], [], [['billing','account','policy','troubleshooting','integrations'][1 + i % 5]],
                       '{}', md5(i::VARCHAR) FROM range($n) t(i)""", {"n": n})
        for run, fp in (("base", "fpb"), ("chal", "fpc")):
            con.execute("""INSERT INTO runs VALUES ($run, 'gate', $run, $fp, 'h', 'm', '{"bench": "dv"}', NULL,
                           now(), now(), 'ok', $n, $n, 0, '{}')""", {"run": run, "fp": fp, "n": n})
            con.execute("INSERT INTO run_cases SELECT $run, 'bench', 'dv', 'c' || i, md5(i::VARCHAR) FROM range($n) t(i)",
                        {"run": run, "n": n})
            con.execute("""INSERT INTO outputs SELECT $fp, md5(i::VARCHAR), 0, 'answer ' || i, NULL, 100, 10, 10, 0.001,
                           NULL, $run, now() FROM range($n) t(i)""", {"run": run, "fp": fp, "n": n})
        # Paired outcomes: the challenger is a little better, with a few regressions.
        con.execute("""
            INSERT INTO scores
            SELECT run, 'bench', 'dv', 'c' || i, 0, metric,
                   CASE metric
                     WHEN 'accuracy' THEN CASE WHEN hash(i, run, 1) % 100 < (CASE WHEN run = 'chal' THEN 74 ELSE 70 END) THEN 1.0 ELSE 0.0 END
                     WHEN 'token_f1' THEN round((hash(i, run, 2) % 1000) / 1000.0 + (CASE WHEN run = 'chal' THEN 0.02 ELSE 0 END), 2)
                     WHEN 'safety' THEN 1.0
                     WHEN 'groundedness' THEN (hash(i, 3) % 100) / 100.0
                     ELSE 200 + hash(i, run, 4) % 500 END AS value,
                   FALSE, NULL
            FROM range($n) t(i), (VALUES ('base'), ('chal')) r(run),
                 (VALUES ('accuracy'), ('token_f1'), ('safety'), ('groundedness'), ('latency')) m(metric)""", {"n": n})
        con.execute("UPDATE scores SET passed = CASE WHEN metric = 'latency' THEN value <= 800 "
                    "WHEN metric = 'token_f1' THEN value >= 0.5 ELSE value >= 1.0 END")


def row_bootstrap_ms(path: Path, resamples: int) -> float:
    """The textbook paired bootstrap (resample rows with replacement) of the token_f1 difference, in numpy."""
    import numpy as np

    con = duckdb.connect(str(path), read_only=True)
    diffs = con.execute("SELECT c.value - b.value FROM scores c JOIN scores b USING (case_id, metric) "
                        "WHERE c.run_id = 'chal' AND b.run_id = 'base' AND metric = 'token_f1'").fetchnumpy()
    con.close()
    d = next(iter(diffs.values())).astype(float)
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    means = np.empty(resamples)
    for i in range(resamples):
        means[i] = d[rng.integers(0, len(d), len(d))].mean()
    np.quantile(means, [0.025, 0.975])
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    GATE["bootstrap"]["resamples"] = args.resamples
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        t0 = time.perf_counter()
        build(path, args.n)
        print(f"built store: {args.n:,} cases x {len(METRICS)} metrics x 2 runs "
              f"({2 * 5 * args.n:,} score rows) in {time.perf_counter() - t0:.1f} s")
        best = None
        for _ in range(args.repeat):
            with Store.open(path) as store:
                t0 = time.perf_counter()
                outcome = decide(store, GATE, METRICS, "base", "chal")
                elapsed = time.perf_counter() - t0
            if best is None or elapsed < best[0]:
                best = (elapsed, outcome)
        elapsed, outcome = best
        print(f"gate verdict {outcome.verdict} in {elapsed * 1000:.0f} ms (best of {args.repeat}); "
              f"goal < 1000 ms -> {'met' if elapsed < 1 else 'NOT met'}")
        print(f"reference in the same run: a row bootstrap (numpy, {args.resamples} resamples of {args.n:,} paired "
              f"differences) takes {row_bootstrap_ms(path, args.resamples):.0f} ms for one metric; the gate's count "
              f"bootstrap is inside f1_improves below")
        total = sum(outcome.timings_ms.values())
        prep = outcome.timings_ms["prepare"]
        print(f"  {'prepare':<18} {'':<5} {prep:7.1f} ms  {100 * prep / total:5.1f} %  per-case scores of both runs")
        for r in outcome.rules:
            ms = outcome.timings_ms[r.name]
            print(f"  {r.name:<18} {r.status:<5} {ms:7.1f} ms  {100 * ms / total:5.1f} %  {r.message}")


if __name__ == "__main__":
    main()
