"""What-if replay speed: stored gate decisions of 10,000 cases x 5 metrics re-judged under an edited policy.

Builds a store directly (no model, no CLI): one dataset version of N cases, R runs with their run cases, outputs
and per-case scores of 5 metrics, and D stored gate decisions between them (by default 20 baselines x 50
challengers = 1,000 distinct pairs over 70 runs; `--distinct` gives every decision its own two runs, a much
larger store). The stored results are the replay engine's own verdicts under the original policy; a sample is
checked against `engine.gate.decide.decide`, the gate itself.

Then, in the same run:
* the replay: `engine.whatif.gate.replay_decisions` under a tighter improvement bound (stored scores), per
  decision; goal < 20 ms;
* the reference: the raw query reading one decision's scores (both runs, every metric) into Arrow;
* the gate's own `decide` on a sample of decisions (it compiles and renders its SQL every time);
* a replay that re-scores one metric (a changed normaliser) from the stored outputs, on a sample.

    .venv/bin/python benchmarks/bench_whatif.py [--cases 10000] [--decisions 1000] [--distinct]
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from engine.gate.decide import decide
from engine.provenance import canonical_json
from engine.store import Store
from engine.whatif.gate import Side, replay_decisions
from engine.whatif.history import Selection, select_decisions
from engine.whatif.policy import Policy
from engine.whatif.replay import judge, verdict

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


def run_id(r: int) -> str:
    """Run ids as the gate makes them (`gate-<time>-<hex>`): their common prefix defeats DuckDB's string zone maps,
    as in a real store."""
    return f"gate-20250101T{r // 3600:02d}{r // 60 % 60:02d}{r % 60:02d}-{r:08x}"


def pairs(decisions: int, distinct: bool) -> tuple[int, list[tuple[int, int]]]:
    """(number of runs, (baseline run, challenger run) per decision)."""
    if distinct:
        return 2 * decisions, [(2 * i, 2 * i + 1) for i in range(decisions)]
    baselines = 20
    challengers = -(-decisions // baselines)
    return baselines + challengers, [(i % baselines, baselines + i // baselines) for i in range(decisions)]


def build(path: Path, n: int, runs: int) -> None:
    config = canonical_json({"metrics": METRICS})
    with Store.open(path) as store:
        con = store.con
        con.execute("INSERT INTO dataset_versions VALUES ('dv', 'bench', 'synthetic', $n, NULL, now(), '{}')", {"n": n})
        con.execute("""INSERT INTO cases SELECT 'dv', 'c' || i, i, to_json('q' || i), 'question ' || i, to_json('a'),
                       ['a'], [], [['billing','account','policy','troubleshooting','integrations'][1 + i % 5]], '{}',
                       md5(i::VARCHAR) FROM range($n) t(i)""", {"n": n})
        con.execute("""INSERT INTO runs (run_id, command, model_name, model_fingerprint, config_hash, metrics_hash,
                       dataset_versions, git_commit, started_at, finished_at, status, n_cases, n_model_calls, n_errors,
                       config) SELECT printf('gate-20250101T%02d%02d%02d-%08x', r // 3600, r // 60 % 60, r % 60, r), 'gate', 'model' || r, 'fp' || r, 'h', 'm', '{"bench": "dv"}',
                       NULL, TIMESTAMPTZ '2025-01-01' + INTERVAL (r) MINUTE, TIMESTAMPTZ '2025-01-01' +
                       INTERVAL (r) MINUTE + INTERVAL 30 SECOND, 'ok', $n, $n, 0, $config FROM range($runs) t(r)""",
                    {"n": n, "runs": runs, "config": config})
        con.execute("INSERT INTO run_cases SELECT printf('gate-20250101T%02d%02d%02d-%08x', r // 3600, r // 60 % 60, "
                    "r % 60, r), 'bench', 'dv', 'c' || i, md5(i::VARCHAR), md5(i::VARCHAR) "
                    "FROM range($runs) t(r), range($n) u(i) ORDER BY r, i", {"n": n, "runs": runs})
        con.execute("""INSERT INTO outputs SELECT 'fp' || r, md5(i::VARCHAR), 0,
                       CASE WHEN hash(i, r, 1) % 100 < 72 THEN 'the answer is a' ELSE 'answer ' || i END, NULL, 100,
                       10, 10, 0.001, NULL, printf('gate-20250101T%02d%02d%02d-%08x', r // 3600, r // 60 % 60, r % 60, r),
                       TIMESTAMPTZ '2025-01-01' + INTERVAL (r) MINUTE
                       FROM range($runs) t(r), range($n) u(i) ORDER BY r, i""", {"n": n, "runs": runs})
        # Paired outcomes: challengers a little better, with a few regressions; scores clustered by run, as the
        # gate writes them
        con.execute("""
            INSERT INTO scores
            SELECT printf('gate-20250101T%02d%02d%02d-%08x', r // 3600, r // 60 % 60, r % 60, r), 'bench', 'dv',
                   'c' || i, 0, metric,
                   CASE metric
                     WHEN 'accuracy' THEN CASE WHEN hash(i, 1) % 100 < 68 + r % 9 THEN 1.0 ELSE 0.0 END
                     WHEN 'token_f1' THEN round((hash(i, 2) % 1000) / 1000.0 + (r % 7) / 200.0, 2)
                     WHEN 'safety' THEN CASE WHEN r % 10 = 3 AND hash(i, r, 3) % 5000 = 0 THEN 0.0 ELSE 1.0 END
                     WHEN 'groundedness' THEN (hash(i, 3) % 100) / 100.0
                     ELSE 200 + hash(i, r, 4) % 500 END AS value,
                   FALSE, NULL
            FROM range($runs) t(r), range($n) u(i),
                 (VALUES ('accuracy'), ('token_f1'), ('safety'), ('groundedness'), ('latency')) m(metric)
            ORDER BY r, i""", {"n": n, "runs": runs})
        con.execute("UPDATE scores SET passed = CASE WHEN metric = 'latency' THEN value <= 800 "
                    "WHEN metric = 'token_f1' THEN value >= 0.5 ELSE value >= 1.0 END")


def store_decisions(path: Path, pairs_: list[tuple[int, int]]) -> None:
    """The decisions as the gate stores them, verdicts from the replay engine under the original policy."""
    start = datetime(2025, 2, 1, tzinfo=timezone.utc)
    with Store.open(path) as store:
        con = store.con
        side = Side(con, Policy("current", {"gate": GATE, "metrics": METRICS}), 0)
        rows = []
        for i, (b, c) in enumerate(pairs_):
            computed = judge(con, side.compiled, run_id(b), run_id(c), list(side.compiled.used_metrics), [],
                             set(GATE["rules"]), with_cases=False)
            outcome, rules = verdict([computed[name].to_json() for name in GATE["rules"]])
            result = {"decision_id": f"d{i:05d}", "verdict": outcome, "dataset_versions": {"bench": "dv"},
                      "rules": rules}
            rows.append((f"gate-20250201T000000-{i:08x}", run_id(b), run_id(c), f"model{b}", f"model{c}", outcome,
                         "h", None, start + timedelta(seconds=i), canonical_json(GATE), canonical_json(result)))
        with store.transaction() as tx:
            tx.executemany("INSERT INTO gate_decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def check_against_decide(path: Path, sample: int) -> float:
    """The stored verdicts equal the gate's own on a sample; returns decide's mean ms per decision."""
    with Store.open(path, read_only=True) as store:
        decisions = select_decisions(store.con, Selection(limit=sample))
        times, cpu = [], []
        for d in decisions:
            t0, c0 = time.perf_counter(), time.process_time()
            outcome = decide(store, GATE, METRICS, d.baseline_run, d.challenger_run)
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            got = [(r.name, r.status) for r in outcome.rules]
            want = [(r["name"], r["status"]) for r in d.rules]
            # values equal up to the order of floating-point summation (parallel aggregates)
            same = all(math.isclose(r.value, s["value"], rel_tol=1e-9, abs_tol=1e-12) if r.value is not None
                       else s["value"] is None for r, s in zip(outcome.rules, d.rules))
            assert outcome.verdict == d.verdict and got == want and same, (d.decision_id, got, want)
    return statistics.fmean(times), statistics.fmean(cpu)


def raw_read_ms(path: Path, sample: int) -> float:
    """The reference: read one decision's scores (both runs, every metric) into Arrow."""
    with Store.open(path, read_only=True) as store:
        decisions = select_decisions(store.con, Selection(limit=sample))
        times, cpu = [], []
        for d in decisions:
            t0, c0 = time.perf_counter(), time.process_time()
            table = store.con.sql("SELECT run_id, metric, case_id, value, passed FROM scores WHERE run_id IN ($b, $c)",
                                  params={"b": d.baseline_run, "c": d.challenger_run}).to_arrow_table()
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            assert table.num_rows == 2 * 5 * len(store.con.execute("SELECT 1 FROM cases").fetchall())
    return statistics.fmean(times), statistics.fmean(cpu)


def replay(path: Path, gate: dict, metrics: dict, limit: int | None) -> dict:
    with Store.open(path, read_only=True) as store:
        t0, c0 = time.perf_counter(), time.process_time()
        result = replay_decisions(store.con, Policy("current", {"gate": gate, "metrics": metrics}),
                                  Policy("stored", None), Selection(limit=limit))
        result["wall_ms"] = (time.perf_counter() - t0) * 1000
        result["cpu_ms"] = (time.process_time() - c0) * 1000  # every thread of this process (DuckDB's too)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=1000)
    parser.add_argument("--distinct", action="store_true", help="every decision its own two runs (a large store)")
    parser.add_argument("--sample", type=int, default=20, help="decisions timed with decide() and re-scoring")
    args = parser.parse_args()
    n_runs, pairs_ = pairs(args.decisions, args.distinct)
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        t0 = time.perf_counter()
        build(path, args.cases, n_runs)
        store_decisions(path, pairs_)
        print(f"built store: {args.decisions:,} decisions over {n_runs} runs x {args.cases:,} cases x {len(METRICS)} "
              f"metrics ({n_runs * args.cases * len(METRICS):,} score rows, {path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - t0:.1f} s")
        decide_ms, decide_cpu = check_against_decide(path, args.sample)
        print(f"stored verdicts equal engine.gate.decide.decide on {args.sample} sampled decisions")

        def per(result: dict, n: int) -> str:
            return f"{result['wall_ms'] / n:.1f} ms wall ({result['cpu_ms'] / n:.1f} ms CPU) per decision"

        tighter = copy.deepcopy(GATE)
        tighter["rules"]["accuracy_improves"]["min_delta"] = 0.03
        one = replay(path, tighter, METRICS, None)
        wall = one["wall_ms"] / args.decisions
        print(f"replay, one rule edited (accuracy_improves.min_delta 0 -> 0.03; the other rules keep their stored "
              f"outcome): {args.decisions:,} decisions in {one['wall_ms'] / 1000:.2f} s = {per(one, args.decisions)} "
              f"(goal < 20 ms -> {'met' if wall < 20 else 'NOT met'}); {one['summary_line']}")
        scoped = copy.deepcopy(GATE)
        for rule in scoped["rules"].values():
            rule["datasets"] = ["bench"]  # the only dataset: a new definition with the same meaning
        full = replay(path, scoped, METRICS, None)
        assert full["summary"]["unchanged"] == args.decisions, full["summary_line"]
        print(f"replay, every rule run again (each scoped to the only dataset, same outcomes: "
              f"{full['summary']['unchanged']} of {args.decisions} unchanged): {per(full, args.decisions)}")
        raw, raw_cpu = raw_read_ms(path, args.sample)
        print(f"reference in the same run: reading one decision's scores ({2 * 5 * args.cases:,} rows -> Arrow) takes "
              f"{raw:.1f} ms wall ({raw_cpu:.1f} ms CPU): the replay costs {one['cpu_ms'] / args.decisions / raw_cpu:.1f}x "
              f"that in CPU with one rule edited, {full['cpu_ms'] / args.decisions / raw_cpu:.1f}x with every rule run again")
        print(f"the gate's own decide() per decision (SQL compiled and rendered each time): {decide_ms:.1f} ms wall "
              f"({decide_cpu:.1f} ms CPU, {decide_cpu / (full['cpu_ms'] / args.decisions):.1f}x the replay running "
              f"every rule)")

        metrics = copy.deepcopy(METRICS)
        metrics["accuracy"]["normalizer"] = "lower_strip"
        rescored = replay(path, GATE, metrics, args.sample)
        print(f"replay re-scoring accuracy from stored outputs (both runs, {args.cases:,} cases each): "
              f"{per(rescored, args.sample)} over {args.sample} decisions; {rescored['summary_line']} (the bench's "
              f"stored scores are synthetic, not computed from its outputs, so outcomes move)")
        assert rescored["summary"]["rescored"] == args.sample and rescored["model_calls"] == 0
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
