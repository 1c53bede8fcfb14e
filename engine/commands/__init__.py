"""The command registry behind `flywheel <command>`. Each command module registers itself here."""
from __future__ import annotations

from dataclasses import dataclass, field
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
    compile: Callable[[Composed], str] | None = None  # the SQL it would run, for `flywheel compile NAME`
    sweep: Callable[[dict, list[str]], int] | None = None  # Hydra multirun (-m), for commands that support it
    positional: bool = False  # takes positional arguments (words without `=`) before its overrides
    sections: tuple[str, ...] | None = ()  # optional config sections it reads and validates (None: all)


COMMANDS: dict[str, Command] = {}


def command(name: str, summary: str, compile: Callable[[Composed], str] | None = None,
            sweep: Callable[[dict, list[str]], int] | None = None, positional: bool = False,
            sections: tuple[str, ...] | None = ()):
    def decorator(fn: Callable[[Composed], Outcome]) -> Callable[[Composed], Outcome]:
        COMMANDS[name] = Command(name, summary, fn, compile, sweep, positional, sections)
        return fn

    return decorator


def load_all() -> dict[str, Command]:
    from engine.commands import bridge, datasets, demo, evaluate, gate, monitor  # noqa: F401
    from engine.commands import ingest, simulate  # noqa: F401
    from engine.commands import judges  # noqa: F401
    return COMMANDS
