"""Ingest benchmark (a script, not a test). On one file of N simulated traces as JSONL with a share of bad
records, in the same run:

  (a) DuckDB's own reader: `read_json_auto` of the file into a table (no validation; ignore_errors);
  (b) `flywheel ingest`'s engine: strict JSON, the schema checks compiled to SQL, typing, privacy, key and
      duplicate settling, quarantine with every reason, one transaction;
  (c) the per-record path: strict `json.loads` + the Draft 2020-12 `jsonschema` validator, line by line.

(b) and (c) must reject exactly the same line numbers. Goals (issue 17): (b) >= 60 % of (a)'s records/s and
>= 30x (c). Each path runs in its own process, so that its peak RSS is its own.

Memory (issue 12): `--memory 200000,2000000` ingests files of those sizes, each in a fresh process, and prints
the peak RSS of each; goal: the largest within 1.25x the smallest.

    .venv/bin/python benchmarks/bench_ingest.py --n 300000 --memory 200000,2000000
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.ingest.load import Batch, Options  # noqa: E402
from engine.ingest.readers import SourceFile  # noqa: E402
from engine.ingest.records import record_validator  # noqa: E402
from engine.ingest.strict import problem as strict_problem  # noqa: E402
from engine.paths import bundled_conf_dir  # noqa: E402
from engine.simulate import Simulator  # noqa: E402
from engine.store import Store  # noqa: E402

BAD_KINDS = ["broken_json", "wrong_type", "missing_required", "out_of_range", "bad_timestamp", "not_object",
             "bad_integer", "long_id", "nan", "trailing_comma", "duplicate_key"]
GOAL_OF_READER = 0.60
GOAL_OVER_PER_RECORD = 30.0
GOAL_MEMORY_RATIO = 1.25


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


# ------------------------------------------------------------------------------ the three paths (child processes)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def engine_path(path: Path, store_path: Path, unknown_fields: str) -> dict:
    window = [time.time()]
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
        window.append(time.time())
        rejected = sorted(line for (line,) in store.con.execute("SELECT source_line FROM quarantine").fetchall())
        stored = store.con.execute("SELECT count(*) FROM traces").fetchall()[0][0]
    return {"seconds": seconds, "cpu_seconds": cpu, "window": window, "rejected": rejected, "read": counts.read,
            "accepted": counts.accepted, "quarantined": counts.quarantined, "stored": stored}


def reader_path(path: Path, db_path: Path) -> dict:
    """DuckDB's reader alone: the file into a table of inferred types (ignore_errors: nothing checked)."""
    import duckdb

    window = [time.time()]
    started = time.perf_counter()
    cpu = time.process_time()
    con = duckdb.connect(str(db_path))
    con.execute("BEGIN")
    con.execute("CREATE TABLE traces_read AS SELECT * FROM read_json_auto($path, format = 'newline_delimited', "
                "ignore_errors = true)", {"path": str(path)}).fetchall()
    con.execute("COMMIT")
    seconds = time.perf_counter() - started
    window.append(time.time())
    rows = con.execute("SELECT count(*) FROM traces_read").fetchall()[0][0]
    columns = [f"{name} {type_}" for name, type_, *_ in con.execute("DESCRIBE traces_read").fetchall()]
    con.close()
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "window": window, "rows": rows,
            "columns": columns}


def per_record_path(path: Path) -> dict:
    validator = record_validator("traces")
    rejected = []
    started = time.perf_counter()
    cpu = time.process_time()
    with open(path, encoding="utf-8", newline="\n") as f:
        for line_no, line in enumerate(f, start=1):
            if strict_problem(line) is not None:  # the same strict JSON rule (RFC 8259, no duplicate keys)
                rejected.append(line_no)
                continue
            record = json.loads(line)
            if not isinstance(record, dict) or next(validator.iter_errors(record), None) is not None:
                rejected.append(line_no)
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
            "rejected": rejected}


def _child(args: argparse.Namespace) -> int:
    path, work = Path(args.file), Path(args.work)
    if args.child == "engine":
        store = work / f"engine_{path.stem}.duckdb"
        for p in (store, store.with_suffix(".duckdb.wal")):
            p.unlink(missing_ok=True)
        out = engine_path(path, store, args.unknown_fields)
    elif args.child == "reader":
        db = work / "reader.duckdb"
        for p in (db, db.with_suffix(".duckdb.wal")):
            p.unlink(missing_ok=True)
        out = reader_path(path, db)
    else:
        out = per_record_path(path)
    out["peak_rss_mib"] = _peak_rss_mib()
    print(json.dumps(out))
    return 0


def _run_child(which: str, path: Path, work: Path, unknown_fields: str) -> dict:
    cmd = [sys.executable, __file__, "--child", which, "--file", str(path), "--work", str(work),
           "--unknown-fields", unknown_fields]
    # Its output goes to files: a pipe nobody reads while sampling would block the child once full.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        with subprocess.Popen(cmd, stdout=out, stderr=err, text=True, cwd=str(ROOT)) as child:
            samples = _runnable_threads(child)
        out.seek(0)
        err.seek(0)
        if child.returncode:
            raise subprocess.CalledProcessError(child.returncode, cmd, out.read(), err.read())
        result = json.loads(out.read().strip().splitlines()[-1])
    if "window" in result:
        result["parallelism"] = _parallelism(samples, *result["window"])
    return result


def _runnable_threads(child: subprocess.Popen) -> list[tuple[float, int]]:
    """How many of the child's threads are runnable (running or waiting for a core), every 2 ms until it ends.

    Sampled from this process, so that the child's threads are not slowed by it. On a machine shared with other
    work, wall time says little about how a run would use 2 idle cores; the number of its threads that could run
    at once says it whatever the load."""
    samples = []
    tasks = Path(f"/proc/{child.pid}/task")
    while child.poll() is None:
        runnable = 0
        try:
            for tid in os.listdir(tasks):
                try:
                    runnable += (tasks / tid / "stat").read_text().rsplit(")", 1)[1].split()[0] == "R"
                except OSError:
                    pass
        except OSError:
            break
        samples.append((time.time(), runnable))
        time.sleep(0.002)
    return samples


def _parallelism(samples: list[tuple[float, int]], start: float, end: float) -> float | None:
    """The mean number of runnable threads (at most 2: the cores) while the run had one: its CPU seconds over that
    estimate its wall time on 2 idle cores (optimistically: threads that could run at once may still slow each
    other down)."""
    busy = [min(n, 2) for t, n in samples if start <= t <= end and n]
    return sum(busy) / len(busy) if busy else None


def _idle_wall(result: dict) -> str:
    p = result.get("parallelism")
    if not p:
        return "parallelism not sampled"
    return f"{p:.2f} threads runnable on average: ~{result['cpu_seconds'] / p:,.2f} s on 2 idle cores, at best"


# ------------------------------------------------------------------------------------------------ the report


def _load() -> str:
    """Other processes share the cores: wall-clock rates are only comparable at similar load."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _make_file(tmp: Path, pool: list[dict], n: int, bad_rate: float) -> tuple[Path, set[int]]:
    path = tmp / f"traces_{n}.jsonl"
    t = time.perf_counter()
    bad = write_file(path, pool, n, bad_rate)
    size = path.stat().st_size
    print(f"file: {n:,} traces ({len(bad):,} bad), {size / 1e6:,.0f} MB, {size / n:,.0f} bytes/record "
          f"(generated in {time.perf_counter() - t:,.1f} s)")
    return path, bad


def speed(tmp: Path, pool: list[dict], n: int, bad_rate: float, unknown_fields: str) -> bool:
    path, bad = _make_file(tmp, pool, n, bad_rate)
    print(f"({_load()} before the reader)")
    reader = _run_child("reader", path, tmp, unknown_fields)
    reader_rate = n / reader["seconds"]
    shown = ", ".join(reader["columns"][:4]) + (", ..." if len(reader["columns"]) > 4 else "")
    print(f"(a) DuckDB read_json_auto into a table (ignore_errors: no checks; {reader['rows']:,} rows; "
          f"{len(reader['columns'])} column(s) inferred: {shown}): "
          f"{reader['seconds']:,.2f} s = {reader_rate:,.0f} records/s ({reader['cpu_seconds']:,.2f} s CPU; "
          f"{_idle_wall(reader)}); peak RSS {reader['peak_rss_mib']:,.0f} MiB")
    engine = _run_child("engine", path, tmp, unknown_fields)
    rate = n / engine["seconds"]
    print(f"(b) flywheel ingest (strict JSON, SQL checks, typing, settle, quarantine, one transaction): "
          f"{engine['seconds']:,.2f} s = {rate:,.0f} records/s; accepted {engine['accepted']:,}, quarantined "
          f"{engine['quarantined']:,}, stored {engine['stored']:,}; peak RSS {engine['peak_rss_mib']:,.0f} MiB")
    print(f"    ({engine['cpu_seconds']:,.2f} s CPU = {n / engine['cpu_seconds']:,.0f} records per CPU second; "
          f"{_idle_wall(engine)}; {_load()})")
    ref = _run_child("per_record", path, tmp, unknown_fields)
    ref_rate = n / ref["seconds"]
    print(f"(c) per-record jsonschema (strict json.loads + Draft 2020-12 validator, no storing): "
          f"{ref['seconds']:,.2f} s = {ref_rate:,.0f} records/s ({ref['cpu_seconds']:,.2f} s CPU; {_load()})")
    rejected, ref_rejected = set(engine["rejected"]), set(ref["rejected"])
    same = rejected == ref_rejected and len(engine["rejected"]) == len(rejected)
    nothing_lost = engine["read"] == engine["accepted"] + engine["quarantined"] == n
    of_reader, over_ref = rate / reader_rate, rate / ref_rate
    print(f"(b)/(a) = {of_reader:.0%} of the reader's records/s (goal >= {GOAL_OF_READER:.0%}: "
          f"{'met' if of_reader >= GOAL_OF_READER else 'NOT met'}); (b)/(c) = {over_ref:,.1f}x (goal >= "
          f"{GOAL_OVER_PER_RECORD:.0f}x: {'met' if over_ref >= GOAL_OVER_PER_RECORD else 'NOT met'})")
    # Other processes share the cores: CPU seconds (every thread counted) vary less with their load than wall time
    cpu_a, cpu_b, cpu_c = reader["cpu_seconds"], engine["cpu_seconds"], ref["cpu_seconds"]
    print(f"CPU seconds: (a) {cpu_a:,.2f}, (b) {cpu_b:,.2f}, (c) {cpu_c:,.2f}: (b) costs {cpu_b / cpu_a:,.1f}x the "
          f"reader's CPU (= {cpu_a / cpu_b:.0%}) and 1/{cpu_c / cpu_b:,.1f} of the per-record path's")
    print(f"identical rejected line numbers: {same} ({len(rejected):,} vs {len(ref_rejected):,}; planted "
          f"{len(bad):,}); read = accepted + quarantined = {n:,}: {nothing_lost}")
    if not same:
        print("only SQL:", sorted(rejected - ref_rejected)[:10], "only jsonschema:", sorted(ref_rejected - rejected)[:10])
    return same and nothing_lost


def memory(tmp: Path, pool: list[dict], sizes: list[int], bad_rate: float, unknown_fields: str) -> bool:
    peaks = {}
    for n in sizes:
        path, _ = _make_file(tmp, pool, n, bad_rate)
        engine = _run_child("engine", path, tmp, unknown_fields)
        peaks[n] = engine["peak_rss_mib"]
        print(f"peak RSS ingesting {n:,} traces: {peaks[n]:,.0f} MiB ({engine['seconds']:,.1f} s = "
              f"{n / engine['seconds']:,.0f} records/s; {_load()})")
        path.unlink()
    small, large = min(sizes), max(sizes)
    ratio = peaks[large] / peaks[small]
    print(f"peak RSS {large:,} / {small:,} traces = {ratio:.2f}x (goal <= {GOAL_MEMORY_RATIO}x: "
          f"{'met' if ratio <= GOAL_MEMORY_RATIO else 'NOT met'})")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300_000, help="traces in the speed file (0: skip the speed part)")
    parser.add_argument("--memory", default="", help="comma-separated sizes for the memory part, e.g. 200000,2000000")
    parser.add_argument("--bad-rate", type=float, default=0.01)
    parser.add_argument("--unknown-fields", default="keep", choices=["keep", "ignore", "quarantine"])
    parser.add_argument("--dir", default=None, help="where to write the files and stores (default: a temp dir)")
    parser.add_argument("--child", choices=["engine", "reader", "per_record"], help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)
    tmp = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    tmp.mkdir(parents=True, exist_ok=True)
    pool = simulated_pool(tmp)
    ok = True
    if args.n:
        ok = speed(tmp, pool, args.n, args.bad_rate, args.unknown_fields)
    if args.memory:
        memory(tmp, pool, [int(s) for s in args.memory.split(",")], args.bad_rate, args.unknown_fields)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
