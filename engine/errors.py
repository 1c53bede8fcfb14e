"""User errors vs bugs: a UserError is printed as a clean message (exit code 2); anything else keeps its traceback."""
from __future__ import annotations

import difflib
from dataclasses import dataclass


class UserError(Exception):
    """A mistake in the user's config or input: printed without a traceback, exit code 2."""


@dataclass(frozen=True)
class ConfigProblem:
    file: str  # the config file the value came from, or "<command line>"
    key_path: str  # dotted path, e.g. gate.rules[2].metric
    message: str

    def __str__(self) -> str:
        return f"{self.file} @ {self.key_path}: {self.message}"


class ConfigError(UserError):
    """Every problem found in a composed config, reported at once."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        lines = [f"{len(problems)} problem(s) in the configuration:"] + [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


def did_you_mean(name: str, allowed: list[str] | set[str]) -> str:
    """'unknown x; did you mean y? available: a, b' — the tail of an error about a name."""
    allowed = sorted(allowed)
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}available: {', '.join(allowed) if allowed else '(none)'}"


class OperationalError(Exception):
    """Flywheel could not do its job although the config and input are fine (the store is busy past the wait,
    the disk is full): printed as one line, exit code 3."""


class StoreBusy(OperationalError):
    """Another process held the store's write lock for longer than `store.lock_wait_s`."""
