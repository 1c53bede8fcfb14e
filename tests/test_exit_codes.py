"""The exit-code contract, per command, through the real CLI: 0 ok/PASS, 1 BLOCKED/alert, 2 the user's config or
input, 3 Flywheel could not do its job (one line; the traceback with --debug), 130 interrupted. A crash never
exits 1."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_cli
from tests.fs_helpers import full_filesystem, read_only_directory

# A model that answers, then breaks the engine's store machinery for its next transaction (once): the write after
# the call fails inside Flywheel, which is an internal error (exit 3), unlike a model that raises (an errored case,
# exit 0). Once only, so that a sweep's parent process (jobs may run in it) can still merge the other jobs.
BREAKS_THE_ENGINE = '''
class BreaksTheEngine:
    def __init__(self, attempt=1):
        self.attempt = attempt  # a new attempt is a new fingerprint: its answers are not in the cache

    def __call__(self, requests):
        from engine.store import Store

        original = Store.transaction

        def broken(self):
            Store.transaction = original
            raise RuntimeError("injected fault: the store cannot open a transaction")
        Store.transaction = broken
        return ["an answer" for _ in requests]
'''


# Waits until the test signals it, so a test can interrupt or kill a real `flywheel evaluate` mid-run.
SLOW_MODEL = '''
import os
import time


class Slow:
    def __init__(self, started_file):
        self.started_file = started_file

    def __call__(self, requests):
        with open(self.started_file, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(3600)
        return ["too late" for _ in requests]
'''


def add_model(project: Path, name: str, code: str, target: str, params: dict | None = None) -> None:
    (project / f"{name}_model.py").write_text(code, encoding="utf-8")
    (project / "conf" / "model" / f"{name}.yaml").write_text(
        json.dumps({"name": name, "adapter": "python", "_target_": f"{name}_model.{target}",
                    "params": params or {}}), encoding="utf-8")


def store_rows(project: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


COMMANDS = [("evaluate",), ("gate",), ("gate", "-m", "challenger=lookup,lookup_better"), ("monitor",), ("bridge",),
            ("ingest", "path=data/mini.jsonl"), ("datasets", "list"), ("compile", "gate")]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_a_yaml_syntax_error_in_any_conf_file_names_file_line_and_column(cli, project, command):
    (project / "conf" / "metrics" / "mini.yaml").write_text(
        "exact:\n  kind: exact_match\n  normalizer: [lower_strip\nfound:\n  kind: contains\n", encoding="utf-8")
    r = cli(*command, cwd=project)
    assert r.code == 2, r
    assert "conf/metrics/mini.yaml:4:6: invalid YAML: expected ',' or ']', but got ':'" in r.stderr
    assert "line 3, column 15" in r.stderr  # where the unclosed list starts
    assert "Traceback" not in r.stderr + r.stdout


def test_a_tab_in_a_dataset_config_is_named_too(cli, project):
    (project / "conf" / "dataset" / "mini.yaml").write_text("mini:\n\tpath: data/mini.jsonl\n", encoding="utf-8")
    r = cli("evaluate", cwd=project)
    assert r.code == 2, r
    assert "conf/dataset/mini.yaml:2:1: invalid YAML: found character '\\t'" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_model_that_raises_is_an_errored_case_not_a_failure(cli, project):
    r = cli("evaluate", "out=r.json", cwd=project)  # lookup raises on the input 'CRASH please'
    assert r.code == 0, r
    assert r.json["calls"]["errors"] == 1


@pytest.mark.parametrize("command", [("evaluate", "model=breaker"), ("gate", "challenger=breaker")])
def test_an_internal_error_is_exit_3_with_one_line_and_the_traceback_only_with_debug(cli, project, command):
    add_model(project, "breaker", BREAKS_THE_ENGINE, "BreaksTheEngine")
    r = cli(*command, cwd=project)
    assert r.code == 3, r
    assert "internal error (a bug in Flywheel): RuntimeError: injected fault" in r.stderr
    assert "--debug" in r.stderr and "Traceback" not in r.stderr
    # the run this process left behind is closed as failed, not left `running`
    assert ("failed",) in store_rows(project, "SELECT status FROM runs WHERE model_name = 'breaker'")
    assert not store_rows(project, "SELECT run_id FROM runs WHERE status = 'running'")
    # the answers it paid for were kept (the next run recovers them), so the model must change to break again
    add_model(project, "breaker", BREAKS_THE_ENGINE, "BreaksTheEngine", {"attempt": 2})
    debug = cli(*command, "--debug", cwd=project)
    assert debug.code == 3, debug
    assert "Traceback (most recent call last)" in debug.stderr and "injected fault" in debug.stderr


def test_a_user_sql_runtime_error_names_the_metric_and_is_exit_2(cli, project):
    metrics = project / "conf" / "metrics" / "mini.yaml"
    metrics.write_text(metrics.read_text() + "as_number:\n  kind: sql\n  expression: CAST(output_text AS INTEGER) > 0\n",
                       encoding="utf-8")
    r = cli("evaluate", cwd=project)
    assert r.code == 2, r
    assert "metric 'as_number'" in r.stderr and "`CAST(output_text AS INTEGER) > 0`" in r.stderr
    assert "Conversion Error" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("command", [("evaluate",), ("gate",), ("ingest", "path=data/mini.jsonl"), ("datasets", "list")])
def test_an_output_path_that_cannot_be_written_is_exit_2_before_any_work(cli, project, command):
    r = cli(*command, "out=data/mini.jsonl/result.json", cwd=project)  # a file where a directory must be
    assert r.code == 2, r
    assert "out=data/mini.jsonl/result.json: cannot create" in r.stderr and "is not a directory" in r.stderr
    assert not (project / ".flywheel" / "flywheel.duckdb").exists()  # refused before the store was touched


def test_a_read_only_output_directory_is_exit_2(cli, project, tmp_path):
    with read_only_directory(tmp_path / "ro") as ro:
        r = cli("gate", f"out={ro}/gate.json", f"junit={ro}/junit.xml", cwd=project)
    assert r.code == 2, r
    assert "is not writable" in r.stderr and "Traceback" not in r.stderr


def test_a_full_disk_after_a_pass_is_exit_3_and_the_decision_is_kept(cli, project, tmp_path):
    with full_filesystem(tmp_path / "full") as full:
        r = cli("gate", f"out={full}/gate.json", cwd=project)
    assert r.code == 3, r
    assert "the disk is full" in r.stderr and "the command itself finished (exit 0)" in r.stderr
    assert "Traceback" not in r.stderr
    assert store_rows(project, "SELECT verdict FROM gate_decisions") == [("PASS",)]


def test_ctrl_c_is_exit_130_and_the_run_is_marked_aborted(project):
    started = project / "started.txt"
    add_model(project, "slow", SLOW_MODEL, "Slow", {"started_file": str(started)})
    proc = subprocess.Popen([sys.executable, "-m", "engine", "evaluate", "model=slow", "run.progress=false"],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not started.exists() and proc.poll() is None:
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in err and "Traceback" not in err
    assert run_cli("datasets", "list", cwd=project).code == 0  # any later command settles the run's status
    assert store_rows(project, "SELECT status FROM runs WHERE model_name = 'slow'") == [("aborted",)]


def test_help_prints_the_exit_code_table(cli, tmp_path):
    r = cli("--help", cwd=tmp_path)
    assert r.code == 0
    for line in ("gate          0 PASS, 1 BLOCKED", "gate -m       0 at least one challenger passes, 1 none does",
                 "monitor       0 healthy, 1 alert", "any command   2 the config or input is wrong",
                 "any command   3 Flywheel could not do its job", "any command   130 interrupted"):
        assert line in r.stdout, r.stdout
    gate = cli("gate", "--help", cwd=tmp_path)
    assert "gate          0 PASS, 1 BLOCKED" in gate.stdout and "monitor" not in gate.stdout.split("Exit codes:")[1]
