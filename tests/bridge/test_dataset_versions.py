"""Dataset versions after the bridge: an edited golden file keeps the production cases (a new version, parent
recorded, said in the output), a colliding case id is an error naming both, an unknown version is an error
listing the known ones, and a moved project still finds the bridge's version (paths stored relative)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_cli
from tests.session_cache import copy_of

EVALUATE = ("evaluate", "model=bm25_clean", "dataset=[support_qa]")


def bridge(project: Path) -> tuple[Path, dict]:
    r = run_cli("bridge", "out=bridge.json", cwd=project)
    assert r.code == 0, r
    golden = r.json["golden"]
    assert golden["added"] > 0
    return project, golden


@pytest.fixture
def bridged(production_project):
    """The production history bridged in the test's own project (for the test that moves it)."""
    return bridge(production_project)


@pytest.fixture(scope="module")
def bridged_template(production_template, tmp_path_factory):
    return bridge(copy_of(production_template, tmp_path_factory.mktemp("bridged") / "project"))


@pytest.fixture
def bridged_copy(bridged_template, tmp_path):
    """A private copy of the production history bridged once for the module (the tests edit its golden file)."""
    template, golden = bridged_template
    project = copy_of(template, tmp_path / "project")
    path = Path(golden["path"])
    return project, {**golden, "path": str(project / (path.relative_to(template) if path.is_absolute() else path))}


def query(project, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def edit_golden(project, change) -> None:
    path = project / "data" / "golden_qa.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    change(records)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_an_edited_golden_file_keeps_the_production_cases_as_a_new_version(bridged_copy):
    project, golden = bridged_copy

    def change(records):
        records[0]["expected"] = "a corrected answer"
        records.append({"id": "qa-new", "input": "A question added by hand?", "expected": "yes"})
    edit_golden(project, change)
    r = run_cli(*EVALUATE, "out=ev.json", cwd=project)
    assert r.code == 0, r
    new_version = r.json["dataset_versions"]["support_qa"]
    assert new_version not in (golden["version"], golden["parent_version"])
    assert "changed since the bridge's version" in r.stdout
    assert f"production case(s) are carried over: new version {new_version}" in r.stdout
    (parent, provenance), = query(project, "SELECT parent_version, provenance FROM dataset_versions "
                                           "WHERE dataset_version = ?", [new_version])
    assert json.loads(provenance)["carried_from"] == golden["version"]
    # the new version = the edited file (its own version is the parent) + every production case of the bridge's
    cases = dict(query(project, "SELECT case_id, expected FROM cases WHERE dataset_version = ?", [new_version]))
    file_cases = dict(query(project, "SELECT case_id, expected FROM cases WHERE dataset_version = ?", [parent]))
    assert len(file_cases) == 262 and json.loads(file_cases["qa-0001"]) == "a corrected answer"
    production = [c for c in cases if c.startswith("prod-")]
    assert len(production) == golden["cases_from_production"] and len(cases) == 262 + len(production)
    assert {k: v for k, v in cases.items() if not k.startswith("prod-")} == file_cases
    head, path = query(project, "SELECT dataset_version, path FROM dataset_heads WHERE name = 'support_qa'")[0]
    assert head == new_version and path == f"data/bridge/golden/support_qa-{new_version}.jsonl"
    diff = run_cli("datasets", "diff", parent, new_version, "out=diff.json", cwd=project)
    assert diff.code == 0 and sorted(c["case_id"] for c in diff.json["added"]) == sorted(production)
    assert diff.json["removed"] == [] and diff.json["changed"] == []
    again = run_cli(*EVALUATE, "out=again.json", cwd=project)  # stable: the same version, nothing carried twice
    assert again.code == 0 and again.json["dataset_versions"]["support_qa"] == new_version
    assert "carried over" not in again.stdout


def test_a_production_case_id_colliding_with_the_edited_file_is_an_error_naming_both(bridged_copy):
    project, golden = bridged_copy
    produced = [json.loads(line) for line in open(golden["path"], encoding="utf-8")
                if '"origin": "production"' in line]
    victim = produced[0]
    edit_golden(project, lambda records: records.append({"id": victim["id"], "input": "something else entirely",
                                                         "expected": "another answer"}))
    r = run_cli(*EVALUATE, cwd=project)
    assert r.code == 2, r
    assert f"case id '{victim['id']}': data/golden_qa.jsonl:262 and the production case at " \
           f"data/bridge/golden/support_qa-{golden['version']}.jsonl:" in r.stderr
    assert f"(trace {victim['metadata']['trace_id']})" in r.stderr and "differ in expected, input" in r.stderr
    assert "follow_bridge=false" in r.stderr and "Traceback" not in r.stderr


def test_an_unknown_version_is_an_error_listing_the_known_ones(bridged_copy):
    project, golden = bridged_copy
    r = run_cli("datasets", "diff", f"support_qa@{golden['parent_version']}", "support_qa@nonsense", cwd=project)
    assert r.code == 2, r
    assert "'support_qa@nonsense': 'nonsense' is not a version of 'support_qa'" in r.stderr
    assert golden["parent_version"] in r.stderr and golden["version"] in r.stderr
    assert "support_qa@head" in r.stderr
    ok = run_cli("datasets", "diff", f"support_qa@{golden['parent_version'][:8]}", "support_qa@head", "out=d.json",
                 cwd=project)
    assert ok.code == 0, ok
    assert ok.json["b"] == golden["version"]
    unknown = run_cli("datasets", "diff", "suport_qa@head", "support_qa@head", cwd=project)
    assert unknown.code == 2 and "no stored dataset named 'suport_qa'; did you mean 'support_qa'?" in unknown.stderr


def test_a_moved_project_still_follows_the_bridge_version(bridged, tmp_path):
    project, golden = bridged
    assert query(project, "SELECT path FROM dataset_heads")[0][0] == \
        f"data/bridge/golden/support_qa-{golden['version']}.jsonl"
    moved = tmp_path / "elsewhere" / "cloned"
    moved.parent.mkdir()
    shutil.move(str(project), str(moved))  # the original location is gone
    r = run_cli(*EVALUATE, "out=ev.json", cwd=moved)
    assert r.code == 0, r
    assert r.json["dataset_versions"]["support_qa"] == golden["version"]
    assert "using the bridge's version" in r.stdout
