"""Ingest in chunks with bounded memory, one transaction: line numbers and decisions across chunk boundaries,
no chunk kept alive until the commit, compiled SQL kept in the store by the hash of what it is compiled from."""
from __future__ import annotations

import gc
import json
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

from ingest_helpers import flywheel, query, trace, write_jsonl

from engine.ingest import compiled, readers
from engine.ingest.load import Batch, Options
from engine.ingest.statements import KindSQL
from engine.store import Store

CHUNK = 4096  # the smallest ingest.chunk_bytes: a few hundred records make many chunks


def _file_with_bad_lines(path: Path, n: int, bad: dict[int, str], blank: set[int]) -> dict[int, str]:
    """n lines; `bad` line -> broken text, `blank` lines empty. Returns line -> trace id of the good lines."""
    lines, ids = [], {}
    for line in range(1, n + 1):
        if line in blank:
            lines.append("")
        elif line in bad:
            lines.append(bad[line])
        else:
            ids[line] = f"c{line}"
            lines.append(trace(f"c{line}", input=f"question {line} " + "x" * (line % 50)))
    write_jsonl(path, lines)
    return ids


def test_line_numbers_and_decisions_hold_across_chunk_boundaries(project):
    bad = {40: json.dumps(trace("b40", latency_ms=-5)),           # a rule broken, in the 2nd chunk or later
           77: '{"trace_id": "b77", "input": ',                   # invalid JSON
           150: json.dumps(trace("b150"))[:-1] + ', "model": "x"}',  # a duplicate key
           199: json.dumps(trace("b199", cost=float("nan")))}     # NaN: not JSON
    ids = _file_with_bad_lines(project / "t.jsonl", 200, bad, blank={13, 14, 120})
    size = (project / "t.jsonl").stat().st_size
    assert size > 8 * CHUNK  # many chunks, a bad record well past the first
    r = flywheel("ingest", "path=t.jsonl", "kind=traces", f"ingest.chunk_bytes={CHUNK}",
                 "ingest.max_quarantine_share=1", "out=r.json", project=project)
    assert r.code == 0
    totals = r.json["totals"]
    assert (totals["read"], totals["accepted"], totals["quarantined"]) == (197, 193, 4)
    assert [line for (line,) in query(project, "SELECT source_line FROM quarantine ORDER BY 1")] == sorted(bad)
    stored = dict(query(project, "SELECT source_line, trace_id FROM traces"))
    assert stored == ids  # every good record with the line it is on in the file


def test_a_chunk_is_not_kept_alive_until_the_transaction_ends(tmp_path):
    # Registered as a view, a chunk stayed referenced by the dropped catalog entry until the commit: peak memory
    # grew with the file (2 GiB for 2M traces). Here the chunks' buffers (Python bytearrays, seen by
    # tracemalloc) must be freed while the transaction is still open.
    path = tmp_path / "t.jsonl"
    write_jsonl(path, [trace(f"m{i}", input="q" * 400) for i in range(6000)])
    size = path.stat().st_size
    options = Options(kind="traces", chunk_bytes=64 << 10)
    compiled.compile_ahead(("traces",), options)  # compiled SQL is kept for the process: not what is measured
    with Store.open(tmp_path / "s.duckdb") as store:
        with store.transaction() as con:
            gc.collect()
            tracemalloc.start()
            try:
                Batch(con, options, "b1", datetime.now(timezone.utc)).run(
                    [readers.SourceFile(path, path.name, "jsonl", size)])
                gc.collect()
                held, _ = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert con.execute("SELECT count(*) FROM traces").fetchall()[0][0] == 6000
    assert size > 2_500_000
    assert held < size / 4, f"{held:,} bytes still held after the batch, for a file of {size:,} bytes"


def test_compiled_sql_is_kept_in_the_store_by_schema_hash_and_read_back(project, monkeypatch):
    write_jsonl(project / "a.jsonl", [trace("k1"), trace("k2", latency_ms=-1)])
    write_jsonl(project / "b.jsonl", [trace("k3"), trace("k4", latency_ms=-1)])
    assert flywheel("ingest", "path=a.jsonl", "kind=traces", "ingest.max_quarantine_share=1", project=project).code == 0
    key = compiled.cache_key("traces", Options(kind="traces"))
    stored = {name for (name,) in query(project, "SELECT statement FROM ingest_sql_cache WHERE cache_key = ?", [key])}
    assert {"insert", "validate", "settle", "quarantine_rejected"} <= stored
    assert compiled.cache_key("traces", Options(kind="traces", unknown_fields="ignore")) != key
    assert compiled.cache_key("feedback", Options(kind="traces")) != key

    # A new process compiles nothing: everything it runs comes from the store.
    monkeypatch.setattr(compiled, "_STORED", {})
    monkeypatch.setattr(compiled, "_COMPILED", {})

    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled although the store holds the statements")

    for name in ("insert_accepted", "validate", "settle", "quarantine_rejected", "rejected_counts"):
        monkeypatch.setattr(KindSQL, name, no_compiling)
    r = flywheel("ingest", "path=b.jsonl", "kind=traces", "ingest.max_quarantine_share=1", "out=r.json",
                 project=project)
    assert r.code == 0
    assert (r.json["totals"]["inserted"], r.json["totals"]["quarantined"]) == (1, 1)
    assert query(project, "SELECT count(*) FROM traces")[0][0] == 2


def test_duckdb_works_within_the_memory_budget_during_the_batch_only(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [trace("r1")])
    during = []
    with Store.open(tmp_path / "s.duckdb") as store:
        before = store.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        with store.transaction() as con:
            def on_chunk(source, n_records, bytes_done):
                during.append(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])

            Batch(con, Options(kind="traces", memory_mb=100), "b1", datetime.now(timezone.utc), on_chunk).run(
                [readers.SourceFile(path, path.name, "jsonl", path.stat().st_size)])
        after = store.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert during and set(during) == {"95.3 MiB"} and before != "95.3 MiB"  # DuckDB shows 100 MB in MiB
    assert after == before


def test_an_ingest_beyond_its_memory_budget_stores_nothing_and_exits_3(project, capsys):
    # 16 MiB of traces in one chunk are checked within 64 MiB: the checks stream through DuckDB (the chunk's
    # parsed lists were once materialised, 150 MB for it, and this ran out).
    write_jsonl(project / "t.jsonl", [trace(f"o{i}", input="q" * 450) for i in range(30_000)])
    assert (project / "t.jsonl").stat().st_size > 16 << 20
    r = flywheel("ingest", "path=t.jsonl", "kind=traces", "ingest.memory_mb=64", "out=r.json", project=project)
    assert r.code == 0 and r.json["totals"]["inserted"] == 30_000
    # One record of 12 MiB cannot be checked within 64 MiB: DuckDB runs out, the command says which setting to
    # raise (exit 3: Flywheel could not do its job; the input is fine), and the batch stores nothing.
    write_jsonl(project / "big.jsonl", [trace("o-big", input="q" * (12 << 20))])
    r = flywheel("ingest", "path=big.jsonl", "kind=traces", "ingest.memory_mb=64", project=project)
    assert r.code == 3
    assert "ran out of its memory budget (ingest.memory_mb=64)" in capsys.readouterr().err
    assert query(project, "SELECT (SELECT count(*) FROM traces WHERE trace_id = 'o-big'), "
                          "(SELECT count(*) FROM ingest_batches WHERE source_file = 'big.jsonl')") == [(0, 0)]
