"""The registry of config checks: each feature registers a check of its own config section here (a metric kind's
options, the gate's rules, the monitor's features...); engine/validate.py runs the registered checks. Kept apart
from validate.py so a feature's module can register a check without importing the validator."""
from __future__ import annotations

from typing import Callable

from engine.config import Composed

Checker = Callable[[Composed, Callable[[str, str], None]], None]
CHECKERS: list[tuple[str | None, Checker]] = []


def checker(fn: Checker | None = None, *, section: str | None = None):
    """Register a config check; `section` names the config section it checks (None: always run)."""
    def register(f: Checker) -> Checker:
        CHECKERS.append((section, f))
        return f
    return register(fn) if fn is not None else register
