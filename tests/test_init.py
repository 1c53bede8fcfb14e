"""`flywheel init`: a working project skeleton, and it never overwrites what is there unless asked."""
from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from engine.commands.init import template_files
from engine.schemas import load_schema

REPO = Path(__file__).resolve().parent.parent


def test_init_writes_a_project_where_evaluate_and_gate_run_at_once(cli, tmp_path):
    project = tmp_path / "helpdesk"  # does not exist yet: init creates it
    r = cli("init", str(project), cwd=tmp_path)
    assert r.code == 0, r
    written = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())
    assert written == sorted(template_files())
    assert "flywheel evaluate" in r.stdout and "flywheel gate" in r.stdout

    ev = cli("evaluate", "out=evaluate.json", cwd=project)
    assert ev.code == 0, ev
    result = ev.json
    Draft202012Validator(load_schema("evaluate_result")).validate(result)
    assert set(result["dataset_versions"]) == {"golden", "red_team"}
    tags = {r["tag"] for r in result["summary"] if r["dataset"] == "golden"} - {None}
    assert tags == {"account", "billing", "returns", "shipping"}
    refusal = next(r for r in result["summary"] if r["metric"] == "refusal" and r["tag"] is None)
    assert refusal["dataset"] == "red_team" and refusal["n"] == 2 and refusal["mean"] == 1.0

    gate = cli("gate", "out=gate.json", cwd=project)
    assert gate.code == 0, gate  # the stub challenger answers six more questions and regresses on none
    g = gate.json
    assert g["verdict"] == "PASS" and g["challenger"]["name"] == "my_model_v2" and g["baseline"]["name"] == "my_model"
    assert {r["name"] for r in g["rules"]} == {"accuracy_improves", "no_regressions", "safety_suite",
                                              "refuses_red_team", "error_rate", "p95_latency"}

    # monitor and bridge configs refer to the project's own suite, not the bundled demo's metrics
    for command in ("monitor", "bridge"):
        shown = cli("config", command, cwd=project)
        assert shown.code == 0, shown
        cfg = yaml.safe_load(shown.stdout)
        assert set(cfg["metrics"]) == {"accuracy", "token_f1", "relevance", "safety", "refusal", "latency",
                                       "error_rate"}
    assert set(cfg["monitor"]["online"]["metrics"]) <= set(cfg["metrics"])
    assert cfg["monitor"]["parity"]["accuracy"]["lab_metric"] == "accuracy"
    assert cfg["bridge"]["golden"]["dataset"] == "golden"
    assert "# conf/monitor/my_monitor.yaml" in shown.stdout and "# conf/bridge/my_bridge.yaml" in shown.stdout


def test_init_refuses_to_overwrite_and_force_does(cli, tmp_path):
    assert cli("init", cwd=tmp_path).code == 0
    model = tmp_path / "my_model.py"
    model.write_text("# my own model\n", encoding="utf-8")
    gate = tmp_path / "conf" / "gate" / "my_gate.yaml"
    gate.write_text("rules: {}\n", encoding="utf-8")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    r = cli("init", cwd=tmp_path)
    assert r.code == 2, r
    assert "2 file(s) already exist" in r.stderr and "my_model.py" in r.stderr and "conf/gate/my_gate.yaml" in r.stderr
    assert "--force" in r.stderr and "Traceback" not in r.stderr
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # nothing written

    r = cli("init", ".", "--force", cwd=tmp_path)
    assert r.code == 0, r
    assert "(2 overwritten)" in r.stdout
    assert model.read_bytes() == template_files()["my_model.py"]
    assert gate.read_bytes() == template_files()["conf/gate/my_gate.yaml"]


def test_identical_files_are_not_conflicts_and_unknown_options_are_refused(cli, tmp_path):
    assert cli("init", cwd=tmp_path).code == 0
    again = cli("init", cwd=tmp_path)
    assert again.code == 0 and "0 file(s) written" in again.stdout, again
    bad = cli("init", "--frce", cwd=tmp_path)
    assert bad.code == 2 and "unknown option --frce" in bad.stderr
    (tmp_path / "a_file").write_text("x")
    assert cli("init", "a_file", cwd=tmp_path).code == 2


def test_every_template_file_ships_in_the_wheel():
    """pyproject's package-data globs for engine.templates match every file `init` writes."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    from setuptools import find_namespace_packages  # setup.py's package discovery

    assert "engine.templates" in find_namespace_packages(where=str(REPO), include=["engine", "engine.*"])
    globs = config["package-data"]["engine.templates"]
    for relative in template_files():
        shipped = f"project/{relative}"
        assert any(fnmatch.fnmatch(shipped, g) and shipped.count("/") == g.count("/") for g in globs), shipped
