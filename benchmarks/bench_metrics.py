"""Benchmark: SQuAD v1.1 EM + F1 as DuckDB SQL (engine.metrics.squad_sql) vs the official Python functions.

    .venv/bin/python benchmarks/bench_metrics.py --n 1000000

Generates N seeded (prediction, reference) pairs of short answers (references of 1-6 words, predictions of
1-25 words overlapping the reference), computes EM and F1 for every pair both ways in the same run, and
prints both wall-clock times, the speed-up and the number of rows where the two disagree (must be 0).
"""
from __future__ import annotations

import argparse
import random
import re
import string
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlglot import exp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.metrics.squad_sql import render, squad_exact_match, squad_f1  # noqa: E402


# ---- official SQuAD v1.1 evaluation functions (verbatim) ----------------------------------------------------
def normalize_answer(s):
    def remove_articles(text): return re.sub(r'\b(a|an|the)\b', ' ', text)
    def white_space_fix(text): return ' '.join(text.split())
    def remove_punc(text):
        exclude = set(string.punctuation); return ''.join(ch for ch in text if ch not in exclude)
    def lower(text): return text.lower()
    return white_space_fix(remove_articles(remove_punc(lower(s))))
def f1_score(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split(); ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens); num_same = sum(common.values())
    if num_same == 0: return 0
    precision = 1.0 * num_same / len(prediction_tokens); recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)
def exact_match_score(prediction, ground_truth): return normalize_answer(prediction) == normalize_answer(ground_truth)
# ------------------------------------------------------------------------------------------------------------

_WORDS = (
    "Paris France Denver Broncos Carolina Panthers Super Bowl 50 Santa Clara Levi's Stadium Beyoncé Knowles "
    "Houston Texas Destiny's Child 1990s Normandy Norman Rollo Vikings William Conqueror 1066 Frédéric Chopin "
    "Warsaw piano composer Romantic era Kraków Zürich São Paulo Москва Αθήνα 東京 economic growth steam engine "
    "James Watt 1769 oxygen nitrogen carbon dioxide photosynthesis chloroplast mitochondria DNA RNA protein "
    "United States Congress Senate House Representatives president election 1960 Kennedy Nixon Apollo 11 moon "
    "Neil Armstrong Buzz Aldrin Amazon rainforest river Brazil Peru species biodiversity million square km "
    "university Harvard Oxford Cambridge Stanford 1636 Massachusetts Boston Yale 19th century 20th Victoria "
    "queen king empire British Roman Ottoman Byzantine Constantinople Istanbul 1453 war peace treaty Versailles"
).split()
_FILLER = (
    "it is was were in on of for by with from that this which who as at to and or but not also about around "
    "approximately known called named during after before between".split()
)
_ARTICLES = ["the", "The", "a", "A", "an", "An"]
_PUNCT = [",", ".", "!", "?", ";", ":", "'s", "\"", "(", ")", "-"]


def _answer(rng: random.Random) -> list[str]:
    n = rng.randint(1, 6)
    words = [rng.choice(_WORDS) for _ in range(n)]
    if rng.random() < 0.3:
        words.insert(0, rng.choice(_ARTICLES))
    return words


def _decorate(rng: random.Random, words: list[str]) -> str:
    out = []
    for w in words:
        r = rng.random()
        if r < 0.08:
            w = w + rng.choice(_PUNCT)
        elif r < 0.12:
            w = w.upper()
        elif r < 0.16:
            w = w.lower()
        out.append(w)
    return " ".join(out)


def generate(n: int, seed: int = 1234) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    predictions, references = [], []
    for _ in range(n):
        ref = _answer(rng)
        mode = rng.random()
        if mode < 0.25:  # exact (modulo case/punctuation/articles)
            pred = list(ref)
        elif mode < 0.75:  # answer embedded in a longer span
            before = [rng.choice(_FILLER + _WORDS + _ARTICLES) for _ in range(rng.randint(0, 10))]
            after = [rng.choice(_FILLER + _WORDS + _ARTICLES) for _ in range(rng.randint(0, 10))]
            keep = ref[rng.randint(0, len(ref) - 1):] if rng.random() < 0.3 else ref
            pred = (before + keep + after)[:25]
        elif mode < 0.95:  # partial overlap
            pred = [w for w in ref if rng.random() < 0.6] + [rng.choice(_WORDS) for _ in range(rng.randint(0, 4))]
            rng.shuffle(pred)
        else:  # unrelated
            pred = [rng.choice(_WORDS + _FILLER) for _ in range(rng.randint(1, 25))]
        if not pred:
            pred = [rng.choice(_WORDS)]
        predictions.append(_decorate(rng, pred[:25]))
        references.append(_decorate(rng, ref))
    return predictions, references


def run_sql(con: duckdb.DuckDBPyConnection, table: pa.Table) -> pa.Table:
    p, r = exp.column("prediction"), exp.column("reference")
    select = exp.select(
        exp.alias_(squad_exact_match(p, r), "em"), exp.alias_(squad_f1(p, r), "f1")
    ).from_("pairs")
    con.register("pairs", table)
    try:
        return con.sql(render(select)).to_arrow_table()
    finally:
        con.unregister("pairs")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="number of (prediction, reference) pairs")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--batch-rows", type=int, default=65_536, help="rows per Arrow record batch (batched run)")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: DuckDB's choice)")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    predictions, references = generate(args.n, args.seed)
    table = pa.table({"prediction": pa.array(predictions, pa.string()), "reference": pa.array(references, pa.string())})
    print(f"generated {args.n:,} pairs in {time.perf_counter() - t:.2f} s")

    con = duckdb.connect()
    if args.threads:
        con.execute(f"SET threads = {int(args.threads)}")
    run_sql(con, table.slice(0, 1000))  # warm-up: builds the Unicode character classes, compiles regexes

    # Two layouts of the same rows: one big Arrow chunk (what pa.table(lists) builds) and 64K-row record batches
    # (as read from Parquet/IPC). DuckDB splits Arrow scans across threads by batch/row range; on small inputs a
    # single chunk can end up on one thread (observed at 200K rows), so both are timed.
    batched = pa.Table.from_batches(table.to_batches(max_chunksize=args.batch_rows))
    layouts = {"one Arrow chunk": table, f"{len(batched.to_batches())} Arrow batches": batched}
    timings, results = {}, {}
    for label, data in layouts.items():
        t = time.perf_counter()
        results[label] = run_sql(con, data)
        timings[label] = time.perf_counter() - t

    t = time.perf_counter()
    py_em = [exact_match_score(p, r) for p, r in zip(predictions, references)]
    py_f1 = [f1_score(p, r) for p, r in zip(predictions, references)]
    py_seconds = time.perf_counter() - t

    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    print(f"Python (official functions, 1 core): {py_seconds:.3f} s")
    differing = 0
    for label, seconds in timings.items():
        sql_em = results[label].column("em").to_pylist()
        sql_f1 = results[label].column("f1").to_pylist()
        bad = sum(
            1
            for a, b, c, d in zip(py_em, sql_em, py_f1, sql_f1)
            if float(a) != b or abs(c - d) >= 1e-12
        )
        differing += bad
        print(f"SQL (DuckDB, {threads} threads, {label}): {seconds:.3f} s  -> {py_seconds / seconds:.1f}x faster; "
              f"differing rows: {bad}")
    print(f"mean EM {sum(py_em) / len(py_em):.4f}  mean F1 {sum(py_f1) / len(py_f1):.4f}")
    return 0 if differing == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
