"""Output paths: refused before anything runs when they would overwrite the store, its WAL or an input; every
output is written to a temporary file beside the target and renamed into place."""
from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from engine.errors import UserError
from engine.outputs import open_atomic, write_text
from tests.conftest import copy_fixture_project, run_cli
from tests.session_cache import copy_of

STORE = ".flywheel/flywheel.duckdb"


@pytest.fixture(scope="module")
def evaluated_template(tmp_path_factory):
    """The fixture project after one `flywheel evaluate`, made once for the module's tests to copy."""
    project = copy_fixture_project(tmp_path_factory.mktemp("evaluated") / "project")
    r = run_cli("evaluate", cwd=project)
    assert r.code == 0, r
    return project


@pytest.fixture
def evaluated(evaluated_template, tmp_path):
    """A private copy of the evaluated fixture project (the tests write to its store, or try to)."""
    return copy_of(evaluated_template, tmp_path / "project")


def _store_state(project: Path) -> tuple[dict[str, bytes], list]:
    """Every file under .flywheel (the store, a WAL if any, run artifacts) byte for byte, and the stored runs."""
    root = project / ".flywheel"
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    con = duckdb.connect(str(project / STORE), read_only=True)
    try:
        runs = con.execute("SELECT run_id, status FROM runs ORDER BY run_id").fetchall()
    finally:
        con.close()
    return files, runs


@pytest.mark.parametrize("args,flag", [
    (("evaluate", f"out={STORE}"), "out"),
    (("gate", f"out={STORE}"), "out"),
    (("gate", f"report={STORE}"), "report"),
    (("gate", f"junit={STORE}"), "junit"),
    (("gate", f"markdown={STORE}"), "markdown"),
    (("gate", f"report={STORE}.wal"), "report"),
    (("ingest", f"export_quarantine={STORE}"), "export_quarantine"),
    (("ingest", "path=data/mini.jsonl", "kind=traces", f"out={STORE}"), "out"),
    (("datasets", "list", f"out={STORE}"), "out"),
    (("gate", "-m", "challenger=lookup_better,lookup", f"out={STORE}"), "out"),
])
def test_every_output_flag_pointed_at_the_store_is_refused_before_anything_runs(cli, evaluated, args, flag):
    before = _store_state(evaluated)
    r = cli(*args, cwd=evaluated)
    assert r.code == 2, r
    out = r.stdout + r.stderr
    assert "Traceback" not in out
    assert f"output path refused, nothing was run" in out and f"- {flag}=" in out, out
    assert "is the store" in out or "is the store's write-ahead log" in out, out
    # byte for byte, every file of .flywheel: the store was not even opened for writing, no WAL or run directory
    # appeared. So it is still the working store of the evaluated template (the other tests here run commands on it)
    assert _store_state(evaluated) == before


@pytest.mark.parametrize("args,why", [
    (("evaluate", "out=data/mini.jsonl"), "an input of this command (dataset mini)"),
    (("gate", "junit=conf/gate/mini.yaml"), "an input of this command (config gate/mini.yaml)"),
    (("ingest", "path=data/mini.jsonl", "kind=traces", "export_quarantine=data/mini.jsonl"),
     "an input of this command"),
    (("gate", "out=result.json", "report=result.json"), "also the output out=result.json"),
    (("evaluate", "out=data"), "is a directory"),
])
def test_outputs_over_inputs_or_each_other_are_refused(cli, project, args, why):
    golden = (project / "data" / "mini.jsonl").read_bytes()
    r = cli(*args, cwd=project)
    assert r.code == 2, r
    assert why in r.stdout + r.stderr, r
    assert (project / "data" / "mini.jsonl").read_bytes() == golden
    assert not (project / STORE).exists()


@pytest.mark.parametrize("args", [("monitor", f"report={STORE}"), ("monitor", f"out={STORE}.wal"),
                                  ("bridge", f"out={STORE}"), ("simulate", f"out={STORE}")])
def test_bundled_project_commands_refuse_the_store_too(cli, tmp_path, args):
    r = cli(*args, cwd=tmp_path)  # the bundled config: monitor, bridge and simulate validate
    assert r.code == 2, r
    assert "output path refused, nothing was run" in r.stdout + r.stderr and "is the store" in r.stdout + r.stderr
    assert not (tmp_path / STORE).exists() and not (tmp_path / "data").exists()


def test_a_symlink_or_hard_link_to_the_store_is_the_store(cli, evaluated):
    (evaluated / "link.json").symlink_to(evaluated / STORE)
    os.link(evaluated / STORE, evaluated / "hard.json")
    for target in ("link.json", "hard.json"):
        r = cli("gate", f"out={target}", cwd=evaluated)
        assert r.code == 2 and "is the store" in r.stdout + r.stderr, r


def test_simulate_refuses_to_write_its_files_over_the_store(cli, project):
    (project / "traffic").mkdir()
    (project / "traffic" / "traces.jsonl").symlink_to(project / "conf" / "config.yaml")
    r = cli("simulate", "simulate.out_dir=traffic", "simulate.days=1", cwd=project)
    assert r.code == 2 and "an input of this command (config config.yaml)" in r.stdout + r.stderr, r


def test_outputs_are_written_through_a_temporary_file_and_renamed(cli, evaluated):
    target = evaluated / "reports" / "gate.json"
    target.parent.mkdir()
    target.write_text("the previous result\n")
    os.chmod(target, 0o640)
    r = cli("gate", "out=reports/gate.json", "junit=reports/gate.xml", "markdown=reports/gate.md",
            "report=reports/gate.html", cwd=evaluated)
    assert r.code in (0, 1), r
    assert r.json["command"] == "gate"
    assert sorted(p.name for p in target.parent.iterdir()) == ["gate.html", "gate.json", "gate.md", "gate.xml"]
    assert target.stat().st_mode & 0o777 == 0o640  # the file's permissions are kept


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("previous\n")
    with pytest.raises(RuntimeError):
        with open_atomic(target) as f:
            f.write("half of a new res")
            raise RuntimeError("disk full")
    assert target.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary file left behind
    write_text(target, "new\n")
    assert target.read_text() == "new\n"


def test_the_writer_never_replaces_a_duckdb_file(tmp_path):
    db = tmp_path / "any.duckdb"
    duckdb.connect(str(db)).close()
    before = db.read_bytes()
    with pytest.raises(UserError, match="it is a DuckDB database"):
        write_text(db, "{}")
    assert db.read_bytes() == before
