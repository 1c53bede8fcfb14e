"""Hydra composition: find the user's project, compose its config over the bundled tree, resolve to plain data.

Search order: the project's `conf/` (if any), then the bundled `conf/` shipped inside the package. A config
file in the project with the same group and name as a bundled one replaces it; everything else is still
available to compose from. The entry config (engine/_launcher/flywheel.yaml) only says `defaults: [config]`,
so a project's `conf/config.yaml` is used when present and the bundled one otherwise.
"""
from __future__ import annotations

import json
import re
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import compose_cache, yaml_fast
from engine.errors import UserError
from engine.paths import bundled_conf_dir

LAUNCHER_DIR = Path(__file__).resolve().parent / "_launcher"
ENTRY_CONFIG = "flywheel"

# `challenger=NAME` is shorthand for Hydra's `model@challenger=NAME` (pick a file from conf/model/ into the
# `challenger` node); the same for `baseline`. `challenger.params.top_k=3` is a value override and is kept.
_MODEL_SLOTS = ("challenger", "baseline")
_SLOT_OVERRIDE = re.compile(r"^(?P<prefix>[~+]{0,2})(?P<slot>challenger|baseline)=(?P<value>.*)$")
# `report=PATH` is shorthand for `report.path=PATH` (the report section also holds `show_pii`).
_REPORT_OVERRIDE = re.compile(r"^(?P<prefix>\+{0,2})report=(?P<value>[^{].*|)$")


@dataclass(frozen=True)
class Project:
    dir: Path  # where the store and relative paths live
    conf_dir: Path | None  # the project's own config tree, searched before the bundled one

    def search_path(self) -> list[Path]:
        return ([self.conf_dir] if self.conf_dir else []) + [bundled_conf_dir()]


def find_project(project_dir: str | None = None, conf_dir: str | None = None) -> Project:
    """The current directory is the project unless --project says otherwise. Its `conf/` is used when present.

    An explicitly named directory that does not exist is an error, never a silent fall-back to the bundled
    config."""
    base = Path(project_dir).expanduser().resolve() if project_dir else Path.cwd()
    if project_dir and not base.is_dir():
        raise UserError(f"--project {project_dir}: no such directory ({base})")
    if conf_dir:
        conf = Path(conf_dir).expanduser()
        conf = conf if conf.is_absolute() else base / conf
        if not conf.is_dir():
            raise UserError(f"--conf {conf_dir}: no such directory ({conf.resolve()}); "
                            f"a relative path is taken from the project directory {base}")
        return Project(base, conf.resolve())
    default_conf = base / "conf"
    return Project(base, default_conf.resolve() if default_conf.is_dir() else None)


def rewrite_overrides(overrides: list[str]) -> list[str]:
    out = []
    for ov in overrides:
        m = _SLOT_OVERRIDE.match(ov)
        r = _REPORT_OVERRIDE.match(ov)
        out.append(f"{m['prefix']}model@{m['slot']}={m['value']}" if m else
                   f"report.path={r['value']}" if r else ov)
    return out


def hydra_overrides(project: Project, overrides: list[str]) -> list[str]:
    search = ",".join(f"file://{p}" for p in project.search_path())
    return [f"hydra.searchpath=[{search}]"] + rewrite_overrides(overrides)


@dataclass(frozen=True)
class Composed:
    """A composed config as plain data, plus what is needed to say where each key came from."""

    config: dict[str, Any]
    loaded: tuple[tuple[str, str], ...]  # (config path like "metrics/mini", package like "metrics"), in order
    overrides: tuple[str, ...]
    project: Project
    args: tuple[str, ...] = ()  # positional arguments of commands that take them (`datasets diff A B`)

    def source_of(self, key_path: str) -> str:
        """The config file (or command-line override) a dotted key path most likely came from."""
        return source_of(key_path, self)

    def known_dataset_names(self) -> list[str]:
        """Every dataset name defined along the search path, selected or not: a scope naming one of them is
        legitimate (it just matches nothing when that dataset is not selected); anything else is a typo."""
        names = set(self.config.get("dataset") or {})
        for root in self.project.search_path():
            for path in sorted((root / "dataset").glob("*.yaml")):
                content = yaml_fast.safe_load(path.read_text(encoding="utf-8")) or {}
                names.update(k for k in content if k != "defaults") if isinstance(content, dict) else None
        return sorted(names)

    def files_of_group(self, package: str) -> list[tuple[str, Path]]:
        """(option name, file) of every config loaded into `package`, e.g. all selected metric suites."""
        out = []
        for config_path, pkg in self.loaded:
            if pkg == package and "/" in config_path:
                found = find_config_file(self.project, config_path)
                if found:
                    out.append((config_path.rsplit("/", 1)[1], found))
        return out


# The config the running command validated: lets code far from the CLI (a model adapter failing to import its
# `_target_`) name the YAML file and key a value came from.
_ACTIVE: ContextVar[Composed | None] = ContextVar("flywheel_active_config", default=None)


def activate(composed: Composed) -> None:
    _ACTIVE.set(composed)


def active_config() -> Composed | None:
    return _ACTIVE.get()


def compose(project: Project, overrides: list[str]) -> Composed:
    """The project's config composed by Hydra with the overrides, resolved to plain data.

    What Hydra composes from the files and the overrides that choose configs (`challenger=NAME`, `dataset=[...]`)
    is kept on disk (engine/compose_cache.py); the overrides of values (`out=...`, `gate.rules.x.bound=0.5`) are
    then applied by Hydra's own code, as Hydra applies them after composing; resolution runs every time."""
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    rewritten = rewrite_overrides(overrides)
    roots = [LAUNCHER_DIR, *project.search_path()]
    try:
        split = compose_cache.split_overrides(roots, rewritten)
        if split is None:
            cfg, loaded = _hydra_compose(project, rewritten)
        else:
            choices, values = split
            key = compose_cache.key(roots, choices)
            cached = compose_cache.load(key)
            if cached is not None and not values and "${" not in json.dumps(cached[0]):
                return Composed(cached[0], cached[1], tuple(overrides), project)  # nothing to resolve or apply
            if cached is not None:
                cfg, loaded = OmegaConf.create(cached[0]), cached[1]
            else:
                cfg, loaded = _hydra_compose(project, choices)
                compose_cache.store(key, OmegaConf.to_container(cfg, resolve=False), loaded)
            compose_cache.apply_values(cfg, values)
        plain = resolve(cfg)
    except (HydraException, OmegaConfBaseException) as e:
        raise UserError(f"cannot compose the configuration: {_first_line_block(e)}") from e
    return Composed(plain, loaded, tuple(overrides), project)


def _hydra_compose(project: Project, overrides: list[str]):
    """(Hydra's composed config, the (config path, package) of every file loaded), overrides already rewritten."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    full_overrides = hydra_overrides(project, overrides)  # rewriting rewritten overrides changes nothing
    with initialize_config_dir(config_dir=str(LAUNCHER_DIR), version_base="1.3"), \
            _capturing_defaults_list() as captured, yaml_fast.omegaconf_parsing():
        cfg = hydra_compose(ENTRY_CONFIG, overrides=full_overrides)
        # Which files were loaded into which package, for error messages (Hydra keeps no per-key origin):
        # the defaults list Hydra composed with, else computed again (a second pass over every file)
        defaults = captured[-1].defaults if captured else GlobalHydra.instance().config_loader(
            ).compute_defaults_list(ENTRY_CONFIG, full_overrides, RunMode.RUN).defaults
    loaded = tuple((d.config_path, d.package or "") for d in defaults
                   if d.config_path and not d.config_path.startswith("hydra/") and d.package != "hydra")
    return cfg, loaded


@contextmanager
def _capturing_defaults_list():
    """Record the defaults lists Hydra builds while composing (its `create_defaults_list`, wrapped for the
    duration), so the files loaded need not be computed a second time: that pass costs as much as composing."""
    from hydra._internal import config_loader_impl

    original = config_loader_impl.create_defaults_list
    captured: list = []

    def recording(*args, **kwargs):
        result = original(*args, **kwargs)
        captured.append(result)
        return result

    config_loader_impl.create_defaults_list = recording
    try:
        yield captured
    finally:
        config_loader_impl.create_defaults_list = original


def resolve(cfg) -> dict[str, Any]:
    """The config as plain data. Every value resolved from the environment (`${oc.env:...}`, directly or
    through another key) is registered as a secret, so that it is stored and printed only as a fingerprint
    (engine/redaction.py)."""
    import os

    from omegaconf import OmegaConf
    from omegaconf.resolvers import oc

    from engine.redaction import mark_secret, register_secret

    from_environment: list[str] = []

    def tracking_env(key, *default):
        value = oc.env(key, *default)
        if key in os.environ:
            from_environment.append(os.environ[key])
        return value

    OmegaConf.register_new_resolver("oc.env", tracking_env, replace=True)
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    finally:
        OmegaConf.register_new_resolver("oc.env", oc.env, replace=True)
    for value in from_environment:
        register_secret(value)
    # A leaf interpolating another key that read the environment (`b: ${a.salt}`) is found by its value; only
    # values of 6 characters or more, so that an environment value like "1" does not mark every 1.
    return _mark_environment_values(OmegaConf.to_container(cfg, resolve=False), plain,
                                    [v for v in from_environment if len(v) >= 6], mark_secret)


def _mark_environment_values(raw: Any, plain: Any, environment_values: list[str], mark):
    """`plain` with every leaf whose unresolved text is an interpolation that read the environment marked."""
    if isinstance(raw, dict) and isinstance(plain, dict):
        return {key: _mark_environment_values(raw.get(key), value, environment_values, mark)
                for key, value in plain.items()}
    if isinstance(raw, list) and isinstance(plain, list) and len(raw) == len(plain):
        return [_mark_environment_values(r, p, environment_values, mark) for r, p in zip(raw, plain)]
    if isinstance(raw, str) and "${" in raw and (
            "oc.env" in raw or any(v in str(plain) for v in environment_values)):
        return _mark_all(plain, mark)
    return plain


def _mark_all(value: Any, mark):
    if isinstance(value, dict):
        return {k: _mark_all(v, mark) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark_all(v, mark) for v in value]
    return mark(value)


def _first_line_block(e: Exception) -> str:
    # Hydra appends the whole search path to some messages; the first paragraph is what matters.
    return str(e).split("\nConfig search path:")[0].strip()


def find_config_file(project: Project, config_path: str) -> Path | None:
    """`metrics/mini` -> the first conf/metrics/mini.yaml along the search path."""
    for root in project.search_path():
        candidate = root / f"{config_path}.yaml"
        if candidate.is_file():
            return candidate
    return None


def _display(path: Path, project: Project) -> str:
    try:
        return str(path.relative_to(project.dir))
    except ValueError:
        bundled = bundled_conf_dir()
        try:
            return f"conf/{path.relative_to(bundled)} (bundled)"
        except ValueError:
            return str(path)


def _defines(path: Path, key: str) -> bool:
    return bool(key) and re.search(rf"^{re.escape(key)}\s*:", path.read_text(encoding="utf-8"), re.M) is not None


_PARENT = re.compile(r"(\.[^.\[]*|\[[^\]]*\])$")


def _is_group_selection(override: str, project: Project) -> bool:
    """`challenger=x`, `dataset=[a,b]`, `model@baseline=y`: picks config files, it sets no value itself."""
    key = override.lstrip("+~").split("=", 1)[0]
    group = key.split("@", 1)[0]
    if group in _MODEL_SLOTS:
        return True
    return "." not in group and any((root / group).is_dir() for root in project.search_path())


def key_origins(composed: Composed) -> dict[str, str]:
    """dotted key path -> the config file (or command-line override) that set it last, for every key of every
    loaded file. Files are read in Hydra's merge order (`loaded`), so a later file overriding a key wins; a list
    is one value (Hydra replaces lists whole)."""
    origins: dict[str, str] = {}

    def record(prefix: str, node: dict, shown: str) -> None:
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            origins[path] = shown
            if isinstance(value, dict):
                record(path, value, shown)

    for config_path, package in composed.loaded:
        path = find_config_file(composed.project, config_path)
        if path is None:
            continue
        content = yaml_fast.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(content, dict):
            record(package, {k: v for k, v in content.items() if k != "defaults"}, _display(path, composed.project))
    for ov in rewrite_overrides(list(composed.overrides)):
        if _is_group_selection(ov, composed.project) or ov.startswith("~"):
            continue
        key = ov.lstrip("+").split("=", 1)[0]
        shown = f"<command line: {ov}>"
        for path in [p for p in origins if p.startswith(key + ".")]:
            origins[path] = shown
        origins[key] = shown
    return origins


def source_of(key_path: str, composed: Composed) -> str:
    """The file (or command-line override) that set `key_path`, or that defines its nearest parent."""
    origins = key_origins(composed)
    probe = key_path
    while probe:
        if probe in origins:
            return origins[probe]
        shorter = _PARENT.sub("", probe)
        if shorter == probe:
            break
        probe = shorter
    return _guess_source(key_path, composed)


def _guess_source(key_path: str, composed: Composed) -> str:
    """Without the loaded files (a sweep job's config): the override naming the key, else the longest package."""
    for ov in composed.overrides:
        key = ov.lstrip("+~").split("=", 1)[0]
        if key == key_path or key_path.startswith(key + ".") or key_path.startswith(key + "["):
            return f"<command line: {ov}>"
    segments = re.split(r"[.\[]", key_path)
    # The longest package that prefixes the key path; among its files the last one that defines the next key
    # (later files in the defaults list override earlier ones).
    best: tuple[int, Path] | None = None
    for config_path, package in composed.loaded:
        depth = len(package.split(".")) if package else 0
        if package and segments[:depth] != package.split("."):
            continue
        path = find_config_file(composed.project, config_path)
        if path is None:
            continue
        next_key = segments[depth] if depth < len(segments) else ""
        if (best is None or depth >= best[0]) and (_defines(path, next_key) or (package and best is None)):
            best = (depth, path)
    return _display(best[1], composed.project) if best else "<defaults>"
