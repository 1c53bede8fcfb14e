"""A lake without publish manifests is deduplicated by id only when an id repeats (engine/lake.py): when none
does, the view reads the files as they are, and its rows are the rows the deduplicating view gives."""
from __future__ import annotations

import duckdb
from sqlglot import exp

from engine import lake


def _lake(tmp_path, ids_per_file: list[list[str]]) -> None:
    con = duckdb.connect()
    for i, ids in enumerate(ids_per_file):
        out = tmp_path / "lake" / "traces" / f"ingest_batch=b{i}"
        out.mkdir(parents=True)
        con.execute(f"COPY (SELECT unnest($ids) AS trace_id, 'text ' || unnest($ids) || ' of file {i}' AS input) "
                    f"TO '{out / 'data_0.parquet'}' (FORMAT PARQUET)", {"ids": ids})


def _read(tmp_path) -> tuple[dict, list, bool]:
    con = duckdb.connect()
    con.execute("CREATE TABLE traces (trace_id VARCHAR NOT NULL, input VARCHAR, batch_id VARCHAR)")
    cfg = {"source": {"traces": {"path": "lake/traces"}}}
    with lake.reading(con, cfg, tmp_path) as used:
        rows = con.execute("SELECT trace_id, input, batch_id FROM traces ORDER BY trace_id").fetchall()
        view = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'traces'").fetchall()[0][0]
    return used["traces"], rows, "row_number" in view.lower()


def test_a_lake_without_repeated_ids_is_read_as_is(tmp_path):
    _lake(tmp_path, [["tr-1", "tr-2"], ["tr-3"]])
    used, rows, windowed = _read(tmp_path)
    assert not windowed and used["dedupe"].endswith("; no trace_id repeats: read as is")
    assert rows == [("tr-1", "text tr-1 of file 0", "b0"), ("tr-2", "text tr-2 of file 0", "b0"),
                    ("tr-3", "text tr-3 of file 1", "b1")]


def test_a_repeated_id_keeps_the_per_id_window(tmp_path):
    _lake(tmp_path, [["tr-1", "tr-2"], ["tr-2", "tr-3"]])
    used, rows, windowed = _read(tmp_path)
    assert windowed and used["dedupe"] == "one record per trace_id across 2 batch(es), earliest published"
    assert [r[0] for r in rows] == ["tr-1", "tr-2", "tr-3"] and rows[1][2] == "b0"  # the first batch's record


def test_the_repeats_statement_counts_ids_seen_twice(tmp_path):
    _lake(tmp_path, [["tr-1", "tr-2", "tr-2"], ["tr-2", "tr-3", "tr-3"]])
    spec = lake.SourceSpec("traces", "parquet", "lake/traces", "hive", True)
    files = lake.files_of(spec, tmp_path)
    statement = lake.repeats_statement(spec, files)
    assert statement.tree.find(exp.Having) is not None
    assert duckdb.connect().execute(statement.text).fetchall() == [(2,)]
