"""Package discovery for setuptools (everything else is in pyproject.toml).

setuptools finds every package under engine/ (folders with or without __init__.py). The top-level conf/,
schemas/ and datasets/ folders (the product's layout) ship inside the package as engine.conf,
engine.schema_files and engine.bundled_datasets, so Hydra and the loaders find them in a wheel and in an
editable install alike (engine/paths.py). pyproject.toml cannot express both at once, hence this file.
"""
from setuptools import find_namespace_packages, setup

BUNDLED = {"engine.conf": "conf", "engine.schema_files": "schemas", "engine.bundled_datasets": "datasets"}


def _bundled_packages(package: str, folder: str) -> list[str]:
    """`package` and one subpackage per subfolder of `folder` (e.g. engine.conf.model for conf/model/)."""
    return [package] + [f"{package}.{sub}" for sub in find_namespace_packages(where=folder, exclude=["*__pycache__*"])]


setup(
    packages=find_namespace_packages(include=["engine", "engine.*"], exclude=["*.__pycache__"])
    + [name for package, folder in BUNDLED.items() for name in _bundled_packages(package, folder)],
    package_dir=BUNDLED,
)
