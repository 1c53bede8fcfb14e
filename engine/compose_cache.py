"""Composed configs kept on disk, so a command does not pay Hydra's composition (~0.3 s) when nothing changed.

The key is everything composition reads: the bytes of every `.yaml` file along the search path (by position in
it and relative path, so two projects with the same files share an entry), the overrides, and the versions of
Hydra, OmegaConf, Python and this cache's format. Editing, adding or removing a config file changes the key; so
does any override. The entry holds the config *before* resolution (interpolations, `${oc.env:...}`) and the
files loaded into each package; resolution runs on every call, so the environment is read each time.

An override of Hydra's own settings (`hydra.searchpath=...`) could make composition read files the key does
not cover: such a call composes without the cache. Entries are JSON (nothing in the cache can run code), written
atomically; an unreadable entry is composed again and replaced. FLYWHEEL_COMPOSE_CACHE=0 turns the cache off;
FLYWHEEL_CACHE_DIR moves it (default: $XDG_CACHE_HOME/flywheel, else ~/.cache/flywheel).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

FORMAT = 1
KEEP_ENTRIES = 256  # the newest entries kept; older ones are removed when a new one is written


def cache_dir() -> Path | None:
    if os.environ.get("FLYWHEEL_COMPOSE_CACHE", "1") == "0":
        return None
    explicit = os.environ.get("FLYWHEEL_CACHE_DIR")
    if explicit:
        return Path(explicit) / "compose"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "flywheel" / "compose"


def key(roots: list[Path], overrides: list[str]) -> str | None:
    """The entry's name for composing `overrides` over `roots` (in search order), or None when it cannot be
    cached (an override of Hydra's own settings)."""
    if any(ov.lstrip("~+").startswith("hydra.") or ov.lstrip("~+").startswith("hydra/") for ov in overrides):
        return None
    import hydra
    import omegaconf

    h = hashlib.sha256()
    h.update(json.dumps([FORMAT, hydra.__version__, omegaconf.__version__, sys.version, overrides]).encode())
    for position, root in enumerate(roots):
        for relative, path in _yaml_files(root):
            h.update(f"\0{position}\0{relative}\0{path.stat().st_size}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _yaml_files(root: Path) -> list[tuple[str, Path]]:
    """Every .yaml file under root (symlinked folders followed, as Hydra follows them), sorted."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        for name in files:
            if name.endswith(".yaml"):
                path = Path(folder) / name
                found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def load(name: str | None) -> tuple[Any, tuple[tuple[str, str], ...]] | None:
    """(the unresolved config as plain data, the files loaded) of a stored entry, or None."""
    folder = cache_dir()
    if name is None or folder is None:
        return None
    try:
        entry = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        return entry["config"], tuple((str(p), str(k)) for p, k in entry["loaded"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(name: str | None, config: Any, loaded: tuple[tuple[str, str], ...]) -> None:
    """Keep an entry (best effort: a cache that cannot be written only makes the next call slower). A config
    that JSON would not give back unchanged (a non-string key, NaN) is not kept."""
    folder = cache_dir()
    if name is None or folder is None:
        return
    try:
        text = json.dumps({"config": config, "loaded": [list(x) for x in loaded]}, ensure_ascii=False)
        if json.loads(text)["config"] != config:
            return
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, folder / f"{name}.json")
        _prune(folder)
    except (OSError, TypeError, ValueError):
        return


def _prune(folder: Path) -> None:
    entries = list(folder.glob("*.json"))
    if len(entries) <= KEEP_ENTRIES:
        return
    by_age = sorted(entries, key=lambda p: p.stat().st_mtime)
    for old in by_age[:len(entries) - KEEP_ENTRIES]:
        old.unlink(missing_ok=True)
