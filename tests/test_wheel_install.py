"""The built wheel, installed in a clean virtualenv with its declared dependencies from the package index (no
borrowed site-packages), runs `flywheel evaluate` and `flywheel gate` in a directory outside the repository.
And every third-party module the engine imports is a declared dependency."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# import name -> distribution name, where they differ
_DISTRIBUTION = {"yaml": "pyyaml", "hydra": "hydra-core"}


def _declared() -> set[str]:
    """The dependencies, and the extras a feature asks for (`spark`: backend=spark imports pyspark only then);
    not the test extras."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = [r for name, reqs in project.get("optional-dependencies", {}).items() if name != "test" for r in reqs]
    names = set()
    for requirement in project["dependencies"] + extras:
        name = requirement
        for stop in "<>=!~[; ":
            name = name.split(stop)[0]
        names.add(name.strip().lower())
    return names


def _imported() -> dict[str, str]:
    """Top-level third-party modules imported anywhere in engine/ (lazy imports inside functions included)."""
    found: dict[str, str] = {}
    for path in sorted((REPO / "engine").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                     else [])
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("engine", "__future__"):
                    found.setdefault(top, str(path.relative_to(REPO)))
    return found


def test_every_runtime_import_is_a_declared_dependency():
    imported = _imported()
    assert {"numpy", "duckdb", "sqlglot", "hydra"} <= set(imported)
    missing = {name: where for name, where in imported.items()
               if _DISTRIBUTION.get(name, name).lower() not in _declared()}
    assert missing == {}, f"imported by the engine but not in [project].dependencies: {missing}"


def _run(args: list, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{args}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_wheel_installs_with_its_dependencies_and_runs_outside_the_repo(tmp_path):
    wheel_dir = tmp_path / "wheel"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", wheel_dir,
          REPO], cwd=tmp_path)
    wheel = next(wheel_dir.glob("*.whl"))
    packed = set(zipfile.ZipFile(wheel).namelist())
    sources = {str(p.relative_to(REPO)) for p in (REPO / "engine").rglob("*.py") if "__pycache__" not in p.parts}
    assert sources - packed == set(), "modules missing from the wheel"
    assert {"engine/conf/config.yaml", "engine/conf/model/bm25_clean.yaml", "engine/schema_files/case.schema.json",
            "engine/bundled_datasets/support/golden_qa.jsonl"} <= packed

    # A clean environment: no PYTHONPATH, no user site, no outer site-packages. Dependencies come from the
    # package index (pip's cache makes repeated runs quick). The venv gets no pip of its own (seeding one costs
    # ~4 s of CPU): this pip installs into it (`--python`), without compiling every dependency's bytecode ahead
    # (~5 s of CPU; the few modules the commands below import are compiled as they are imported).
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], env=env)
    py = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", py]
    _run([*pip, "install", "--quiet", "--no-compile", wheel], env=env)
    _run([*pip, "check"], env=env)  # every declared dependency installed and consistent
    assert not (venv / "bin" / "pip").exists()  # nothing but the wheel and its dependencies in the venv
    outer = [p for p in sys.path if p.endswith("site-packages")]
    inner_path = json.loads(_run([py, "-c", "import json, sys; print(json.dumps(sys.path))"], env=env).stdout)
    assert not set(outer) & set(inner_path), "the clean venv sees the test environment's packages"

    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    where = _run([py, "-c", "import engine, numpy, engine.paths as p; print(engine.__file__); "
                  "print(numpy.__file__); print(p.bundled_conf_dir()); print(p.bundled_datasets_dir())"],
                 cwd=workdir, env=env).stdout.split()
    assert all(w.startswith(str(venv)) for w in where), where  # the installed copies, not the source tree

    flywheel = venv / "bin" / "flywheel"
    evaluate = subprocess.run([flywheel, "evaluate", "model=keyword_baseline", "dataset=[support_qa]",
                               "run.progress=false", "out=result.json"],
                              cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert evaluate.returncode == 0, evaluate.stdout + evaluate.stderr
    result = json.loads((workdir / "result.json").read_text())
    assert result["model"]["name"] == "keyword_baseline"
    assert "support_qa" in result["dataset_versions"]
    assert (workdir / ".flywheel" / "flywheel.duckdb").is_file()
    # the gate's statistics (numpy): what failed with "No module named 'numpy'" before it was declared
    gate = subprocess.run([flywheel, "gate", "challenger=bm25_clean", "baseline=keyword_baseline",
                           "dataset=[support_safety]", "run.progress=false", "out=gate.json"],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert gate.returncode in (0, 1), gate.stdout + gate.stderr  # PASS or BLOCKED, a verdict either way
    assert json.loads((workdir / "gate.json").read_text())["verdict"] in ("PASS", "BLOCKED")
