"""Ingest benchmark (a script, not a test): N simulated traces as JSONL with a share of bad records,
validated and loaded by `flywheel ingest`'s engine (schema checks compiled to SQL, one transaction), against
per-record `jsonschema` validation of the same file. Both must reject exactly the same line numbers.

    .venv/bin/python benchmarks/bench_ingest.py --n 1000000
Goal: >= 500,000 records/s end to end and >= 20x the per-record path.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from engine.ingest.load import Batch, Options
from engine.ingest.readers import SourceFile
from engine.ingest.records import record_validator
from engine.ingest.strict import problem as strict_problem
from engine.paths import bundled_conf_dir
from engine.simulate import Simulator
from engine.store import Store

BAD_KINDS = ["broken_json", "wrong_type", "missing_required", "out_of_range", "bad_timestamp", "not_object",
             "bad_integer", "long_id", "nan", "trailing_comma", "duplicate_key"]


def simulated_pool(tmp: Path) -> list[dict]:
    """A few thousand realistic traces from the simulator (the deployed demo model answers)."""
    spec = yaml.safe_load((bundled_conf_dir() / "simulate" / "default.yaml").read_text())
    spec.update(days=8, sessions_per_day=150, otlp_fraction=0.0)
    model = yaml.safe_load((bundled_conf_dir() / "model" / "keyword_baseline.yaml").read_text())
    files = Simulator(spec, model, tmp).run(tmp / "pool")
    return [json.loads(line) for line in open(files["traces"], encoding="utf-8")]


def break_record(record: dict, how: str, rng: random.Random) -> str:
    r = dict(record)
    if how == "broken_json":
        return json.dumps(r)[: rng.randint(10, 80)]
    if how == "wrong_type":
        r[rng.choice(["input", "latency_ms", "model"])] = rng.choice([42, "slow", ["x"]])
    elif how == "missing_required":
        del r[rng.choice(["timestamp", "model", "input"])]
    elif how == "out_of_range":
        r[rng.choice(["latency_ms", "cost", "prompt_tokens"])] = -rng.randint(1, 100)
    elif how == "bad_timestamp":
        r["timestamp"] = rng.choice(["yesterday", "2025-02-30T10:00:00Z", "2025/03/01 10:00"])
    elif how == "not_object":
        return json.dumps([r["input"]])
    elif how == "bad_integer":
        r["completion_tokens"] = 2.5
    elif how == "long_id":
        r["trace_id"] = "x" * 300
    elif how == "nan":  # DuckDB's json_valid accepts these three; RFC 8259 does not
        r["cost"] = rng.choice([float("nan"), float("inf")])
    elif how == "trailing_comma":
        return json.dumps(r, ensure_ascii=False)[:-1] + ", }"
    elif how == "duplicate_key":
        return json.dumps(r, ensure_ascii=False)[:-1] + ', "model": "another"}'
    return json.dumps(r, ensure_ascii=False)


def write_file(path: Path, pool: list[dict], n: int, bad_rate: float, seed: int = 1) -> set[int]:
    rng = random.Random(seed)
    bad: set[int] = set()
    with open(path, "w", encoding="utf-8") as f:
        for i in range(1, n + 1):
            record = dict(pool[i % len(pool)])
            record["trace_id"] = f"tr-{i:010d}"
            if rng.random() < bad_rate:
                bad.add(i)
                f.write(break_record(record, rng.choice(BAD_KINDS), rng) + "\n")
            else:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return bad


def engine_path(path: Path, store_path: Path, unknown_fields: str) -> tuple[float, set[int], dict]:
    started = time.perf_counter()
    cpu = time.process_time()
    with Store.open(store_path) as store:
        source = SourceFile(path, path.name, "jsonl", path.stat().st_size)
        with store.transaction() as con:
            batch = Batch(con, Options(kind="traces", unknown_fields=unknown_fields), "bench",
                          datetime.now(timezone.utc))
            counts = batch.run([source])[0]
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu  # every DuckDB thread counts: less sensitive to other load than wall time
        rejected = {line for (line,) in store.con.execute("SELECT source_line FROM quarantine").fetchall()}
        stored = store.con.execute("SELECT count(*) FROM traces").fetchall()[0][0]
    return seconds, rejected, {**counts.to_json(), "stored": stored, "cpu_seconds": cpu}


def per_record_path(path: Path) -> tuple[float, set[int]]:
    validator = record_validator("traces")
    rejected = set()
    started = time.perf_counter()
    cpu = time.process_time()
    with open(path, encoding="utf-8", newline="\n") as f:
        for line_no, line in enumerate(f, start=1):
            if strict_problem(line) is not None:  # the same strict JSON rule (RFC 8259, no duplicate keys)
                rejected.add(line_no)
                continue
            record = json.loads(line)
            if not isinstance(record, dict) or next(validator.iter_errors(record), None) is not None:
                rejected.add(line_no)
    print(f"  (per-record path: {time.process_time() - cpu:,.2f} s CPU; {_load()})")
    return time.perf_counter() - started, rejected


def _load() -> str:
    """Other processes share the cores: wall-clock rates are only comparable at similar load."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--bad-rate", type=float, default=0.01)
    parser.add_argument("--unknown-fields", default="keep", choices=["keep", "ignore", "quarantine"])
    parser.add_argument("--dir", default=None, help="where to write the file and the store (default: a temp dir)")
    args = parser.parse_args()
    tmp = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    tmp.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    pool = simulated_pool(tmp)
    path = tmp / "traces.jsonl"
    bad = write_file(path, pool, args.n, args.bad_rate)
    size = path.stat().st_size
    print(f"file: {args.n:,} traces ({len(bad):,} bad), {size / 1e6:,.0f} MB, {size / args.n:,.0f} bytes/record "
          f"(generated in {time.perf_counter() - t:,.1f} s from {len(pool):,} simulated traces)")
    store_path = tmp / "bench.duckdb"
    for p in (store_path, store_path.with_suffix(".duckdb.wal")):
        p.unlink(missing_ok=True)
    print(f"({_load()} before the engine path)")
    seconds, rejected, counts = engine_path(path, store_path, args.unknown_fields)
    rate = args.n / seconds
    print(f"flywheel ingest (SQL checks, one transaction): {seconds:,.2f} s = {rate:,.0f} records/s end to end; "
          f"accepted {counts['accepted']:,}, quarantined {counts['quarantined']:,}, stored {counts['stored']:,}")
    print(f"  ({counts['cpu_seconds']:,.2f} s CPU = {args.n / counts['cpu_seconds']:,.0f} records per CPU second; "
          f"{_load()})")
    ref_seconds, ref_rejected = per_record_path(path)
    ref_rate = args.n / ref_seconds
    print(f"per-record jsonschema (strict json.loads + Draft 2020-12 validator, no storing): {ref_seconds:,.2f} s = "
          f"{ref_rate:,.0f} records/s")
    same = rejected == ref_rejected
    print(f"speed-up: {rate / ref_rate:,.1f}x; identical rejected line numbers: {same} "
          f"({len(rejected):,} vs {len(ref_rejected):,}; planted {len(bad):,})")
    print(f"goals: >= 500,000 records/s: {'met' if rate >= 500_000 else 'NOT met'}; "
          f">= 20x: {'met' if rate / ref_rate >= 20 else 'NOT met'}")
    if not same:
        print("only SQL:", sorted(rejected - ref_rejected)[:10], "only jsonschema:", sorted(ref_rejected - rejected)[:10])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
