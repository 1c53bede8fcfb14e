"""Bad configs and bad data: every problem at once, with file and key path; exit 2; the store untouched."""
from __future__ import annotations

import hashlib
from pathlib import Path

from engine.store import SCHEMA_VERSION


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_all_config_errors_at_once_with_file_and_key_path(cli, project):
    (project / "conf" / "metrics" / "mini.yaml").write_text(
        "exact:\n  kind: exakt_match\nfound:\n  kind: contains\n  normaliser: squad\n  threshold: high\n")
    r = cli("evaluate", "run.batch_size=zero", "+colour=red", cwd=project)
    assert r.code == 2, r
    err = r.stderr
    assert "Traceback" not in err
    assert "5 problem(s)" in err
    assert "conf/metrics/mini.yaml @ metrics.exact.kind: unknown metric kind 'exakt_match'; " \
           "did you mean 'exact_match'?" in err
    assert "conf/metrics/mini.yaml @ metrics.found.normaliser: unknown key 'normaliser'; " \
           "did you mean 'normalizer'?" in err
    assert "conf/metrics/mini.yaml @ metrics.found.threshold: expected number, got str 'high'" in err
    assert "<command line: run.batch_size=zero> @ run.batch_size: expected integer" in err
    assert "@ colour: unknown key 'colour'" in err
    assert not (project / ".flywheel").exists()


def test_bad_config_leaves_an_existing_store_untouched(cli, project):
    assert cli("evaluate", cwd=project).code == 0
    store = project / ".flywheel" / "flywheel.duckdb"
    before = digest(store)
    r = cli("evaluate", "metrics.exact.kind=nope", cwd=project)
    assert r.code == 2 and "unknown metric kind 'nope'" in r.stderr
    assert digest(store) == before


def test_a_lone_surrogate_in_the_config_is_a_config_error(cli, project):
    """YAML's "\\ud800" (and an argument with bytes that are not UTF-8) make a string Python cannot encode:
    an error naming the file and key, not a crash when the config is hashed or stored."""
    (project / "conf" / "metrics" / "mini.yaml").write_text(
        'exact:\n  kind: exact_match\n  description: "half \\ud800 a pair"\n', encoding="utf-8")
    r = cli("evaluate", cwd=project)
    assert r.code == 2, r
    assert "conf/metrics/mini.yaml @ metrics.exact.description: holds a lone surrogate" in r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr


def test_unknown_dataset_name_in_a_metric_scope(cli, project):
    r = cli("evaluate", "+metrics.exact.datasets=[minii]", cwd=project)
    assert r.code == 2
    assert "metrics.exact.datasets[0]: unknown dataset 'minii'; did you mean 'mini'?" in r.stderr


def test_duplicate_metric_names_across_suites_are_reported(cli, project):
    (project / "conf" / "metrics" / "more.yaml").write_text("exact:\n  kind: exact_match\n")
    r = cli("evaluate", "metrics=[mini,more]", cwd=project)
    assert r.code == 2
    assert "'exact' is defined in both metrics/mini.yaml and metrics/more.yaml" in r.stderr


def test_unknown_group_option_is_a_clean_error(cli, project):
    r = cli("evaluate", "model=nope", cwd=project)
    assert r.code == 2 and "Traceback" not in r.stderr
    assert "Could not find 'model/nope'" in r.stderr and "lookup" in r.stderr


def test_a_named_conf_dir_that_does_not_exist_never_falls_back(cli, project):
    r = cli("evaluate", "--conf", "confs", cwd=project)
    assert r.code == 2
    assert "--conf confs: no such directory" in r.stderr and "project directory" in r.stderr
    assert not (project / ".flywheel").exists()


def test_project_conf_overrides_a_bundled_option_of_the_same_name(cli, project):
    # conf/dataset/support_qa.yaml in the project replaces the bundled one; the bundled one stays selectable
    (project / "conf" / "dataset" / "support_qa.yaml").write_text("support_qa:\n  path: data/mini.jsonl\n")
    r = cli("evaluate", "dataset=[support_qa]", "out=r.json", cwd=project)
    assert r.code == 0, r
    assert r.json["summary"][0]["n"] == 5


def test_bad_dataset_records_name_file_line_and_reason(cli, project):
    data = project / "data" / "mini.jsonl"
    lines = data.read_text().splitlines()
    lines[1] = '{"id": "m2", "input": "broken"'  # invalid JSON
    lines.append('{"id": "m1", "input": "dup"}')  # duplicate id
    lines.append('{"id": "m9", "input": 5, "tags": "billing"}')  # wrong types
    data.write_text("\n".join(lines) + "\n")
    r = cli("evaluate", cwd=project)
    assert r.code == 2, r
    assert "data/mini.jsonl:2: invalid JSON" in r.stderr
    assert "data/mini.jsonl:6: duplicate id 'm1' (first on line 1)" in r.stderr
    assert "data/mini.jsonl:7 @ input: expected ['string', 'object'], got int 5" in r.stderr
    assert "data/mini.jsonl:7 @ tags: expected array" in r.stderr
    assert not (project / ".flywheel").exists()


def test_store_records_schema_version_and_migrates_forward(tmp_path):
    import duckdb

    from engine.store import MIGRATIONS, Store

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))  # a store as the first release left it
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description VARCHAR, "
                "applied_at TIMESTAMPTZ DEFAULT now())")
    for statement in MIGRATIONS[0][2]:
        con.execute(statement)
    con.execute("INSERT INTO schema_migrations (version, description) VALUES (1, 'foundation')")
    con.close()
    with Store.open(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        versions = [v for (v,) in store.con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()]
        assert versions == sorted(m[0] for m in MIGRATIONS)
