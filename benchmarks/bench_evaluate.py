"""Benchmark: `flywheel evaluate` end to end on replayed predictions, against the floor measured in the same run.

    .venv/bin/python benchmarks/bench_evaluate.py [--classification 1000000] [--squad 100000] [--keep DIR]

Writes into a temporary project (or --keep DIR): a classification golden set (JSONL, one label per case), a
SQuAD-style QA golden set (JSONL: question, context passage, 1-3 acceptable answers) and one JSONL file of
predictions for both, then measures:

* floor: DuckDB alone (one in-memory connection, default threads) reading the two golden files and the
  predictions with `read_json`, joining them by id and running the same compiled scoring SQL as the engine
  (`engine.compiler.scored_select` of the same metrics: classification, SQuAD exact match and token F1) into a
  table, plus the per-metric means.
* evaluate: `flywheel evaluate` as a subprocess on a fresh store (wall time, peak RSS of that process), then
  the same command again (every output cached; dataset versions already stored).
* start-up: time from spawning `flywheel --help` to its first line of output, and the whole wall time of a
  cached 60-case `flywheel evaluate` (its first output line is its result table, printed at the end).

Prints each figure and the ratios to the floor, and checks that the engine's per-metric means equal the floor's.
Goals (issue 13): evaluate within 3x the floor, the cached run within 2x, `--help` under 1 s and the cached
60-case evaluate under 2 s on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LABELS = ["billing", "account", "bug_report", "feature_request", "cancellation", "shipping", "other"]
WORDS = ("Paris France Denver Broncos Carolina Panthers Super Bowl Santa Clara Stadium Beyoncé Houston Texas "
         "Normandy Vikings William Conqueror Frédéric Chopin Warsaw piano composer Kraków Zürich São Paulo "
         "economic growth steam engine James Watt oxygen nitrogen carbon photosynthesis chloroplast DNA RNA "
         "protein Congress Senate president election Kennedy Apollo moon Armstrong Amazon river Brazil species "
         "university Harvard Oxford Cambridge Massachusetts Boston century Victoria queen empire Roman").split()
FILLER = "the of in on for with from that which was were is by as at to and or".split()

METRICS = {
    "label": {"kind": "classification", "datasets": ["tickets"]},
    "em": {"kind": "exact_match", "normalizer": "squad", "datasets": ["squad"]},
    "f1": {"kind": "token_f1", "datasets": ["squad"]},
}


def _phrase(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def generate(root: Path, n_cls: int, n_qa: int, seed: int = 20261202) -> None:
    """The project: two golden files, one predictions file, conf/ selecting them and the three metrics."""
    rng = random.Random(seed)
    (root / "data").mkdir(parents=True, exist_ok=True)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    with open(root / "data" / "tickets.jsonl", "w", encoding="utf-8") as golden, \
            open(root / "data" / "predictions.jsonl", "w", encoding="utf-8") as preds:
        for i in range(n_cls):
            label = rng.choice(LABELS)
            text = f"ticket {i}: {_phrase(rng, 4, 14)} {rng.choice(FILLER)} {label.replace('_', ' ')}"
            golden.write(dumps({"id": f"t{i}", "input": text, "expected": label,
                                "tags": [rng.choice(["web", "mobile", "email"])]}) + "\n")
            predicted = label if rng.random() < 0.85 else rng.choice(LABELS)
            preds.write(dumps({"id": f"t{i}", "output": predicted.upper() if rng.random() < 0.1 else predicted,
                               "latency_ms": round(rng.uniform(5, 50), 2)}) + "\n")
        with open(root / "data" / "squad.jsonl", "w", encoding="utf-8") as qa:
            for i in range(n_qa):
                answer = _phrase(rng, 1, 4)
                answers = [answer] + [f"the {answer}"] * (rng.random() < 0.3) + [answer.lower()] * (rng.random() < 0.2)
                context = f"{_phrase(rng, 8, 30)} {answer} {_phrase(rng, 8, 30)}."
                qa.write(dumps({"id": f"q{i}", "input": f"What is {_phrase(rng, 2, 6)}?", "expected": answers,
                                "context": [context], "tags": [rng.choice(["history", "science", "sport"])]}) + "\n")
                r = rng.random()
                output = answer if r < 0.5 else (f"It is {answer}." if r < 0.75 else _phrase(rng, 1, 8))
                preds.write(dumps({"id": f"q{i}", "output": output}) + "\n")
    conf = root / "conf"
    for group in ("dataset", "model", "metrics"):
        (conf / group).mkdir(parents=True, exist_ok=True)
    (conf / "config.yaml").write_text("defaults:\n  - base\n  - override dataset: [tickets, squad]\n"
                                      "  - override model: replayed\n  - override metrics: [bench]\n  - _self_\n")
    (conf / "dataset" / "tickets.yaml").write_text("tickets:\n  path: data/tickets.jsonl\n")
    (conf / "dataset" / "squad.yaml").write_text("squad:\n  path: data/squad.jsonl\n")
    (conf / "model" / "replayed.yaml").write_text("name: replayed\nadapter: replay\nparams:\n"
                                                  "  path: data/predictions.jsonl\n")
    (conf / "metrics" / "bench.yaml").write_text(json.dumps(METRICS, indent=2))


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def floor(root: Path) -> tuple[float, dict[str, float]]:
    """DuckDB alone: read each file once, join by id, run the compiled scoring SQL, materialise the scores."""
    import duckdb
    from sqlglot import exp

    from engine.compiler import scored_select
    from engine.sql import literal, parse

    def source(dataset: str) -> exp.Select:
        tree = parse("""
            SELECT __dataset__ AS dataset, 'v' AS dataset_version, g.id AS case_id, g.input AS input_text,
                   CASE WHEN json_type(g.expected) = 'ARRAY' THEN CAST(g.expected AS VARCHAR[])
                        ELSE [g.expected ->> '$'] END AS expected_answers,
                   g.expected, coalesce(g.context, []::VARCHAR[]) AS context, coalesce(g.tags, []::VARCHAR[]) AS tags,
                   '{}'::JSON AS metadata, 0 AS repeat, p.output AS output_text, NULL::VARCHAR AS error,
                   p.latency_ms, NULL::INTEGER AS prompt_tokens, NULL::INTEGER AS completion_tokens,
                   NULL::DOUBLE AS cost
            FROM golden AS g LEFT JOIN predictions AS p ON p.id = g.id""")
        return tree.transform(lambda n: literal(dataset) if isinstance(n, exp.Column) and n.name == "__dataset__"
                              else exp.table_(f"golden_{dataset}").as_("g") if isinstance(n, exp.Table)
                              and n.name == "golden" else n)

    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE predictions AS SELECT * FROM read_json(" + _quoted(root / "data" / "predictions.jsonl")
                + ", format='newline_delimited', columns={'id': 'VARCHAR', 'output': 'VARCHAR', "
                "'latency_ms': 'DOUBLE'})")
    for dataset in ("tickets", "squad"):
        con.execute(f"CREATE TEMP TABLE golden_{dataset} AS SELECT * FROM read_json("
                    + _quoted(root / "data" / f"{dataset}.jsonl") + ", format='newline_delimited', columns={"
                    "'id': 'VARCHAR', 'input': 'VARCHAR', 'expected': 'JSON', 'context': 'VARCHAR[]', "
                    "'tags': 'VARCHAR[]'})")
    parts = [f"SELECT '{name}' AS metric, value, passed FROM ("
             + scored_select(name, spec, source(spec["datasets"][0])).sql(dialect="duckdb") + ")"
             for name, spec in METRICS.items()]
    con.execute("CREATE TABLE scores AS " + " UNION ALL ".join(parts))
    means = dict(con.execute("SELECT metric, avg(value) FROM scores GROUP BY metric").fetchall())
    elapsed = time.perf_counter() - started
    con.close()
    return elapsed, means


def run_cli(root: Path, *args: str) -> tuple[float, float, int, str]:
    """(wall seconds, seconds to the first output line, peak RSS in MiB, stdout) of one flywheel command."""
    env = {**os.environ, "COLUMNS": "160"}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    first = proc.stdout.readline()
    first_at = time.perf_counter() - started
    rest = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"flywheel {' '.join(args)} exited {proc.returncode}:\n{first}{rest}\n{err}")
    return wall, first_at, usage.ru_maxrss // 1024, first + rest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classification", type=int, default=1_000_000)
    parser.add_argument("--squad", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="build the project here and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="flywheel-bench-evaluate-"))
    try:
        print(f"load average at start: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
        started = time.perf_counter()
        shutil.rmtree(root / ".flywheel", ignore_errors=True)
        generate(root, args.classification, args.squad)
        sizes = {p.name: p.stat().st_size / 2**20 for p in (root / "data").iterdir()}
        print(f"generated {args.classification:,} classification + {args.squad:,} SQuAD cases in "
              f"{time.perf_counter() - started:.1f} s: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in sizes.items()))

        floor_s, floor_means = floor(root)
        print(f"floor (DuckDB alone: read_json of the 3 files + the same scoring SQL): {floor_s:.2f} s")
        first_s, _, first_rss, _ = run_cli(root, "evaluate", "run.progress=false", "out=first.json")
        result = json.loads((root / "first.json").read_text())
        means = {r["metric"]: r["mean"] for r in result["summary"] if r["tag"] is None}
        agree = all(abs(means[m] - floor_means[m]) < 1e-9 for m in METRICS)
        print(f"evaluate, first run:  {first_s:7.2f} s = {first_s / floor_s:5.2f}x the floor (goal <= 3x), "
              f"peak RSS {first_rss} MiB, calls {result['calls']}")
        cached_s, _, cached_rss, _ = run_cli(root, "evaluate", "run.progress=false", "out=cached.json")
        cached = json.loads((root / "cached.json").read_text())
        print(f"evaluate, cached run: {cached_s:7.2f} s = {cached_s / floor_s:5.2f}x the floor (goal <= 2x), "
              f"peak RSS {cached_rss} MiB, calls {cached['calls']}")
        print("per-metric means equal the floor's: " + ("yes" if agree else f"NO: {means} vs {floor_means}"))

        help_wall, help_first, _, _ = run_cli(root, "--help")
        print(f"flywheel --help: first output after {help_first:.2f} s (goal < 1 s), exit after {help_wall:.2f} s")
        small = root / "small"
        shutil.rmtree(small, ignore_errors=True)
        generate(small, 40, 20, seed=7)
        run_cli(small, "evaluate", "run.progress=false")
        small_wall, small_first, _, _ = run_cli(small, "evaluate", "run.progress=false")
        print(f"cached 60-case evaluate: first output after {small_first:.2f} s, done after {small_wall:.2f} s "
              f"(goal < 2 s)")
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
