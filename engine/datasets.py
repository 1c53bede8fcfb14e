"""Golden datasets: JSONL files of cases, validated, content-hashed and stored as immutable versions."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import jsonlines
from engine.agents.cases import problems as agent_problems
from engine.agents.cases import conversation_key, record_part, store_agent_rows
from engine.case_check import plainly_valid
from engine.errors import UserError
from engine.executor import execute
from engine.paths import resolve_data_path
from engine.provenance import canonical_json, content_hash, utc_now
from engine.schemas import all_errors, dotted, validator
from engine.sql import statement
from engine.store import Store


@dataclass(frozen=True)
class Case:
    case_id: str
    position: int
    input: Any
    input_text: str
    expected: Any
    expected_answers: tuple[str, ...]
    context: tuple[str, ...]
    tags: tuple[str, ...]
    metadata: dict
    input_hash: str
    messages: tuple = ()  # the conversation before `input` (engine/agents/cases.py)
    agent: dict | None = None  # the agent task: expected tool calls, order, forbidden tools, step budget


@dataclass(frozen=True)
class DatasetVersion:
    name: str
    version: str  # content hash
    source: str
    cases: tuple[Case, ...]


def input_text(value: Any) -> str:
    return value if isinstance(value, str) else canonical_json(value)


def expected_answers(expected: Any) -> tuple[str, ...]:
    """Acceptable answers as text: a string is one answer, a list of strings is several (SQuAD style)."""
    if expected is None:
        return ()
    if isinstance(expected, str):
        return (expected,)
    if isinstance(expected, list) and all(isinstance(x, str) for x in expected):
        return tuple(expected)
    if isinstance(expected, (int, float, bool)):
        return (json.dumps(expected),)
    return (canonical_json(expected),)


def case_input_hash(record: dict) -> str:
    # What a model sees: the input, the context passages (and the conversation). Same input => same cached output.
    return content_hash({"input": record["input"], "context": record.get("context", []),
                         **conversation_key(record)}, length=24)


def load_file(name: str, path: Path, shown_path: str) -> DatasetVersion:
    """Parse and validate a JSONL dataset; any bad record fails the load with file, line and reason."""
    if not path.is_file():
        raise UserError(f"dataset '{name}': file not found: {shown_path} ({path})")
    problems: list[str] = []
    cases: list[Case] = []
    # The version is content_hash(records), hashed record by record: the same digest without holding every
    # record and one text of the whole file (a million cases: gigabytes).
    version = hashlib.sha256(b"[")
    seen: dict[str, int] = {}
    check = validator("case")
    try:
        text = jsonlines.read_text(path)
    except UnicodeDecodeError as e:
        raise UserError(f"{shown_path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    for line_no, line in jsonlines.split_lines(text):
        if not line.strip():
            continue
        try:
            record = jsonlines.loads_strict(line)
        except jsonlines.StrictJSONError as e:
            problems.append(f"{shown_path}:{line_no}: {e.reason}")
            continue
        errors = [] if plainly_valid(record) else all_errors(check, record)  # the fast check, then the schema
        if not errors and "agent" in record:
            errors = agent_problems(record)
        if errors:
            for p, msg in errors:
                problems.append(f"{shown_path}:{line_no} @ {dotted(p)}: {msg}")
            continue
        if record["id"] in seen:
            problems.append(f"{shown_path}:{line_no}: duplicate id '{record['id']}' (first on line {seen[record['id']]})")
            continue
        seen[record["id"]] = line_no
        version.update((b"," if cases else b"") + canonical_json(record).encode("utf-8"))
        cases.append(Case(
            case_id=record["id"], position=line_no, input=record["input"], input_text=input_text(record["input"]),
            expected=record.get("expected"), expected_answers=expected_answers(record.get("expected")),
            context=tuple(record.get("context", [])), tags=tuple(record.get("tags", [])),
            metadata=record.get("metadata", {}), input_hash=case_input_hash(record),
            messages=tuple(record.get("messages", ())), agent=record.get("agent")))
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise UserError(f"dataset '{name}' has {len(problems)} bad record(s):\n  " + "\n  ".join(shown))
    if not cases:
        raise UserError(f"dataset '{name}': {shown_path} holds no records")
    version.update(b"]")
    return DatasetVersion(name, version.hexdigest()[:16], shown_path, tuple(cases))


def load(name: str, spec: dict, project_dir: Path) -> DatasetVersion:
    return load_file(name, resolve_data_path(spec["path"], project_dir), spec["path"])


_VERSION_EXISTS = statement("datasets:version_exists", "SELECT count(*) AS n FROM dataset_versions "
                            "WHERE dataset_version = $version", "a version with this content is stored already")
_INSERT_VERSION = statement("datasets:insert_version", "INSERT INTO dataset_versions VALUES ($version, $name, $source, "
                            "$n_cases, $parent, $created_at, $provenance)", "a new dataset version")
_INSERT_CASES = statement("datasets:insert_cases", "INSERT INTO cases SELECT dataset_version, case_id, position, "
                          "input::JSON, input_text, expected::JSON, expected_answers, context, tags, metadata::JSON, "
                          "input_hash FROM new_cases", "its cases (an Arrow table registered as new_cases)")
_PARENT = statement("datasets:parent", "SELECT parent_version FROM dataset_versions WHERE dataset_version = $version",
                    "the version a version was grown from")
_MOVE_HEAD = statement("datasets:move_head", "INSERT OR REPLACE INTO dataset_heads VALUES ($name, $version, $path, "
                       "now())", "the dataset's latest version and its file")


def store_version(store: Store, dataset: DatasetVersion, parent: str | None = None,
                  provenance: dict | None = None) -> bool:
    """Insert the version and its cases unless the same content is already stored. Returns True if new."""
    con = store.con
    if execute(con, _VERSION_EXISTS, {"version": dataset.version})[0]["n"]:
        return False
    import pyarrow as pa

    # Arrow builds list columns in C; polars converts a Python list per row (25 s for 220k cases' three lists)
    strings = pa.list_(pa.string())
    cases = dataset.cases
    frame = pa.table({
        "dataset_version": pa.array([dataset.version] * len(cases), pa.string()),
        "case_id": pa.array([c.case_id for c in cases], pa.string()),
        "position": pa.array([c.position for c in cases], pa.int64()),
        "input": pa.array([canonical_json(c.input) for c in cases], pa.string()),
        "input_text": pa.array([c.input_text for c in cases], pa.string()),
        "expected": pa.array([canonical_json(c.expected) for c in cases], pa.string()),
        "expected_answers": pa.array([list(c.expected_answers) for c in cases], strings),
        "context": pa.array([list(c.context) for c in cases], strings),
        "tags": pa.array([list(c.tags) for c in cases], strings),
        "metadata": pa.array([canonical_json(c.metadata) for c in cases], pa.string()),
        "input_hash": pa.array([c.input_hash for c in cases], pa.string()),
    })
    with store.transaction():
        execute(con, _INSERT_VERSION, {"version": dataset.version, "name": dataset.name, "source": dataset.source,
                                       "n_cases": len(dataset.cases), "parent": parent, "created_at": utc_now(),
                                       "provenance": canonical_json(provenance or {})})
        con.register("new_cases", frame)
        execute(con, _INSERT_CASES, {})
        con.unregister("new_cases")
        store_agent_rows(con, dataset.version, dataset.cases)
    return True


def lineage(store: Store, version: str) -> list[str]:
    """The version and its ancestors (parent_version chain), newest first."""
    chain, seen = [], set()
    while version and version not in seen:
        seen.add(version)
        chain.append(version)
        row = execute(store.con, _PARENT, {"version": version})
        version = row[0]["parent_version"] if row else None
    return chain


def case_record(case: Case) -> dict:
    """A stored case back as its JSONL record (what a golden file holds)."""
    out = {"id": case.case_id, "input": case.input}
    if case.expected is not None:
        out["expected"] = case.expected
    if case.context:
        out["context"] = list(case.context)
    if case.tags:
        out["tags"] = list(case.tags)
    if case.metadata:
        out["metadata"] = case.metadata
    return {**out, **record_part(case)}


def move_head(store: Store, name: str, version: str, path: str) -> None:
    """The dataset's latest version (grown by the bridge) and its file, relative to the project when inside it."""
    execute(store.con, _MOVE_HEAD, {"name": name, "version": version, "path": path})


def load_head(store: Store, name: str, head_version: str, path: str, project_dir: Path) -> DatasetVersion:
    """The head version's file, checked against its recorded content hash."""
    file = resolve_data_path(path, project_dir)
    if not file.exists():  # a bridge killed between its commit and publishing its files: finish it now
        from engine.bridge.publish import publish
        publish(store, project_dir)
    head = load_file(name, file, path)
    if head.version != head_version:
        raise UserError(f"dataset '{name}': the bridge's version file {path} was modified "
                        f"(content {head.version}, recorded {head_version}); restore it or set "
                        f"dataset.{name}.follow_bridge=false")
    return head
