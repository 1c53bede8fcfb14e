"""Where bundled resources live, for both an editable install and a built wheel.

The top-level `conf/`, `schemas/` and `datasets/` folders are mapped into the wheel as the packages
`engine.conf`, `engine.schema_files` and `engine.bundled_datasets` (see pyproject.toml), so they are found through
importlib.resources in either case.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

BUNDLED_PREFIX = "bundled:"


def _package_dir(package: str, repo_folder: str) -> Path:
    try:
        path = Path(str(resources.files(package)))
        if path.is_dir():
            return path
    except (ModuleNotFoundError, TypeError):
        pass
    # Running from a source checkout without an install: the folders sit beside engine/.
    return Path(__file__).resolve().parent.parent / repo_folder


def bundled_conf_dir() -> Path:
    return _package_dir("engine.conf", "conf")


def schemas_dir() -> Path:
    return _package_dir("engine.schema_files", "schemas")


def bundled_datasets_dir() -> Path:
    return _package_dir("engine.bundled_datasets", "datasets")


def resolve_data_path(path: str, project_dir: Path | None = None) -> Path:
    """`bundled:support/kb.jsonl` names a file shipped with Flywheel; anything else is a path relative to
    the project directory (the current directory by default)."""
    if path.startswith(BUNDLED_PREFIX):
        return bundled_datasets_dir() / path[len(BUNDLED_PREFIX):]
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    return (project_dir or Path.cwd()) / p
