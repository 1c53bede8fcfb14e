"""Files a command writes: checked before anything runs, then written whole or not at all.

`check_output_paths` refuses (a UserError, exit 2) an output path (out=, report=, junit=, markdown=,
export_quarantine=, the files `simulate` writes) that is the store, its write-ahead log, a directory, an input
of the command (a config file, a dataset, replayed predictions, files being ingested, a label file) or another
output of the same command. Every writer then goes through `write_text` / `open_atomic`: the content goes to
a temporary file in the same directory, is flushed to disk and renamed over the target, so a crash, a full disk
or a bad result never leaves half a file, and registered secrets are scrubbed from text outputs
(engine/redaction.py).
"""
from __future__ import annotations

import glob
import os
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Iterator

from engine.errors import UserError
from engine.redaction import scrub

OUTPUT_KEYS = ("out", "report", "junit", "markdown", "export_quarantine")
_SIMULATED_FILES = ("traces", "traces_otlp", "feedback", "events")  # engine/simulate.py writes NAME.jsonl
_DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of a DuckDB database file


def output_path(value: str | os.PathLike, base: Path) -> Path:
    """An output path as given (`~` expanded), relative ones taken from `base` (the project directory)."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def quarantine_reasons_path(path: Path) -> Path:
    """The file beside a quarantine export that holds each record's reasons."""
    return path.with_name(path.stem + ".reasons.jsonl")


def configured_outputs(cfg) -> list[tuple[str, str]]:
    """(key as the user wrote it, path) of every output file the config asks for. `report=PATH` is short for
    `report.path=PATH`, so the report is named `report=` either way."""
    found = []
    for key in OUTPUT_KEYS:
        value = cfg.get(key)
        if isinstance(value, dict) or hasattr(value, "get"):  # `report: {path: ..., show_pii: ...}`
            value = value.get("path")
        if value:
            found.append((key, str(value)))
    return found


def check_output_paths(composed, command: str | None = None) -> None:
    """Refuse, before anything runs, every output path that would overwrite the store or an input."""
    from engine.evaluation import store_path

    cfg = composed.config
    base = composed.project.dir
    outputs: list[tuple[str, Path]] = []
    for key, value in configured_outputs(cfg):
        path = output_path(value, base)
        outputs.append((f"{key}={value}", path))
        if key == "export_quarantine":
            outputs.append((f"{key}={value} (its reasons file)", quarantine_reasons_path(path)))
    if command == "simulate" and isinstance(cfg.get("simulate"), dict):
        out_dir = output_path(cfg["simulate"].get("out_dir") or "data/production", base)
        outputs += [(f"simulate.out_dir={cfg['simulate'].get('out_dir')} ({name}.jsonl)", out_dir / f"{name}.jsonl")
                    for name in _SIMULATED_FILES]
    if not outputs:
        return
    store = store_path(cfg, composed.project) if isinstance(cfg.get("store"), dict) else None
    protected: list[tuple[str, Path]] = []
    if store is not None:
        protected += [("the store", store), ("the store's write-ahead log", store.with_name(store.name + ".wal"))]
    protected += [(f"an input of this command ({why})", path) for why, path in _inputs(composed)]
    problems = []
    for i, (given, path) in enumerate(outputs):
        if path.is_dir():
            problems.append(f"{given}: {path} is a directory; give a file path")
            continue
        clash = next((what for what, other in protected if _same_file(path, other)), None)
        if clash is None:
            clash = next((f"also the output {other_given}" for other_given, other in outputs[:i]
                          if _same_file(path, other)), None)
        if clash:
            problems.append(f"{given}: {path} is {clash}; refusing to overwrite it, choose another path")
    if problems:
        raise UserError("output path refused, nothing was run:\n  - " + "\n  - ".join(problems))


def _inputs(composed) -> Iterator[tuple[str, Path]]:
    """Files the command may read: config files, datasets, replayed predictions, ingested files, labels."""
    from engine.config import find_config_file
    from engine.paths import resolve_data_path

    cfg = composed.config
    base = composed.project.dir
    for config_path, _ in composed.loaded:
        found = find_config_file(composed.project, config_path)
        if found is not None:
            yield f"config {config_path}.yaml", found
    if composed.project.conf_dir is not None:
        yield "config config.yaml", composed.project.conf_dir / "config.yaml"
    for name, spec in (cfg.get("dataset") or {}).items():
        if isinstance(spec, dict) and isinstance(spec.get("path"), str):
            yield f"dataset {name}", resolve_data_path(spec["path"], base)
    for slot in ("model", "baseline", "challenger"):
        params = (cfg.get(slot) or {}).get("params") if isinstance(cfg.get(slot), dict) else None
        if isinstance(params, dict) and isinstance(params.get("path"), str):
            yield f"{slot} predictions", resolve_data_path(params["path"], base)
    ingest = cfg.get("ingest") if isinstance(cfg.get("ingest"), dict) else {}
    for given in (cfg.get("path"), ingest.get("path")):
        for value in given if isinstance(given, list) else [given]:
            if isinstance(value, str) and value:
                for path in _expand(output_path(value, base)):
                    yield "a file being ingested", path
    if isinstance(cfg.get("import_labels"), str):
        yield "the labels being imported", output_path(cfg["import_labels"], base)


def _expand(path: Path) -> list[Path]:
    if path.is_dir():
        return [p for p in path.rglob("*") if p.is_file()]
    if any(ch in str(path) for ch in "*?["):
        return [Path(p) for p in glob.glob(str(path), recursive=True)]
    return [path]


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links, bind mounts
    except OSError:
        return False


def write_text(path: Path, text: str) -> Path:
    """Write a text output atomically, with registered secrets scrubbed. Returns `path`."""
    with open_atomic(path) as f:
        f.write(scrub(text))
    return path


@contextmanager
def open_atomic(path: Path, newline: str | None = None) -> Iterator[IO[str]]:
    """A text file handle whose content replaces `path` only when the block ends without an error."""
    target = Path(os.path.realpath(path))  # a symlinked output updates what it points to
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir():
        raise UserError(f"cannot write {path}: it is a directory")
    if _is_duckdb_file(target):
        raise UserError(f"refusing to overwrite {path}: it is a DuckDB database")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def _is_duckdb_file(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(12)[8:12] == _DUCKDB_MAGIC
    except OSError:
        return False


def _mode_for(target: Path) -> int:
    """Keep an existing file's permissions; a new one gets what open() would give it (0666 minus the umask)."""
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
