"""The built wheel (non-editable) carries conf/, schemas/ and the bundled datasets: evaluate runs from it
in a directory outside the repository."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_install_runs_evaluate_outside_the_repo(tmp_path):
    wheel_dir = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "-w", str(wheel_dir), str(REPO)], check=True, cwd=tmp_path)
    wheel = next(wheel_dir.glob("*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # Install the wheel itself (console script included); borrow the dependencies (duckdb, hydra, ...) from
    # the outer environment through a .pth line rather than downloading them again. A path added by a .pth
    # is not a site dir, so the outer editable install's finder is not activated.
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True)
    (site / "outer_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    where = subprocess.run([str(py), "-c", "import engine, engine.paths as p; print(engine.__file__); "
                            "print(p.bundled_conf_dir()); print(p.bundled_datasets_dir())"],
                           cwd=workdir, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(str(venv) in w for w in where), where  # the installed copy, not the source tree

    flywheel = venv / "bin" / "flywheel"
    proc = subprocess.run([str(flywheel), "evaluate", "model=keyword_baseline", "dataset=[support_qa]",
                           "run.progress=false", "out=result.json"],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((workdir / "result.json").read_text())
    assert result["model"]["name"] == "keyword_baseline"
    assert "support_qa" in result["dataset_versions"]
    assert (workdir / ".flywheel" / "flywheel.duckdb").is_file()
