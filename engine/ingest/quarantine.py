"""Quarantined records out of the store, to be fixed and ingested again.

The export is a JSONL file holding each quarantined record's raw text, one per line, exactly as it was read
(CSV and Parquet rows as the JSON records they were converted to), so fixing a record means editing its line
and running `flywheel ingest path=THAT_FILE`. Beside it, `<name>.reasons.jsonl` says for each line where the
record came from and why it was rejected.

By default a record is exported once (its latest quarantine) and not at all once it is resolved: a record
with the same key was stored by a later batch (the fixed version was ingested).
"""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
from sqlglot import exp

from engine.ingest.records import KINDS
from engine.outputs import open_atomic, quarantine_reasons_path
from engine.sql import parse_expression, render


def export_sql(batch: str | None, kind: str | None, include_resolved: bool) -> tuple[str, dict]:
    q = "fw_q"
    conditions: list[exp.Expression] = [parse_expression("fw_q.raw IS NOT NULL")]
    params: dict = {}
    if batch:
        conditions.append(parse_expression("fw_q.batch_id = $batch"))
        params["batch"] = batch
    if kind:
        conditions.append(parse_expression("fw_q.kind = $kind"))
        params["kind"] = kind
    if not include_resolved:
        for k in KINDS.values():
            stored = exp.select("1").from_(exp.to_table(k.table).as_("fw_t")).join(
                exp.to_table("ingest_batches").as_("fw_b"), on=parse_expression("fw_b.batch_id = fw_t.batch_id")
            ).where(exp.and_(
                exp.EQ(this=exp.column(k.key, table="fw_t"), expression=exp.column("record_key", table="fw_q")),
                parse_expression("fw_q.kind = __kind__ AND fw_b.started_at > fw_q.quarantined_at",
                                 kind=exp.Literal.string(k.name))))
            conditions.append(exp.not_(exp.Exists(this=stored)))
    where = conditions[0]
    for c in conditions[1:]:
        where = exp.and_(where, c)
    latest = parse_expression("row_number() OVER (PARTITION BY fw_q.source_file, fw_q.source_line, fw_q.source_item, "
                              "fw_q.raw ORDER BY fw_q.quarantined_at DESC, fw_q.batch_id DESC) = 1")
    tree = exp.select("kind", "source_file", "source_line", "source_item", "raw", "reasons", "batch_id",
                      "record_key").from_(exp.to_table("quarantine").as_(q)).where(where).qualify(latest).order_by(
        "source_file", "source_line", "source_item")
    return render(tree), params


def export_quarantine(con: duckdb.DuckDBPyConnection, path: Path, batch: str | None = None, kind: str | None = None,
                      include_resolved: bool = False) -> dict:
    sql, params = export_sql(batch, kind, include_resolved)
    rows = con.execute(sql, params).fetchall()
    reasons_path = quarantine_reasons_path(path)
    with open_atomic(path) as out, open_atomic(reasons_path) as why:
        for line, (kind_, source_file, source_line, source_item, raw, reasons, batch_id, key) in enumerate(rows, 1):
            out.write(raw.replace("\n", " ") + "\n")
            why.write(json.dumps({"line": line, "kind": kind_, "source_file": source_file,
                                  "source_line": source_line, "source_item": source_item, "batch_id": batch_id,
                                  "record_key": key, "reasons": list(reasons)}, ensure_ascii=False) + "\n")
    return {"path": str(path), "reasons_path": str(reasons_path), "records": len(rows)}

