"""Composed configs kept on disk, so a command does not pay Hydra's composition (~0.3 s) when nothing changed.

The key is everything composition reads: the bytes of every `.yaml` file along the search path (by position in
it and relative path, so two projects with the same files share an entry), the overrides that choose configs
(`challenger=NAME`, `dataset=[a,b]`), and the versions of Hydra, OmegaConf, Python and this cache's format.
Editing, adding or removing a config file changes the key; so does choosing another config. The entry holds the
config as composed, before the overrides of values (`out=x.json`, `gate.rules.r.bound=0.5`) and before
resolution (interpolations, `${oc.env:...}`), and the files loaded into each package. Hydra applies value
overrides after composing; so does a call served from the cache, with Hydra's code, then resolves: the
environment is read on every call.

An override of Hydra's own settings (`hydra.searchpath=...`) could make composition read files the key does
not cover: such a call composes without the cache, as does a sweep or a dict given to a config group. Entries
are JSON (nothing in the cache can run code), written atomically; an unreadable entry is composed again and
replaced. FLYWHEEL_COMPOSE_CACHE=0 turns the cache off; FLYWHEEL_CACHE_DIR moves it (default:
$XDG_CACHE_HOME/flywheel, else ~/.cache/flywheel).
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
    if os.environ.get("FLYWHEEL_COMPOSE_CACHE") == "0":
        return None
    explicit = os.environ.get("FLYWHEEL_CACHE_DIR")
    if explicit:
        return Path(explicit) / "compose"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "flywheel" / "compose"


def split_overrides(roots: list[Path], overrides: list[str]) -> tuple[list[str], list] | None:
    """(the overrides that choose configs, as written; Hydra's parsed overrides of values), or None when the
    call must compose without the cache: the cache is off, an override sets Hydra's own settings (it could
    make composition read files the key does not cover), is a sweep (Hydra refuses it), or gives a config
    group a dict.

    Hydra tells the two kinds apart the same way: an override whose key names a config group (a folder along
    the search path) or a package (`model@challenger=...`) chooses configs; any other sets a value, and Hydra
    applies those, in order, to the composed config (`ConfigLoaderImpl._apply_overrides_to_config`)."""
    if cache_dir() is None:
        return None
    from hydra.core.override_parser.overrides_parser import OverridesParser

    choices, values = [], []
    for override in OverridesParser.create().parse_overrides(overrides):
        name = override.key_or_group
        if override.is_sweep_override() or override.is_hydra_override() or name == "hydra":
            return None
        if override.package is not None or any(os.path.isdir(os.path.realpath(os.path.join(root, name)))
                                               for root in roots):
            if isinstance(override.value(), dict):
                return None
            choices.append(override.input_line)
        else:
            values.append(override)
    return choices, values


def apply_values(cfg, values: list) -> None:
    """Apply parsed overrides of values to a composed config as Hydra does after composing (root in struct
    mode, so a key that does not exist needs `+`): the same code, the same errors."""
    if not values:
        return
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from omegaconf import OmegaConf

    OmegaConf.set_struct(cfg, True)
    ConfigLoaderImpl._apply_overrides_to_config(values, cfg)


def key(roots: list[Path], overrides: list[str]) -> str:
    """The entry's name for composing `overrides` (those that choose configs) over `roots`, in search order."""
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


def load(name: str) -> tuple[Any, tuple[tuple[str, str], ...]] | None:
    """(the unresolved config as plain data, the files loaded) of a stored entry, or None."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        entry = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        return entry["config"], tuple((str(p), str(k)) for p, k in entry["loaded"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(name: str, config: Any, loaded: tuple[tuple[str, str], ...]) -> None:
    """Keep an entry (best effort: a cache that cannot be written only makes the next call slower). A config
    that JSON would not give back unchanged (a non-string key, NaN) is not kept."""
    folder = cache_dir()
    if folder is None:
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
