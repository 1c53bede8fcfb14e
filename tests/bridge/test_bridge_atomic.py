"""A bridge killed between writing its files and committing (or between committing and publishing) leaves no
orphan and no duplicate: files are staged and published only at commit. The kill is a real SIGKILL of the bridge
process at the chosen point (the FLYWHEEL_TEST_KILL_BRIDGE_AT test seam in engine/bridge/run.py)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import duckdb

from tests.conftest import run_cli


def files(project: Path, pattern: str) -> list[Path]:
    """Published files (outside the staging directory)."""
    return sorted(p for p in (project / "data" / "bridge").rglob(pattern) if ".staging" not in p.parts)


def staged(project: Path) -> list[Path]:
    return sorted(p for p in (project / "data" / "bridge" / ".staging").rglob("*") if p.is_file())


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def exported(project: Path) -> Counter:
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:
        return Counter(dict(con.execute("SELECT destination, count(*) FROM bridge_exports GROUP BY 1").fetchall()))
    finally:
        con.close()


def assert_disk_matches_store(project: Path) -> None:
    """Every exported record is on disk exactly once, and nothing else is."""
    training = [r for f in files(project, "training-*.jsonl") for r in jsonl(f)]
    queue = [r for f in files(project, "label_queue-*.jsonl") for r in jsonl(f)]
    assert len(training) == exported(project)["training"] > 0
    assert len(queue) == exported(project)["label_queue"] > 0
    assert len({r["trace_id"] for r in training}) == len(training)
    assert len({r["id"] for r in queue}) == len(queue)
    assert not (project / "data" / "bridge" / ".staging").exists()
    assert len(files(project, "support_qa-*.jsonl")) == 1


def test_a_bridge_killed_before_its_commit_leaves_nothing_and_the_rerun_exports_once(production_project):
    project = production_project
    killed = run_cli("bridge", cwd=project, env={"FLYWHEEL_TEST_KILL_BRIDGE_AT": "before_commit"})
    assert killed.code == -9, killed
    assert not files(project, "training-*") and not files(project, "label_queue-*")  # only staged, never published
    assert not files(project, "support_qa-*.jsonl")
    assert staged(project)  # what it wrote sits in staging until the next run cleans it
    assert exported(project) == Counter()  # the store has no record of the killed export
    again = run_cli("bridge", "out=again.json", cwd=project)
    assert again.code == 0, again
    assert_disk_matches_store(project)
    assert again.json["training"]["records"] == exported(project)["training"]


def test_a_bridge_killed_after_its_commit_is_published_by_the_next_command(production_project):
    project = production_project
    killed = run_cli("bridge", cwd=project, env={"FLYWHEEL_TEST_KILL_BRIDGE_AT": "before_publish"})
    assert killed.code == -9, killed
    committed = exported(project)
    assert committed["training"] > 0 and not files(project, "training-*")  # committed, not yet renamed into place
    assert {p.name.split("-")[0] for p in staged(project)} == {"training", "label_queue", "support_qa"}
    # the next command needs the new golden version's file: it finishes the publication first
    ev = run_cli("evaluate", "model=bm25_clean", "dataset=[support_qa]", "out=ev.json", cwd=project)
    assert ev.code == 0, ev
    assert "using the bridge's version" in ev.stdout
    again = run_cli("bridge", "out=again.json", cwd=project)
    assert again.code == 0, again
    assert again.json["training"]["records"] == 0 and again.json["golden"]["added"] == 0  # nothing twice
    assert exported(project) == committed
    assert_disk_matches_store(project)
