"""Helpers for ingest tests: writing input files, reading the store, the real CLI (from tests/conftest.py)."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb

from tests.conftest import FIXTURE_PROJECT, run_cli  # noqa: F401  (the session's one CLI harness and zygote)


def write_jsonl(path: Path, records: list) -> Path:
    """Records are dicts (dumped as JSON), str (written as the line) or bytes (written raw)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for r in records:
            if isinstance(r, bytes):
                f.write(r + b"\n")
            elif isinstance(r, str):
                f.write(r.encode("utf-8") + b"\n")
            else:
                f.write(json.dumps(r).encode("utf-8") + b"\n")
    return path


def trace(tid: str | None, **fields) -> dict:
    record = {"trace_id": tid, "session_id": "s1", "user_id": "u1", "timestamp": "2025-03-01T10:00:00Z",
              "model": "kw", "input": f"question {tid}", "output": "answer", "latency_ms": 12.5,
              "prompt_tokens": 10, "completion_tokens": 2, "cost": 0.001,
              "attributes": {"topic": "billing", "channel": "web"}}
    if tid is None:
        del record["trace_id"]
    record.update(fields)
    return {k: v for k, v in record.items() if v is not ...}


def query(project: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()



class InProcess:
    """`flywheel ARGS --project DIR` in this process (no interpreter start-up): for the quick cases; the
    main battery, the kill test and the round trip run the real CLI in a subprocess."""

    def __init__(self, code: int, out_path: Path | None):
        self.code = code
        self.out_path = out_path

    @property
    def json(self) -> dict:
        return json.loads(self.out_path.read_text(encoding="utf-8"))


def flywheel(*args: str, project: Path) -> InProcess:
    from engine.cli import main

    out = next((project / a[4:] for a in args if a.startswith("out=")), None)
    return InProcess(main([*args, "--project", str(project), "run.progress=false"]), out)
