"""Plan builders memoised on the content of their arguments.

Compiling is pure: the same config compiles to the same statements. A command compiles pieces of its plan while
it runs and its run artifacts need the whole plan at the end, and a gate compiles the same metrics for both sides;
without this each of those compiled (and rendered, engine/sql.py Statement.text) the same SQL again (0.2-0.9 s a
command). Statements are immutable, so sharing them is safe; a returned list or dict is a fresh copy.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any, Callable

MAX_ENTRIES = 512  # per builder; a process compiles a few configs (a sweep job, the demo's steps)


def _plain(value: Any) -> Any:
    """A frozen spec (engine/specs.py) as its type and fields: specs are plain config data too."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__spec__": type(value).__qualname__,
                **{f.name: getattr(value, f.name) for f in dataclasses.fields(value)}}
    raise TypeError(type(value).__name__)


def _key(args: tuple, kwargs: dict) -> str | None:
    try:
        return json.dumps([args, kwargs], sort_keys=True, separators=(",", ":"), default=_plain)
    except (TypeError, ValueError):  # an argument that is not plain config data: compile it afresh
        return None


def by_content(fn: Callable) -> Callable:
    cache: dict[str, Any] = {}

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        key = _key(args, kwargs)
        if key is None:
            return fn(*args, **kwargs)
        if key not in cache:
            if len(cache) >= MAX_ENTRIES:
                cache.clear()
            cache[key] = fn(*args, **kwargs)
        value = cache[key]
        return list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value

    wrapper.cache_clear = cache.clear  # type: ignore[attr-defined]
    return wrapper
