"""The command registry: each command module registers its command here (`@command`, `@standalone`).

Command modules import this module, never the `engine.commands` package, which finds them by name.
"""
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
    compile: Callable[[Composed], Any] | None = None  # its Plan (engine/sql.py), for `flywheel compile NAME`
    sweep: Callable[[dict, list[str]], int] | None = None  # Hydra multirun (-m), for commands that support it
    positional: bool = False  # takes positional arguments (words without `=`) before its overrides
    sections: tuple[str, ...] | None = ()  # optional config sections it reads and validates (None: all)
    # Commands that do not run on a composed config (`init`, `config`) parse their own arguments: argv -> exit code.
    main: Callable[[list[str]], int] | None = None
    # `key=value` words that are the command's own arguments, not Hydra overrides (`whatif gate since=...`,
    # `rescore run=RUN`); they reach the command in `Composed.args`, after its positional words
    arguments: tuple[str, ...] = ()
    # its compiled plan written with each run (plan.sql); ingest's is not: compiling it costs what its per-schema
    # SQL cache saves (`flywheel compile ingest` prints it)
    plan_artifact: bool = True
    # store relations whose readers run on Spark under `backend=spark` (engine/spark/backend.py), beside the
    # production sources: `flywheel compile NAME backend=spark` and plan.sql route the plan with them
    spark_inputs: tuple[str, ...] = ()


COMMANDS: dict[str, Command] = {}


def command(name: str, summary: str, compile: Callable[[Composed], Any] | None = None,
            sweep: Callable[[dict, list[str]], int] | None = None, positional: bool = False,
            sections: tuple[str, ...] | None = (), arguments: tuple[str, ...] = (), plan_artifact: bool = True,
            spark_inputs: tuple[str, ...] = ()):
    def decorator(fn: Callable[[Composed], Outcome]) -> Callable[[Composed], Outcome]:
        COMMANDS[name] = Command(name, summary, fn, compile, sweep, positional, sections, arguments=arguments,
                                 plan_artifact=plan_artifact, spark_inputs=spark_inputs)
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
