"""The agent part of a golden case: the conversation so far (`messages`) and the task (`agent`).

The JSON Schema (schemas/case.schema.json, `$defs.agent_task`) checks the shape; `problems` adds what a schema
cannot say (a regex that does not compile, a tool both expected and forbidden). A stored dataset version keeps
its tasks as rows, so the trajectory metrics are joins: `agent_cases` (one per case with messages or a task),
`agent_expected_calls` (one per expected call) and `agent_argument_checks` (one per argument constraint).
"""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
from sqlglot import exp

from engine.provenance import canonical_json
from engine.executor import execute
from engine.sql import Statement, statement

# RE2 (DuckDB's regex engine) decides what a pattern means in the scoring SQL; a private connection asks it
RE2_CHECK = statement("re2:check", "SELECT regexp_matches('', $pattern) AS ok", "the pattern compiles in RE2")

ORDER_MODES = ("exact", "in_order", "any_order", "subset")
DEFAULT_ORDER = "in_order"


def problems(record: dict) -> list[tuple[list, str]]:
    """(key path parts, message) of what the schema cannot check in a schema-valid record's `agent` task."""
    task = record.get("agent")
    if not task:
        return []
    found = []
    expected_names = set()
    for i, call in enumerate(task.get("tool_calls", [])):
        expected_names.add(call["name"])
        for k, check in enumerate(call.get("arguments", [])):
            if "regex" in check:
                why = _regex_problem(check["regex"])
                if why:
                    found.append((["agent", "tool_calls", i, "arguments", k, "regex"], why))
    for name in task.get("forbidden_tools", []):
        if name in expected_names:
            found.append((["agent", "forbidden_tools"], f"'{name}' is both expected in tool_calls and forbidden"))
    return found


_RE2 = None  # an in-memory DuckDB connection that checks patterns with the regex engine that will run them


def _regex_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be used by the SQL that checks arguments (DuckDB's RE2), or None."""
    global _RE2
    try:
        re.compile(pattern)
    except re.error as e:
        return f"not a valid regex: {e}"
    import duckdb

    if _RE2 is None:
        _RE2 = duckdb.connect()
    try:
        execute(_RE2, RE2_CHECK, {"pattern": pattern})
    except duckdb.Error as e:
        return f"not a regex the scoring SQL can run (RE2: no lookaround or back-references): {str(e).splitlines()[0]}"
    return None


def conversation_key(record: dict) -> dict:
    """What of the conversation a model sees, for the case's input hash (nothing for a single-turn case, so
    the hashes of existing cases do not change)."""
    return {"messages": record["messages"]} if record.get("messages") else {}


def has_agent_part(case) -> bool:
    return bool(case.messages) or case.agent is not None


def _checks(call: dict):
    for k, check in enumerate(call.get("arguments", [])):
        if "equals" in check:
            yield k, check["path"], "equals", canonical_json(check["equals"]), None, None, None
        elif "regex" in check:
            yield k, check["path"], "regex", None, check["regex"], None, None
        else:
            yield k, check["path"], "approx", None, None, float(check["approx"]), float(check["tolerance"])


def agent_tables(version: str, cases) -> dict[str, pa.Table]:
    """The rows of the three agent tables for a dataset version's cases (only those with an agent part)."""
    task_rows: dict[str, list] = {k: [] for k in ("case_id", "messages", "order_mode", "forbidden_tools",
                                                  "max_steps", "n_expected")}
    call_rows: dict[str, list] = {k: [] for k in ("case_id", "position", "name")}
    check_rows: dict[str, list] = {k: [] for k in ("case_id", "position", "check_no", "path", "op", "value",
                                                   "pattern", "approx", "tolerance")}
    for case in cases:
        if not has_agent_part(case):
            continue
        task = case.agent or {}
        calls = task.get("tool_calls")
        for key, value in (("case_id", case.case_id), ("messages", canonical_json(list(case.messages))),
                           ("order_mode", task.get("order", DEFAULT_ORDER) if task else None),
                           ("forbidden_tools", list(task.get("forbidden_tools", []))),
                           ("max_steps", task.get("max_steps")),
                           ("n_expected", None if calls is None else len(calls))):
            task_rows[key].append(value)
        for position, call in enumerate(calls or []):
            for key, value in (("case_id", case.case_id), ("position", position), ("name", call["name"])):
                call_rows[key].append(value)
            for check in _checks(call):
                for key, value in zip(check_rows, (case.case_id, position, *check)):
                    check_rows[key].append(value)
    types = {"position": pa.int32(), "check_no": pa.int32(), "max_steps": pa.int32(), "n_expected": pa.int32(),
             "approx": pa.float64(), "tolerance": pa.float64(), "forbidden_tools": pa.list_(pa.string())}

    def table(rows: dict[str, list]) -> pa.Table:
        columns = {"dataset_version": pa.array([version] * len(rows["case_id"]), pa.string())}
        columns.update({k: pa.array(v, types.get(k, pa.string())) for k, v in rows.items()})
        return pa.table(columns)

    return {"agent_cases": table(task_rows), "agent_expected_calls": table(call_rows),
            "agent_argument_checks": table(check_rows)}


def _insert_agent_rows(table: str, columns: tuple[str, ...]) -> Statement:
    """INSERT the registered rows into one agent table (names from agent_tables' fixed keys); JSON columns are
    cast from their canonical text."""
    select = [exp.cast(exp.column(c), "JSON") if c in ("messages", "value") else exp.column(c) for c in columns]
    insert = exp.insert(exp.select(*select).from_("flywheel_agent_rows"), table,
                        columns=[exp.to_identifier(c) for c in columns])
    return Statement(f"agent:insert_{table}", insert, (), f"the version's {table}")


def store_agent_rows(con, version: str, cases) -> None:
    """Insert the agent rows of a new dataset version (inside the caller's transaction)."""
    for name, rows in agent_tables(version, cases).items():
        if len(rows):
            con.register("flywheel_agent_rows", rows)
            execute(con, _insert_agent_rows(name, tuple(rows.column_names)), {})
            con.unregister("flywheel_agent_rows")


def record_part(case) -> dict[str, Any]:
    """The case's agent keys back as a golden record holds them."""
    out: dict[str, Any] = {}
    if case.messages:
        out["messages"] = list(case.messages)
    if case.agent is not None:
        out["agent"] = case.agent
    return out


_TASKS = statement("agent:tasks", "SELECT case_id, messages, order_mode, forbidden_tools, max_steps, n_expected "
                   "FROM agent_cases WHERE dataset_version = $version", "a version's agent tasks and conversations")
_CALLS = statement("agent:expected_calls", "SELECT case_id, position, name FROM agent_expected_calls "
                   "WHERE dataset_version = $version ORDER BY case_id, position", "their expected tool calls")
_CHECKS = statement("agent:argument_checks", "SELECT case_id, position, path, op, value, pattern, approx, tolerance "
                    "FROM agent_argument_checks WHERE dataset_version = $version "
                    "ORDER BY case_id, position, check_no", "the expected calls' argument checks")


def agent_task_statements(only_when: str = "") -> tuple[Statement, ...]:
    """The plan statements stored_parts runs."""
    return tuple(st.conditional(only_when) if only_when else st for st in (_TASKS, _CALLS, _CHECKS))


def stored_parts(con, version: str) -> dict[str, dict]:
    """{case id: {"messages", "agent"}} of a stored version's agent cases, rebuilt from the task rows (the order
    mode always spelled out), e.g. for `flywheel datasets diff` to see a changed task."""
    import json

    from engine.executor import execute

    params = {"version": version}
    calls: dict[str, list[dict]] = {}
    for r in execute(con, _CALLS, params):
        calls.setdefault(r["case_id"], []).append({"name": r["name"], "arguments": []})
    for r in execute(con, _CHECKS, params):
        op = r["op"]
        check = {"path": r["path"], **({"equals": json.loads(r["value"])} if op == "equals"
                                      else {"regex": r["pattern"]} if op == "regex"
                                      else {"approx": r["approx"], "tolerance": r["tolerance"]})}
        calls[r["case_id"]][r["position"]]["arguments"].append(check)
    out = {}
    for r in execute(con, _TASKS, params):
        part: dict[str, Any] = {}
        if json.loads(r["messages"]):
            part["messages"] = json.loads(r["messages"])
        if r["order_mode"] is not None:
            task: dict[str, Any] = {"order": r["order_mode"]}
            if r["n_expected"] is not None:
                task["tool_calls"] = calls.get(r["case_id"], [])
            if r["forbidden_tools"]:
                task["forbidden_tools"] = list(r["forbidden_tools"])
            if r["max_steps"] is not None:
                task["max_steps"] = r["max_steps"]
            part["agent"] = task
        out[r["case_id"]] = part
    return out
