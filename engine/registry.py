"""One registry keyed by (kind, name), filled by decorators.

A registered thing is a small function whose docstring is its description in reports and whose JSON Schema
(in schemas/) validates its config. `tests/test_registry.py` asserts every entry has both, and a test.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


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


def get(kind: str, name: str) -> Entry:
    return _REGISTRY[(kind, name)]


def names(kind: str) -> list[str]:
    return sorted(n for k, n in _REGISTRY if k == kind)


def entries(kind: str | None = None) -> list[Entry]:
    return [e for (k, _), e in sorted(_REGISTRY.items()) if kind is None or k == kind]
