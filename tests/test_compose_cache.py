"""The composed-config cache (engine/compose_cache.py): a hit gives exactly what Hydra composes, any edit or
override misses, the environment is read on every call, and a damaged entry is composed again."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine import compose_cache
from engine.config import compose, find_project
from engine.errors import UserError
from engine.redaction import SecretStr
from tests.conftest import copy_fixture_project, run_cli


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("FLYWHEEL_CACHE_DIR", str(folder))
    monkeypatch.delenv("FLYWHEEL_COMPOSE_CACHE", raising=False)
    return folder / "compose"


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.json")) if cache.exists() else []


def composed_without_cache(project, overrides, monkeypatch):
    with monkeypatch.context() as m:
        m.setenv("FLYWHEEL_COMPOSE_CACHE", "0")
        return compose(project, overrides)


OVERRIDE_SETS = [[], ["challenger=lookup_better"], ["gate.rules.exact_floor.bound=0.5"],
                 ["+extra.note='héllo wörld مرحبا é'", "run.progress=false"]]


@pytest.mark.parametrize("overrides", OVERRIDE_SETS, ids=["none", "model", "value", "added-unicode"])
def test_a_hit_is_exactly_what_hydra_composes(tmp_path, cache, monkeypatch, overrides):
    project = find_project(str(copy_fixture_project(tmp_path / "p")))
    first = compose(project, overrides)  # composed by Hydra, then kept
    assert len(entries(cache)) == 1
    hit = compose(project, overrides)
    assert len(entries(cache)) == 1
    plain = composed_without_cache(project, overrides, monkeypatch)
    assert hit.config == first.config == plain.config
    assert json.dumps(hit.config, sort_keys=True) == json.dumps(plain.config, sort_keys=True)
    assert hit.loaded == first.loaded == plain.loaded and hit.loaded


def test_an_edited_added_or_removed_file_misses(tmp_path, cache):
    root = copy_fixture_project(tmp_path / "p")
    project = find_project(str(root))
    before = compose(project, [])
    target = root / "conf" / "gate" / "mini.yaml"  # the selected gate
    target.write_text(target.read_text(encoding="utf-8") + "\nedited_marker: 7\n", encoding="utf-8")
    edited = compose(project, [])
    assert len(entries(cache)) == 2
    assert edited.config["gate"]["edited_marker"] == 7 and "edited_marker" not in before.config["gate"]
    # a new file nobody selects still changes the key (it could be selected by a default elsewhere)
    (root / "conf" / "gate" / "unused_new.yaml").write_text("rules: []\n", encoding="utf-8")
    compose(project, [])
    assert len(entries(cache)) == 3
    (root / "conf" / "gate" / "unused_new.yaml").unlink()
    assert compose(project, []).config == edited.config
    assert len(entries(cache)) == 3  # back to the edited tree: its entry again


def test_two_projects_with_the_same_files_share_an_entry(tmp_path, cache):
    a = compose(find_project(str(copy_fixture_project(tmp_path / "a"))), [])
    b = compose(find_project(str(copy_fixture_project(tmp_path / "b"))), [])
    assert len(entries(cache)) == 1 and a.config == b.config


def test_the_environment_is_read_on_every_call(tmp_path, cache, monkeypatch):
    project = find_project(str(copy_fixture_project(tmp_path / "p")))
    overrides = ["+extra.token=${oc.env:FW_TEST_TOKEN,none-set}"]
    monkeypatch.setenv("FW_TEST_TOKEN", "first-secret-value")
    first = compose(project, overrides)
    monkeypatch.setenv("FW_TEST_TOKEN", "second-secret-value")
    second = compose(project, overrides)
    assert len(entries(cache)) == 1  # the same entry, resolved again
    assert first.config["extra"]["token"] == "first-secret-value"
    assert second.config["extra"]["token"] == "second-secret-value"
    assert isinstance(second.config["extra"]["token"], SecretStr)  # still marked as read from the environment
    monkeypatch.delenv("FW_TEST_TOKEN")
    assert compose(project, overrides).config["extra"]["token"] == "none-set"


def test_an_override_of_hydras_settings_is_not_cached(tmp_path, cache):
    root = copy_fixture_project(tmp_path / "p")
    compose(find_project(str(root)), ["hydra.job.name=x"])
    assert entries(cache) == []


def test_a_damaged_entry_is_composed_again(tmp_path, cache, monkeypatch):
    project = find_project(str(copy_fixture_project(tmp_path / "p")))
    good = compose(project, []).config
    [entry] = entries(cache)
    for damage in ("", "{not json", json.dumps({"config": 1}), json.dumps([1, 2])):
        entry.write_text(damage, encoding="utf-8")
        assert compose(project, []).config == good
        assert json.loads(entry.read_text(encoding="utf-8"))["config"] is not None  # written again


def test_the_cache_can_be_turned_off_and_survives_an_unwritable_folder(tmp_path, cache, monkeypatch):
    project = find_project(str(copy_fixture_project(tmp_path / "p")))
    monkeypatch.setenv("FLYWHEEL_COMPOSE_CACHE", "0")
    compose(project, [])
    assert entries(cache) == []
    monkeypatch.delenv("FLYWHEEL_COMPOSE_CACHE")
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    monkeypatch.setenv("FLYWHEEL_CACHE_DIR", str(blocker))  # compose/ cannot be made under a file
    assert compose(project, []).config == composed_without_cache(project, [], monkeypatch).config


def test_old_entries_are_pruned(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(compose_cache, "KEEP_ENTRIES", 3)
    for i in range(6):
        compose_cache.store(f"entry{i}", {"n": i}, ())
        os.utime(cache / f"entry{i}.json", (1_000_000 + i, 1_000_000 + i))
    assert [p.stem for p in entries(cache)] == ["entry3", "entry4", "entry5"]  # the newest kept
    assert compose_cache.load("entry5") == ({"n": 5}, ())


def test_overrides_of_values_share_the_entry_of_their_config_choices(tmp_path, cache, monkeypatch):
    project = find_project(str(copy_fixture_project(tmp_path / "p")))
    runs = [["out=a.json"], ["out=b.json", "gate.rules.exact_floor.bound=0.9"], ["report=r.html", "~gate.reducer"],
            ["challenger=lookup", "out=c.json"], ["challenger=lookup", "+extra.v=[1,2]"]]
    for overrides in runs:
        cached = compose(project, overrides)
        assert cached.config == composed_without_cache(project, overrides, monkeypatch).config, overrides
    assert len(entries(cache)) == 2  # one per choice of challenger
    assert compose(project, runs[1]).config["gate"]["rules"]["exact_floor"]["bound"] == 0.9
    assert "reducer" not in compose(project, runs[2]).config["gate"]


def outcome(project, overrides):
    try:
        return compose(project, overrides).config
    except UserError as e:
        return f"refused: {e}"


@pytest.mark.parametrize("overrides, refused", [
    (["gate.rules.no_such_rule.bound=1"], True), (["challenger=no_such_model"], True), (["out=a.json,b.json"], True),
    (["gate.reducer=[unclosed"], True), (["gate={reducer: any}"], False), (["~gate"], False)],
    ids=["not-in-struct", "missing-choice", "sweep", "bad-syntax", "dict-to-group", "delete-group"])
def test_an_unusual_override_gets_what_hydra_gives(tmp_path, cache, monkeypatch, overrides, refused):
    project = find_project(str(copy_fixture_project(tmp_path / "p")))
    compose(project, [])  # an entry exists: a refusal must come from the override, not from a miss
    cached = outcome(project, overrides)
    with monkeypatch.context() as m:
        m.setenv("FLYWHEEL_COMPOSE_CACHE", "0")
        assert cached == outcome(project, overrides)
    assert isinstance(cached, str) == refused, cached


def test_the_cli_gives_the_same_answer_from_the_cache_and_after_an_edit(tmp_path):
    root = copy_fixture_project(tmp_path / "p")
    env = {"FLYWHEEL_CACHE_DIR": str(tmp_path / "cli-cache")}
    first = run_cli("config", "gate", cwd=root, env=env)
    again = run_cli("config", "gate", cwd=root, env=env)
    assert first.code == again.code == 0 and first.stdout == again.stdout
    assert len(list((tmp_path / "cli-cache" / "compose").glob("*.json"))) == 1
    assert "bound: 0.2" in first.stdout
    gate_file = root / "conf" / "gate" / "mini.yaml"
    gate_file.write_text(gate_file.read_text(encoding="utf-8").replace("bound: 0.2", "bound: 0.35"), encoding="utf-8")
    edited = run_cli("config", "gate", cwd=root, env=env)
    assert edited.code == 0 and "bound: 0.35" in edited.stdout and "bound: 0.2" not in edited.stdout, edited
    gate_file.write_text(gate_file.read_text(encoding="utf-8") + "\nnot_a_gate_key: 1\n", encoding="utf-8")
    refused = run_cli("config", "gate", cwd=root, env=env)  # validation sees the edited file, not a stale entry
    assert refused.code == 2 and "not_a_gate_key" in refused.stderr, refused
