"""A golden file already loaded is not parsed again (engine/dataset_cache.py); a changed one is validated."""
from __future__ import annotations

import json

import duckdb

from engine import dataset_cache
from engine.config import compose, find_project
from engine.evaluation import store_path


def _load(project):
    composed = compose(find_project(str(project)), [])
    return dataset_cache.load_datasets(composed.config, composed.project, store_path(composed.config,
                                                                                     composed.project))


def test_a_known_file_takes_its_version_from_the_store_without_parsing(cli, project):
    assert cli("evaluate", "out=a.json", cwd=project).code == 0
    (loaded,) = _load(project)
    assert "cases" not in loaded.__dict__  # not parsed
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    assert con.execute("SELECT dataset_version FROM dataset_files").fetchall() == [(loaded.version,)]
    con.close()
    assert [c.case_id for c in loaded.cases] == ["m1", "m2", "m3", "m4", "m5"]  # parsed when needed
    again = cli("evaluate", "out=b.json", cwd=project)
    assert again.code == 0, again
    a, b = (json.loads((project / n).read_text()) for n in ("a.json", "b.json"))
    assert b["dataset_versions"] == a["dataset_versions"] and b["summary"] == a["summary"]


def test_a_changed_file_is_parsed_and_validated_again(cli, project):
    assert cli("evaluate", cwd=project).code == 0
    data = project / "data" / "mini.jsonl"
    data.write_text(data.read_text() + '{"id": "m6", "input": "x", "expected": NaN}\n')
    r = cli("evaluate", cwd=project)
    assert r.code == 2, r
    assert "mini.jsonl:6" in r.stderr + r.stdout


def test_files_recorded_under_other_validation_rules_are_validated_again(cli, project, monkeypatch):
    assert cli("evaluate", cwd=project).code == 0
    monkeypatch.setattr(dataset_cache, "LOADER", "rules-of-another-flywheel")
    (loaded,) = _load(project)
    assert "cases" in loaded.__dict__  # parsed and validated, not taken from the store
