"""The engine's import graph has no cycles, and no module grows past 500 lines. Imports inside functions count: a
cycle hidden behind a function-level import is still a cycle (the order modules load in then depends on which
function runs first). `if TYPE_CHECKING:` imports do not run and do not count. Commands are found by module name
(engine/commands/__init__.py: importlib), so the package that lists them is not an import of each."""
from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"
MAX_LINES = 500

KNOWN_LONG: set[str] = set()  # modules over the limit, to split


def modules() -> dict[str, Path]:
    out = {}
    for path in ENGINE.rglob("*.py"):
        parts = list(path.relative_to(ENGINE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the engine modules it imports (anywhere in its body)."""
    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        stack: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
        while stack:
            node = stack.pop()
            for child in ast.iter_child_nodes(node):
                if _is_type_checking(child):
                    continue
                targets: list[str] = []
                if isinstance(child, ast.Import):
                    targets = [a.name for a in child.names]
                elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                    # `from pkg import sub` imports the submodule; `from mod import name` the module
                    targets = [f"{child.module}.{a.name}" if f"{child.module}.{a.name}" in mods else child.module
                               for a in child.names]
                for target in targets:
                    resolved = resolve(target) if target.startswith("engine") else None
                    if resolved and resolved != name:
                        graph[name].add(resolved)
                stack.append(child)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.add(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_cycle_finder_finds_a_cycle_behind_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_engine_has_no_import_cycles():
    found = cycles(import_graph(modules()))
    assert not found, f"import cycles: {[sorted(c) for c in found]}"


def test_no_module_over_500_lines_beyond_the_known_ones():
    long = {str(p.relative_to(ENGINE.parent)): len(p.read_text(encoding="utf-8").splitlines())
            for p in ENGINE.rglob("*.py")}
    over = {p for p, n in long.items() if n > MAX_LINES}
    assert over <= KNOWN_LONG, {p: long[p] for p in over - KNOWN_LONG}
    assert KNOWN_LONG <= over, f"split already: remove from KNOWN_LONG: {KNOWN_LONG - over}"
