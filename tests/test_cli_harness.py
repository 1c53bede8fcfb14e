"""The tests' CLI harness: a call forked from the zygote (tests/cli_zygote.py) behaves exactly as
`python -m engine` in a subprocess: same exit code, stdout and stderr, same environment and working directory."""
from __future__ import annotations

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize("args", [("--help",), ("evaluate", "model=no_such_model"), ("datasets", "list"),
                                  ("config", "evaluate"), ("evaluate", "out=r.json")])
def test_a_forked_call_is_a_subprocess_call(project, monkeypatch, args):
    env = {"FLYWHEEL_HARNESS_PROBE": "ünïcode ✓"}
    forked = run_cli(*args, cwd=project, env=env)
    monkeypatch.setenv("FLYWHEEL_TEST_SUBPROCESS", "1")
    spawned = run_cli(*args, cwd=project, env=env)
    assert (forked.code, forked.stderr) == (spawned.code, spawned.stderr)
    # the evaluate result names its run id and times; everything else is the same
    mask = (lambda text: "\n".join(line for line in text.splitlines() if "run evaluate-" not in line))
    assert mask(forked.stdout) == mask(spawned.stdout)
    assert forked.stdout or forked.stderr  # said something


def test_a_forked_call_sees_its_environment_and_directory(project):
    (project / "conf" / "config.yaml").write_text(
        (project / "conf" / "config.yaml").read_text(encoding="utf-8")
        + "store:\n  path: ${oc.env:FLYWHEEL_HARNESS_STORE}\n", encoding="utf-8")
    r = run_cli("evaluate", cwd=project, env={"FLYWHEEL_HARNESS_STORE": "elsewhere/s.duckdb"})
    assert r.code == 0, r
    assert (project / "elsewhere" / "s.duckdb").is_file()
