"""The command registry behind `flywheel <command>`. Each command module registers itself here."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from engine.config import Composed


@dataclass
class Outcome:
    """What a command returns: its exit code and its JSON-able result (written to `out=PATH`)."""

    exit_code: int
    result: dict[str, Any] = field(default_factory=dict)
    result_schema: str | None = None  # schemas/<name>.schema.json that `result` must satisfy


@dataclass(frozen=True)
class Command:
    name: str
    summary: str  # one line for `flywheel --help`
    run: Callable[[Composed], Outcome]
    compile: Callable[[Composed], Any] | None = None  # its Plan (engine/sql.py), for `flywheel compile NAME`
    sweep: Callable[[dict, list[str]], int] | None = None  # Hydra multirun (-m), for commands that support it
    positional: bool = False  # takes positional arguments (words without `=`) before its overrides
    sections: tuple[str, ...] | None = ()  # optional config sections it reads and validates (None: all)
    # Commands that do not run on a composed config (`init`, `config`) parse their own arguments: argv -> exit code.
    main: Callable[[list[str]], int] | None = None
    # `key=value` words that are the command's own arguments, not Hydra overrides (`whatif gate since=...`,
    # `rescore run=RUN`); they reach the command in `Composed.args`, after its positional words
    arguments: tuple[str, ...] = ()


COMMANDS: dict[str, Command] = {}


def command(name: str, summary: str, compile: Callable[[Composed], Any] | None = None,
            sweep: Callable[[dict, list[str]], int] | None = None, positional: bool = False,
            sections: tuple[str, ...] | None = (), arguments: tuple[str, ...] = ()):
    def decorator(fn: Callable[[Composed], Outcome]) -> Callable[[Composed], Outcome]:
        COMMANDS[name] = Command(name, summary, fn, compile, sweep, positional, sections, arguments=arguments)
        return fn

    return decorator


def standalone(name: str, summary: str):
    """Register a command that parses its own arguments (`fn(argv) -> exit code`)."""
    def decorator(fn: Callable[[list[str]], int]) -> Callable[[list[str]], int]:
        COMMANDS[name] = Command(name, summary, run=_not_composed, main=fn)
        return fn

    return decorator


def _not_composed(composed: Composed) -> Outcome:
    raise AssertionError("a standalone command is run through Command.main")


def load_all() -> dict[str, Command]:
    from engine.commands import bridge, datasets, demo, evaluate, gate, monitor  # noqa: F401
    from engine.commands import config_cmd, ingest, init, simulate, store  # noqa: F401
    from engine.commands import judges, rescore, whatif  # noqa: F401
    return COMMANDS


def load(name: str) -> Command | None:
    """The command `name`, importing only its module (engine/commands/<name>.py) when there is one: running
    one command does not import every other command's dependencies. None when there is no such command."""
    import importlib
    import re

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
