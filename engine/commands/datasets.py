"""`flywheel datasets list | diff A B`: the stored golden dataset versions and what changed between two."""
from __future__ import annotations

import json

from rich.table import Table

from engine.commands.registry import Outcome, command
from engine.config import Composed
from engine.console import console
from engine.errors import UserError, did_you_mean
from engine.evaluation import store_path
from engine.report.layout import fit
from engine.executor import execute
from engine.journal import running_plan
from engine.sql import Plan, statement
from engine.agents.cases import agent_task_statements, stored_parts
from engine.store import Store


_BY_NAME = "for NAME@head, NAME@latest or NAME@VERSION"
_ERROR = "only to name the known choices in an error"
VERSIONS_OF = statement("resolve:versions_of", "SELECT dataset_version FROM dataset_versions WHERE name = $name "
                        "ORDER BY created_at", "a dataset's stored versions, oldest first", _BY_NAME)
NAMES = statement("resolve:names", "SELECT DISTINCT name FROM dataset_versions ORDER BY 1",
                  "the stored dataset names", _ERROR)
HEAD = statement("resolve:head", "SELECT dataset_version FROM dataset_heads WHERE name = $name",
                 "the version the bridge grew last", "for NAME@head")
BY_PREFIX = statement("resolve:prefix", "SELECT dataset_version FROM dataset_versions "
                      "WHERE starts_with(dataset_version, $prefix)", "versions starting with a prefix",
                      "for a version id or a prefix of one")
KNOWN = statement("resolve:known", "SELECT name, dataset_version FROM dataset_versions ORDER BY name, created_at",
                  "every stored version", _ERROR)
CASES = statement("cases", "SELECT case_id, input, expected, context, tags, metadata FROM cases "
                  "WHERE dataset_version = $version ORDER BY position", "a version's cases", "for `datasets diff`")
VERSIONS = statement("versions", """
    SELECT v.name, v.dataset_version, v.n_cases, v.parent_version, v.created_at, v.source,
           h.dataset_version IS NOT NULL AS is_head
    FROM dataset_versions v LEFT JOIN dataset_heads h ON h.dataset_version = v.dataset_version
    ORDER BY v.name, v.created_at""", "every stored version, the bridge's heads marked", "for `datasets list`")


def compile_plan(args: list[str]) -> Plan:
    """`datasets list` runs one statement; `datasets diff A B` resolves A and B (each by the statements its form
    needs) and reads both versions' cases, agent tasks included. Without a subcommand: every statement."""
    diff_steps = (VERSIONS_OF, NAMES, HEAD, BY_PREFIX, KNOWN, CASES, *agent_task_statements("for `datasets diff`"))
    if args[:1] == ["list"]:
        return Plan("datasets", (VERSIONS,))
    if args[:1] == ["diff"]:
        return Plan("datasets", diff_steps)
    return Plan("datasets", (VERSIONS, *diff_steps))


def compile_sql(composed: Composed) -> Plan:
    return compile_plan(list(composed.args))


def _values(store: Store, st, **params) -> list:
    return [row[next(iter(row))] for row in execute(store.con, st, params)]


def resolve_version(store: Store, ref: str) -> str:
    """A version id, a unique prefix of one, or NAME@head (the bridge's latest) / NAME@latest (the newest stored);
    anything else is an error listing the versions that exist."""
    if "@" in ref:
        name, which = ref.split("@", 1)
        known = _values(store, VERSIONS_OF, name=name)
        if not known:
            names = _values(store, NAMES)
            raise UserError(f"'{ref}': no stored dataset named '{name}'; {did_you_mean(name, names)}")
        if which == "head":
            head = _values(store, HEAD, name=name)
            if not head:
                raise UserError(f"'{ref}': the bridge has not grown '{name}' (no head); known versions of "
                                f"'{name}': {', '.join(known)} (or {name}@latest)")
            return head[0]
        if which == "latest":
            return known[-1]
        if which and len([v for v in known if v.startswith(which)]) == 1:
            return next(v for v in known if v.startswith(which))  # NAME@VERSION (or a unique prefix of it)
        raise UserError(f"'{ref}': '{which}' is not a version of '{name}'; known versions of '{name}': "
                        f"{', '.join(known)}, or {name}@head, {name}@latest")
    found = _values(store, BY_PREFIX, prefix=ref)
    if len(found) != 1:
        known = [f"{r['name']}:{r['dataset_version']}" for r in execute(store.con, KNOWN, {})]
        raise UserError(f"'{ref}' matches {len(found)} stored dataset versions; known: {', '.join(known) or 'none'}"
                        f" (or NAME@head, NAME@latest)")
    return found[0]


def cases_of(store: Store, version: str) -> dict[str, dict]:
    rows = execute(store.con, CASES, {"version": version})
    agents = stored_parts(store.con, version)  # an agent case's conversation and task
    return {r["case_id"]: {"input": json.loads(r["input"]), "expected": json.loads(r["expected"]) if r["expected"]
                           else None, "context": r["context"], "tags": r["tags"],
                           "metadata": json.loads(r["metadata"]), **agents.get(r["case_id"], {})} for r in rows}


def diff(store: Store, a: str, b: str) -> dict:
    va, vb = resolve_version(store, a), resolve_version(store, b)
    ca, cb = cases_of(store, va), cases_of(store, vb)
    added = [{"case_id": k, **v} for k, v in cb.items() if k not in ca]
    removed = [{"case_id": k, **v} for k, v in ca.items() if k not in cb]
    changed = [{"case_id": k, "fields": sorted(f for f in cb[k] if cb[k][f] != ca[k][f])}
               for k in cb if k in ca and cb[k] != ca[k]]
    return {"command": "datasets_diff", "a": va, "b": vb, "n_a": len(ca), "n_b": len(cb), "added": added,
            "removed": removed, "changed": changed}


def _clip(text: str, limit: int) -> str:
    """Long case text cut with a visible mark (the whole text is in the JSON result, out=PATH)."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def print_diff(result: dict) -> None:
    console.print(f"{result['a']} ({result['n_a']} cases) -> {result['b']} ({result['n_b']} cases): "
                  f"{len(result['added'])} added, {len(result['removed'])} removed, {len(result['changed'])} changed")
    if result["added"]:
        t = Table(title="added", title_justify="left")
        for c in ("case", "origin", "tags", "input", "expected"):
            t.add_column(c, overflow="fold")
        for c in result["added"][:50]:
            meta = c["metadata"] or {}
            origin = meta.get("origin", "") + (f" ({meta['trace_id']})" if meta.get("trace_id") else "")
            t.add_row(c["case_id"], origin, ",".join(c["tags"] or []), _clip(str(c["input"]), 200),
                      _clip(str(c["expected"]), 120))
        console.print(fit(t))
    for c in result["removed"][:50]:
        console.print(f"[red]- {c['case_id']}[/]")
    for c in result["changed"][:50]:
        console.print(f"[yellow]~ {c['case_id']}[/]: {', '.join(c['fields'])}")


def list_versions(store: Store) -> dict:
    return {"command": "datasets_list", "versions": [
        {"name": r["name"], "version": r["dataset_version"], "n_cases": r["n_cases"], "parent": r["parent_version"],
         "created_at": r["created_at"].isoformat(), "source": r["source"], "head": r["is_head"]}
        for r in execute(store.con, VERSIONS, {})]}


def run(composed: Composed, args: list[str]) -> Outcome:
    running_plan(compile_plan(args))
    with Store.open(store_path(composed.config, composed.project)) as store:
        if args[:1] == ["list"] and len(args) == 1:
            result = list_versions(store)
            t = Table(title="Dataset versions", title_justify="left")
            for c in ("name", "version", "cases", "parent", "created", "head"):
                t.add_column(c)
            for v in result["versions"]:
                t.add_row(v["name"], v["version"], str(v["n_cases"]), v["parent"] or "", v["created_at"][:19],
                          "*" if v["head"] else "")
            console.print(fit(t))
            return Outcome(0, result)
        if args[:1] == ["diff"] and len(args) == 3:
            result = diff(store, args[1], args[2])
            print_diff(result)
            return Outcome(0, result, "datasets_diff")
    raise UserError("usage: flywheel datasets list | flywheel datasets diff A B "
                    "(A, B: a version id or prefix, NAME@VERSION, NAME@head or NAME@latest)")


@command("datasets", "list stored golden dataset versions; `datasets diff A B` shows what changed", positional=True,
         compile=compile_sql)
def datasets(composed: Composed) -> Outcome:
    return run(composed, list(composed.args))
