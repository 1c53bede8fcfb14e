"""A count per engine file that may only go down (raw SQL sites, `.get(key, default)` calls): a file that gains
one fails; a file that loses some fails until its baseline is lowered, so the baseline stays exact."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

ENGINE = Path(__file__).resolve().parent.parent / "engine"


def assert_only_goes_down(count: Callable[[str], int], baseline: dict[str, int], grown_hint: str, what: str,
                          exempt: frozenset[str] = frozenset()) -> None:
    found = {}
    for path in ENGINE.rglob("*.py"):
        name = str(path.relative_to(ENGINE.parent))
        n = 0 if name in exempt else count(path.read_text(encoding="utf-8"))
        if n:
            found[name] = n
    grown = {f: (baseline.get(f, 0), n) for f, n in found.items() if n > baseline.get(f, 0)}
    assert not grown, f"{grown_hint} (file: (allowed, found)): {grown}"
    lowered = {f: (n, found.get(f, 0)) for f, n in baseline.items() if found.get(f, 0) < n}
    assert not lowered, f"fewer {what} than the baseline: lower BASELINE to match: {lowered}"
