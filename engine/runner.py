"""Calling a model over cases, through the output cache.

Outputs are keyed by (model fingerprint, case input hash, repeat): a case already answered successfully is
never sent again; an errored one is retried on the next run. Each batch is committed as it completes, so an
interrupted run keeps the calls it paid for.
"""
from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from engine.datasets import Case
from engine.models.base import ModelAdapter, ModelRequest
from engine.progress import progress_bar
from engine.provenance import canonical_json, utc_now
from engine.store import Store


@dataclass(frozen=True)
class CallStats:
    needed: int  # (input, repeat) pairs the run needs
    cached: int
    called: int
    errors: int  # errored responses among the calls made now


def _missing(store: Store, fingerprint: str, cases: list[Case], repeats: int) -> list[tuple[Case, int]]:
    unique = {c.input_hash: c for c in cases}
    wanted = pl.DataFrame({"input_hash": list(unique)}, schema={"input_hash": pl.String})
    store.con.register("wanted_inputs", wanted)
    done = store.con.execute(
        "SELECT o.input_hash, o.repeat FROM outputs o JOIN wanted_inputs w USING (input_hash) "
        "WHERE o.model_fingerprint = ? AND o.error IS NULL AND o.repeat < ?", [fingerprint, repeats]).fetchall()
    store.con.unregister("wanted_inputs")
    have = set(done)
    return [(case, r) for r in range(repeats) for h, case in unique.items() if (h, r) not in have]


def call_model(store: Store, adapter: ModelAdapter, fingerprint: str, cases: list[Case], run_id: str,
               repeats: int = 1, batch_size: int = 32, show_progress: bool = True) -> CallStats:
    todo = _missing(store, fingerprint, cases, repeats)
    needed = len({c.input_hash for c in cases}) * repeats
    errors = 0
    with progress_bar(f"{adapter.name}: calling model", total=len(todo), enabled=show_progress) as advance:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            requests = [ModelRequest(case_id=c.case_id, input=c.input, input_text=c.input_text,
                                     context=c.context, metadata=c.metadata) for c, _ in batch]
            responses = adapter.predict_batch(requests)
            errors += sum(1 for r in responses if r.error)
            now = utc_now()
            rows = [(fingerprint, c.input_hash, rep, r.output_text, r.error, r.latency_ms, r.prompt_tokens,
                     r.completion_tokens, r.cost, canonical_json(r.raw) if r.raw is not None else None, run_id, now)
                    for (c, rep), r in zip(batch, responses)]
            with store.transaction() as con:
                con.executemany("INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            advance(len(batch))
    return CallStats(needed=needed, cached=needed - len(todo), called=len(todo), errors=errors)
