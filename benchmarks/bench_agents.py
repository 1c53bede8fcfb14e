"""Benchmark: the trajectory metrics (SQL over trajectory_steps), against an answer metric in the same run.

    .venv/bin/python benchmarks/bench_agents.py [--cases 1000 4000]

For each size: a golden agent set of N cases (2 expected calls with argument checks, order modes rotating,
some with forbidden tools and a step budget) is loaded and stored by the real dataset code into an in-memory
store, N outputs with recorded trajectories (1-4 tool calls, some failing) are written and unrolled into step
rows by the real SQL (engine/agents/steps.py), then every trajectory metric and the `contains` answer metric
are scored by their compiled statements. Prints seconds per metric, ms per 1,000 cases and the ratio to
`contains` (the reference measured in the same run), and the growth from the smallest size to the largest
(linear scaling keeps the ratio of times equal to the ratio of sizes).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402

from engine import datasets as ds  # noqa: E402
from engine.agents.steps import store_steps  # noqa: E402
from engine.agents.trajectory import normalize  # noqa: E402
from engine.compiler import compile_evaluate  # noqa: E402
from engine.executor import execute  # noqa: E402
from engine.provenance import canonical_json, utc_now  # noqa: E402
from engine.store import Store  # noqa: E402

METRICS = {"tool_call_match": {"kind": "tool_call_match"}, "tool_arguments": {"kind": "tool_arguments"},
           "forbidden_tool": {"kind": "forbidden_tool"}, "step_efficiency": {"kind": "step_efficiency"},
           "tool_error_rate": {"kind": "tool_error_rate"}, "contains": {"kind": "contains"}}
MODES = ["exact", "in_order", "any_order", "subset"]
TOOLS = ["lookup_order", "refund_order", "change_account", "search_kb"]


def build(n: int, directory: Path, rng: random.Random) -> Store:
    records, trajectories = [], []
    for i in range(n):
        order = f"A-{i:06d}"
        task = {"tool_calls": [{"name": "lookup_order", "arguments": [{"path": "$.order_id", "equals": order}]},
                               {"name": "refund_order", "arguments": [
                                   {"path": "$.amount", "approx": 10.0 + i % 50, "tolerance": 0.01},
                                   {"path": "$.reason", "regex": "damag"}]}],
                "order": MODES[i % 4]}
        if i % 3 == 0:
            task["forbidden_tools"] = ["change_account"]
        if i % 2 == 0:
            task["max_steps"] = 4
        records.append({"id": f"c{i}", "input": f"refund {order}", "expected": "refunded", "agent": task})
        steps = []
        for _ in range(rng.randint(1, 4)):
            tool = rng.choice(TOOLS)
            steps.append({"type": "tool_call", "name": tool, "arguments": {
                "order_id": order, "amount": 10.0 + i % 50 + rng.choice([0, 0, 0.5]), "reason": "item damaged"},
                "result": {"ok": True}, "error": "timeout" if rng.random() < 0.1 else None})
        trajectories.append(steps)
    path = directory / f"agents_{n}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    dataset = ds.load_file("agents", path, path.name)
    store = Store(duckdb.connect(":memory:"), Path(":memory:"))
    store.migrate()
    ds.store_version(store, dataset)
    con, now = store.con, utc_now()
    con.execute("INSERT INTO runs (run_id, command, model_name, model_fingerprint, config_hash, metrics_hash, "
                "dataset_versions, started_at, status, config) VALUES ('run', 'evaluate', 'm', 'fp', '', '', "
                "'{}', ?, 'running', '{}')", [now])
    keys = [c.input_hash for c in dataset.cases]
    con.register("bench_rc", pa.table({"case_id": [c.case_id for c in dataset.cases], "key": keys}))
    con.execute("INSERT INTO run_cases SELECT 'run', 'agents', ?, case_id, key, key FROM bench_rc", [dataset.version])
    con.register("bench_out", pa.table({"key": keys, "raw": [canonical_json({"trajectory": normalize(t)})
                                                              for t in trajectories]}))
    con.execute("INSERT INTO outputs SELECT 'fp', key, 0, 'refunded', NULL, 1.0, NULL, NULL, NULL, raw::JSON, "
                "'run', ? FROM bench_out", [now])
    store_steps(con, "fp", "run")
    return store


def measure(n: int, directory: Path) -> dict[str, float]:
    store = build(n, directory, random.Random(20261202))
    seconds = {}
    for statement in compile_evaluate(METRICS).statements:
        started = time.perf_counter()
        execute(store.con, statement, {"run_id": "run", "repeats": 1})
        if statement.name.startswith("score:"):
            seconds[statement.name[len("score:"):]] = time.perf_counter() - started
    store.con.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, nargs="+", default=[1000, 4000])
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.cases:
            results[n] = measure(n, Path(tmp))
            ref = results[n]["contains"]
            print(f"\n{n:,} agent cases")
            for name, s in results[n].items():
                print(f"  {name:16s} {s:8.3f} s  {s / n * 1e6:9.1f} ms/1k cases  {s / ref:7.1f}x contains")
    small, large = min(args.cases), max(args.cases)
    if small != large:
        print(f"\ngrowth {small:,} -> {large:,} cases ({large / small:.0f}x):")
        for name in METRICS:
            print(f"  {name:16s} {results[large][name] / results[small][name]:6.1f}x")


if __name__ == "__main__":
    main()
