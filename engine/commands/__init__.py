"""The commands behind `flywheel <command>`: found by module name (engine/commands/<name>.py), so running one
command imports only its module; each module registers itself in engine/commands/registry.py."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

from engine.commands.registry import COMMANDS, Command, Outcome, command, standalone  # noqa: F401


# Every command module, by name: importing one registers its command(s).
MODULES = ("bridge", "config_cmd", "datasets", "demo", "evaluate", "gate", "ingest", "init", "judges", "monitor",
           "rescore", "simulate", "store", "whatif")


def load_all() -> dict[str, Command]:
    for module in MODULES:
        importlib.import_module(f"engine.commands.{module}")
    return COMMANDS


def load(name: str) -> Command | None:
    """The command `name`, importing only its module (engine/commands/<name>.py) when there is one: running
    one command does not import every other command's dependencies. None when there is no such command."""
    if name not in COMMANDS and re.fullmatch(r"[a-z_]+", name) and (Path(__file__).parent / f"{name}.py").is_file():
        importlib.import_module(f"engine.commands.{name}")
    return COMMANDS.get(name) or load_all().get(name)


def summaries() -> dict[str, str]:
    """Every command's one-line summary, read from the `@command(...)` decorators of the modules' source
    without importing them (so `flywheel --help` starts fast); registered commands fill any gap."""
    import ast

    out: dict[str, str] = {}
    for path in sorted(Path(__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("command", "standalone")
                    and len(node.args) >= 2 and all(isinstance(a, ast.Constant) for a in node.args[:2])):
                out[node.args[0].value] = node.args[1].value
    return {**out, **{name: cmd.summary for name, cmd in COMMANDS.items()}}
