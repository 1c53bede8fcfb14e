"""Golden files already loaded are not parsed again: their exact bytes name their stored version.

Parsing and validating a golden file costs microseconds per case in Python (seconds for a million cases), and
an unchanged file always makes the same version. So the sha256 of a file's bytes, with the rules it was
validated by (`LOADER`), is recorded beside the version it made (`dataset_files`). A later run that finds the
same bytes takes the version from the store, and its cases from the store's `cases` table; the file is parsed
again only if something needs the case objects (a model to call for a case whose output is not cached, the
bridge), and then it must give the same version.
"""
from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path

from engine import datasets as ds
from engine.executor import execute
from engine.paths import resolve_data_path, schemas_dir
from engine.provenance import content_hash, file_sha256
from engine.sql import statement

# Change `rules` whenever what a golden file must satisfy changes outside the case schema (the JSON Lines
# reader's strictness, the fields a Case is made of): recorded files are then validated again.
LOADER = content_hash({"case_schema": hashlib.sha256((schemas_dir() / "case.schema.json").read_bytes()).hexdigest(),
                       "rules": "strict-jsonl-1, agent-tasks-1"}, length=16)  # agent-tasks: engine/agents/cases.py


class FileVersion:
    """A dataset version read from a golden file; `cases` are parsed on first use when the file was known."""

    def __init__(self, name: str, version: str, source: str, path: Path, file_sha256: str,
                 parsed: ds.DatasetVersion | None = None):
        self.name, self.version, self.source, self.path, self.file_sha256 = name, version, source, path, file_sha256
        if parsed is not None:
            self.__dict__["cases"] = parsed.cases

    @cached_property
    def cases(self) -> tuple[ds.Case, ...]:
        loaded = ds.load_file(self.name, self.path, self.source)
        if loaded.version != self.version:  # the file changed under a running command
            from engine.errors import UserError
            raise UserError(f"dataset '{self.name}': {self.source} changed while Flywheel was reading it "
                            f"(version {self.version}, now {loaded.version}); run the command again")
        return loaded.cases


def load_datasets(cfg: dict, project, store_path: Path) -> list[FileVersion]:
    """Every configured dataset: known files by their digest (a short read of the store), others parsed and
    validated (bad data fails here, with file, line and reason)."""
    files = {name: resolve_data_path(spec["path"], project.dir) for name, spec in cfg["dataset"].items()}
    digests = {name: file_sha256(path) for name, path in files.items() if path.is_file()}
    known = _known_versions(store_path, set(digests.values()))
    out = []
    for name, spec in cfg["dataset"].items():
        version = known.get(digests.get(name))
        if version is not None:
            out.append(FileVersion(name, version, spec["path"], files[name], digests[name]))
        else:
            parsed = ds.load(name, spec, project.dir)
            out.append(FileVersion(name, parsed.version, parsed.source, files[name], digests[name], parsed))
    return out


_KNOWN_FILES = statement("datasets:known_files", "SELECT file_sha256, dataset_version FROM dataset_files "
                         "WHERE loader = $loader AND list_contains($digests, file_sha256)",
                         "dataset files parsed before, by their digest")
_REMEMBER_FILE = statement("datasets:remember_file", "INSERT INTO dataset_files VALUES ($digest, $loader, $version) "
                           "ON CONFLICT DO NOTHING", "a dataset file's digest and the version it holds")


def _known_versions(store_path: Path, digests: set[str]) -> dict[str, str]:
    if not digests or not store_path.exists():
        return {}
    import duckdb

    from engine.store import Store

    with Store.open(store_path, read_only=True) as store:
        try:
            rows = [tuple(r.values()) for r in execute(store.con, _KNOWN_FILES,
                                                       {"loader": LOADER, "digests": sorted(digests)})]
        except duckdb.CatalogException:  # a store from before dataset_files (migrated on its next write)
            return {}
    return dict(rows)


def remember_files(store, datasets) -> None:
    """Record the digest of each dataset file loaded (inside the caller's transaction)."""
    for d in datasets:
        digest = getattr(d, "file_sha256", None)
        if digest:
            execute(store.con, _REMEMBER_FILE, {"digest": digest, "loader": LOADER, "version": d.version})
