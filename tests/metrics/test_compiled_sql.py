"""Golden SQL: the compiled SQL of the bundled metric suite, compared statement by statement by AST.

A change in generated SQL shows up here (and in review). Regenerate after an intended change with
`FLYWHEEL_UPDATE_GOLDEN=1 pytest tests/metrics/test_compiled_sql.py` and read the diff of the fixture.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import sqlglot

BUNDLED_METRICS = ["safety", "refusal", "accuracy", "exact_match", "token_f1", "relevance", "groundedness", "latency",
                   "cost", "tokens", "error_rate"]
GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "compile_evaluate.sql"


def statements(text: str) -> list[str]:
    """Each statement normalised: parsed with sqlglot and rendered again, comments dropped."""
    return [tree.sql(dialect="duckdb", comments=False) for tree in sqlglot.parse(text, read="duckdb") if tree]


def test_compiled_sql_of_the_bundled_suite_matches_the_golden_file(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "engine", "compile", "evaluate"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    if os.environ.get("FLYWHEEL_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(proc.stdout, encoding="utf-8")
    names = re.findall(r"^-- (score:\w+|summary)", proc.stdout, flags=re.MULTILINE)
    assert names == [f"score:{m}" for m in BUNDLED_METRICS] + ["summary"]
    got, want = statements(proc.stdout), statements(GOLDEN.read_text(encoding="utf-8"))
    assert len(got) == len(want), f"{len(got)} statements compiled, {len(want)} in {GOLDEN.name}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"statement {i + 1} differs from {GOLDEN.name}; regenerate with FLYWHEEL_UPDATE_GOLDEN=1"
