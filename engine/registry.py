"""One registry keyed by (kind, name), filled by decorators.

A registered thing is a small function whose docstring is its description in reports and whose JSON Schema
(in schemas/) validates its config. `tests/test_registry.py` asserts every entry has both, and a test.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

# The module that registers every built-in entry of a kind, imported on the kind's first lookup: a caller that
# compiles metrics needs no import made only for its side effect (and no import cycle comes with one).
PROVIDERS = {"metric": "engine.metrics", "gate_rule": "engine.gate.kinds", "drift_test": "engine.monitor",
             "sampler": "engine.bridge.sampling"}


@dataclass(frozen=True)
class Entry:
    kind: str  # "metric", "gate_rule", "drift_test", "sampler", ...
    name: str
    fn: Callable[..., Any]
    schema: dict  # JSON Schema for this entry's config block (beyond the common keys)

    @property
    def description(self) -> str:
        return (self.fn.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")


_REGISTRY: dict[tuple[str, str], Entry] = {}


def register(kind: str, name: str, schema: dict | None = None) -> Callable:
    def decorator(fn: Callable) -> Callable:
        key = (kind, name)
        if key in _REGISTRY:
            raise RuntimeError(f"{kind} '{name}' registered twice")
        _REGISTRY[key] = Entry(kind, name, fn, schema or {"type": "object"})
        return fn

    return decorator


def _provided(kind: str) -> None:
    if kind in PROVIDERS:
        importlib.import_module(PROVIDERS[kind])


def get(kind: str, name: str) -> Entry:
    if (kind, name) not in _REGISTRY:
        _provided(kind)
    return _REGISTRY[(kind, name)]


def schema(kind: str, name: str) -> dict:
    """The JSON Schema of an entry's config (with the `default` of each key that has one)."""
    return get(kind, name).schema


def names(kind: str) -> list[str]:
    _provided(kind)
    return sorted(n for k, n in _REGISTRY if k == kind)


def entries(kind: str | None = None) -> list[Entry]:
    for k in [kind] if kind else PROVIDERS:
        _provided(k)
    return [e for (k, _), e in sorted(_REGISTRY.items()) if kind is None or k == kind]
