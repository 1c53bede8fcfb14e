"""`evaluate` and `gate` never hold the store while a model is called (an API model can take hours).

A model that waits for the test to release it shows the store is free while it is being called: another
process opens the store for writing meanwhile. A run killed mid-way keeps the calls it paid for (journal).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

# Waits (bounded) for a release file before answering, after saying it has started; records every case it answers.
GATED_MODEL = '''
import json, os, time
from pathlib import Path


class GatedModel:
    def __init__(self, gate_dir, answers, block_on_batch=1):
        self.dir = Path(gate_dir)
        self.answers = answers
        self.block_on_batch = block_on_batch
        self.batches = 0

    def __call__(self, requests):
        self.batches += 1
        with open(self.dir / "answered.jsonl", "a") as f:
            for r in requests:
                f.write(json.dumps(r.case_id) + "\\n")
        if self.batches == self.block_on_batch:
            (self.dir / f"started.{os.getpid()}").write_text("")
            deadline = time.monotonic() + 240
            while not (self.dir / "release").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return [self.answers.get(r.case_id, "?") for r in requests]
'''

ANSWERS = {"m1": "30 days", "m2": "Settings > Security", "m3": "yes", "m4": "anything", "m5": "$12 per user"}


def gated_project(project: Path, gate_dir: Path, block_on_batch: int = 1, name: str = "gated") -> None:
    (project / "gated_model.py").write_text(GATED_MODEL)
    (project / "conf" / "model" / f"{name}.yaml").write_text(json.dumps({
        "name": name, "adapter": "python", "_target_": "gated_model.GatedModel", "batch_size": 2,
        "params": {"gate_dir": str(gate_dir), "answers": ANSWERS, "block_on_batch": block_on_batch}}))
    # no crashing case: every answer is good
    data = project / "data" / "mini.jsonl"
    data.write_text(data.read_text().replace("CRASH please", "Is there a free trial?"))


def start(project: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "engine", *args, "run.progress=false"], cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path_glob: Path, proc: subprocess.Popen) -> None:
    """Until a file matching the pattern exists (the model is being called) or the process ended."""
    while not list(path_glob.parent.glob(path_glob.name)):
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the command ended before calling the model: {proc.returncode}\n{out}\n{err}")
        time.sleep(0.05)


def write_while_called(store: Path) -> None:
    """Open the store for writing from this process, as a second flywheel command would."""
    con = duckdb.connect(str(store))  # raises "Could not set lock on file" if the evaluation held it
    try:
        con.execute("CREATE TABLE written_meanwhile AS SELECT 1 AS x")
    finally:
        con.close()


def test_evaluate_leaves_the_store_free_while_the_model_is_called(project, tmp_path):
    gate_dir = tmp_path / "gate"
    gate_dir.mkdir()
    gated_project(project, gate_dir)
    store = project / ".flywheel" / "flywheel.duckdb"
    proc = start(project, "evaluate", "model=gated", "out=r.json")
    try:
        wait_for(gate_dir / "started.*", proc)
        write_while_called(store)
    finally:
        (gate_dir / "release").write_text("")
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    result = json.loads((project / "r.json").read_text())
    assert result["calls"]["called"] == 5
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT x FROM written_meanwhile").fetchall() == [(1,)]
    assert con.execute("SELECT status, n_cases FROM runs").fetchall() == [("ok", 5)]
    assert con.execute("SELECT count(*) FROM scores WHERE passed AND metric = 'found'").fetchall()[0][0] == 5


def test_gate_leaves_the_store_free_while_the_challenger_is_called(project, tmp_path):
    gate_dir = tmp_path / "gate"
    gate_dir.mkdir()
    gated_project(project, gate_dir)
    store = project / ".flywheel" / "flywheel.duckdb"
    proc = start(project, "gate", "challenger=gated", "baseline=lookup", "out=g.json")
    try:
        wait_for(gate_dir / "started.*", proc)
        write_while_called(store)
    finally:
        (gate_dir / "release").write_text("")
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    assert json.loads((project / "g.json").read_text())["verdict"] == "PASS"


def test_a_killed_run_keeps_the_calls_it_paid_for(project, tmp_path):
    gate_dir = tmp_path / "gate"
    gate_dir.mkdir()
    # batches of 2: the first batch (m1, m2) is answered and journaled, the model then blocks in the second
    gated_project(project, gate_dir, block_on_batch=2)
    proc = start(project, "evaluate", "model=gated", "out=r.json")
    try:
        wait_for(gate_dir / "started.*", proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        (gate_dir / "release").write_text("")
    journals = list((project / ".flywheel" / "pending").glob("*.arrow"))
    assert len(journals) == 1
    (gate_dir / "answered.jsonl").write_text("")
    again = start(project, "evaluate", "model=gated", "out=r.json")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, out + err
    # only the cases that had not been answered before the kill are sent again
    answered = [json.loads(x) for x in (gate_dir / "answered.jsonl").read_text().splitlines()]
    assert sorted(answered) == ["m3", "m4", "m5"]
    result = json.loads((project / "r.json").read_text())
    assert result["calls"] == {"needed": 5, "cached": 2, "called": 3, "errors": 0}
    assert not list((project / ".flywheel" / "pending").glob("*.arrow"))
