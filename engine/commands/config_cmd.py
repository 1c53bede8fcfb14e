"""`flywheel config [COMMAND] [overrides]` (and `flywheel COMMAND ... --cfg job`): the composed, validated config
as YAML, each block annotated with the file it came from.

The YAML is the config the command would run with (interpolations resolved) and loads back to the same data;
a `# file` comment follows a key whenever its origin differs from the enclosing block's. Origins come from
`engine.config.key_origins`: the files Hydra merged, in merge order, then command-line overrides.
"""
from __future__ import annotations

import json
import sys

import yaml

from engine.commands import load_all
from engine.commands.registry import standalone
from engine.config import Composed, compose, find_project, key_origins
from engine.errors import UserError, did_you_mean
from engine.validate import validate

USAGE = """usage: flywheel config [COMMAND] [--project DIR] [--conf DIR] [key=value ...]

Print the composed config as YAML, validated for COMMAND (every section when none is given), with the file
each key comes from. `flywheel COMMAND [overrides] --cfg job` prints the same thing.
"""


def _scalar(value) -> str:
    """A value in YAML flow style on one line (strings quoted when YAML needs it, lists as [a, b]); JSON (valid
    YAML) when it holds line breaks, which flow style would fold over several lines."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=float("inf"),
                          sort_keys=False).strip()
    if text.endswith("\n..."):
        text = text[:-4].rstrip()
    return json.dumps(value, ensure_ascii=False) if "\n" in text else text


def _key(key) -> str:
    return _scalar(str(key))


def _origins_below(path: str, node, origins: dict[str, str]) -> set[str]:
    found = {origins[path]} if path in origins and not isinstance(node, dict) else set()
    if isinstance(node, dict):
        for key, value in node.items():
            found |= _origins_below(f"{path}.{key}" if path else str(key), value, origins)
        if not node and path in origins:
            found.add(origins[path])
    return found


def annotated_yaml(config: dict, origins: dict[str, str]) -> str:
    lines: list[str] = []

    def emit(node: dict, path: str, depth: int, inherited: str | None) -> None:
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            below = _origins_below(child, value, origins)
            origin = next(iter(below)) if len(below) == 1 else None
            note = f"  # {origin}" if origin and origin != inherited else ""
            indent = "  " * depth
            if isinstance(value, dict) and value:
                lines.append(f"{indent}{_key(key)}:{note}")
                emit(value, child, depth + 1, origin or inherited)
            else:
                lines.append(f"{indent}{_key(key)}: {_scalar(value)}{note}")

    emit(config, "", 0, None)
    return "\n".join(lines) + "\n"


def render(composed: Composed, command: str | None) -> str:
    project = composed.project
    tree = (f"{project.conf_dir} then the bundled tree" if project.conf_dir else "the bundled tree only "
            "(no conf/ in the project)")
    head = [f"# composed config{f' for `flywheel {command}`' if command else ''}, validated; "
            f"project {project.dir}, configs from {tree}"]
    if composed.overrides:
        head.append("# overrides: " + " ".join(composed.overrides))
    return "\n".join(head) + "\n" + annotated_yaml(composed.config, key_origins(composed))


def show(command: str | None, options: dict, overrides: list[str]) -> int:
    """Compose, validate (for `command`'s sections, or all), print. Exit 2 on an invalid config."""
    commands = load_all()
    sections = None
    if command is not None:
        cmd = commands.get(command)
        if cmd is None or cmd.main is not None:
            runnable = [n for n, c in commands.items() if c.main is None]
            raise UserError(f"flywheel config: unknown command '{command}'; {did_you_mean(command, runnable)}")
        sections = cmd.sections
    project = find_project(options.get("project"), options.get("conf"))
    composed = compose(project, overrides)
    validate(composed, sections)
    sys.stdout.write(render(composed, command))
    return 0


@standalone("config", "print the composed, validated config and the file each key comes from")
def config(argv: list[str]) -> int:
    from engine.commands.running import parse_args

    options, words = parse_args(argv)
    if options["help"]:
        sys.stdout.write(USAGE)
        return 0
    if options.get("multirun"):
        raise UserError("flywheel config shows one config; drop -m")
    command = words[0] if words and "=" not in words[0] and not words[0].startswith(("+", "~")) else None
    overrides = words[1:] if command else words
    return show(command, options, overrides)
