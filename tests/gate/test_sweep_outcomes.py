"""A sweep's exit code says whether any challenger passed (0) or none did (1); a failing job is an ERROR entry,
the jobs that finished are merged all the same, and a job that meets a busy store waits like any writer."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pytest

from engine.errors import StoreBusy
from tests.test_exit_codes import BREAKS_THE_ENGINE, add_model


def test_a_sweep_where_no_challenger_passes_exits_1_and_says_so(cli, project):
    # two variants of a challenger that regresses against the baseline
    r = cli("gate", "-m", "challenger=lookup", "baseline=lookup_better", "+challenger.params.flaky_cases=[m1],[m2]",
            "out=board.json", cwd=project)
    assert r.code == 1, r
    board = r.json
    assert [e["verdict"] for e in board["entries"]] == ["BLOCKED", "BLOCKED"]
    assert board["exit_code"] == 1 and board["outcome"] == "no challenger passed the gate (2 BLOCKED)"
    assert "no challenger passed the gate (2 BLOCKED) (exit 1)" in r.stdout


def test_a_failing_job_is_an_error_entry_and_the_passing_job_is_merged(cli, project):
    add_model(project, "breaker", BREAKS_THE_ENGINE, "BreaksTheEngine")
    r = cli("gate", "-m", "challenger=breaker,lookup_better", "out=board.json", cwd=project)
    assert r.code == 0, r
    board = r.json
    by_verdict = {e["verdict"]: e for e in board["entries"]}
    assert set(by_verdict) == {"PASS", "ERROR"}
    assert "internal error (a bug in Flywheel): RuntimeError: injected fault" in by_verdict["ERROR"]["error"]
    assert board["outcome"] == "1 of 2 challenger(s) passed the gate; 1 job(s) failed"
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    decided = [d for (d,) in con.execute("SELECT decision_id FROM gate_decisions").fetchall()]
    assert decided == [by_verdict["PASS"]["decision_id"]]  # the finished job landed in the main store
    assert con.execute("SELECT count(*) FROM runs WHERE model_name = 'breaker'").fetchall()[0][0] == 0


def test_when_every_job_fails_the_sweep_exits_with_the_failure_not_1(cli, project):
    add_model(project, "breaker", BREAKS_THE_ENGINE, "BreaksTheEngine")
    r = cli("gate", "-m", "challenger=breaker", "out=board.json", cwd=project)
    assert r.code == 3, r
    assert r.json["outcome"].startswith("no challenger passed and 1 of 1 job(s) failed")


def test_a_job_seeding_from_a_busy_main_store_waits_then_gives_up(project, tmp_path):
    """The job's read-only ATTACH of the main store meets another writer: it waits (store.lock_wait_s)."""
    from engine.gate.sweep import _seed_private_store
    from engine.store import Store, set_lock_wait

    main = tmp_path / "main.duckdb"
    with Store.open(main):
        pass
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, sys
        con = duckdb.connect({str(main)!r})
        print("held", flush=True)
        sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        set_lock_wait(0.3)
        with Store.open(tmp_path / "job.duckdb") as job_store:
            with pytest.raises(StoreBusy, match=r"still in use by process \d+ after waiting 0.3 s"):
                _seed_private_store(job_store, main)
        holder.stdin.close()
        holder.wait()
        with Store.open(tmp_path / "job2.duckdb") as job_store:
            _seed_private_store(job_store, main)  # free again: seeds
    finally:
        set_lock_wait(30)
        holder.kill()
        holder.wait()
