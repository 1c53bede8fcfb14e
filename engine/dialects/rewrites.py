"""The registry of dialect rewrites (engine/dialects/__init__.py says how they are used)."""
from __future__ import annotations

from typing import Callable

from sqlglot import exp

from engine.errors import UserError

Rewrite = Callable[[exp.Expression], exp.Expression]
_REWRITES: dict[str, list[Rewrite]] = {}


class NotPortable(UserError):
    """A statement uses a construct the target engine would read differently, and no rewrite keeps its meaning: the
    user's config asks for something the chosen backend cannot run with the same meaning (exit 2)."""


def rewrite(dialect: str) -> Callable[[Rewrite], Rewrite]:
    """Register a rewrite of trees rendered for `dialect`; rewrites run in the order their modules register them."""
    def register(fn: Rewrite) -> Rewrite:
        _REWRITES.setdefault(dialect, []).append(fn)
        return fn
    return register


def registered(dialect: str) -> tuple[Rewrite, ...]:
    return tuple(_REWRITES.get(dialect, ()))


def bottom_up(tree: exp.Expression, fn: Callable[[exp.Expression], exp.Expression]) -> exp.Expression:
    """`tree` (changed in place) with `fn` applied to every node, children before their parents, so a rewritten
    node's arguments are rewritten too (sqlglot's `transform` does not descend into a replaced node)."""
    root = tree
    for node in reversed(list(tree.walk(bfs=False))):
        parent, key, index = node.parent, node.arg_key, node.index  # before `fn` may re-parent the node
        new = fn(node)
        if new is not node:
            if node is root:
                root = new
            else:
                parent.set(key, new, index)
    return root
