"""A golden file edited after the bridge grew it: keep the production cases.

The bridge's head version is the configured file's content plus cases from production. When the user then edits
the configured file, the head no longer descends from it. Using the file alone would silently drop every
production case; instead the edited file plus the head's production cases become a new version, whose parent is
the edited file's version (so `datasets diff FILE_VERSION NEW` shows exactly what was carried) and which becomes
the head. A production case whose id is now also in the file with different content is an error naming both.
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from engine.datasets import (DatasetVersion, case_record, lineage, load_file, load_head, move_head,
                             store_version)
from engine.errors import UserError
from engine.executor import execute
from engine.paths import resolve_data_path
from engine.sql import statement
from engine.store import Store

_HEAD = statement("datasets:head", "SELECT dataset_version, path FROM dataset_heads WHERE name = $name",
                  "the dataset's latest version (grown by the bridge) and its file")


def follow_head(store: Store, dataset: DatasetVersion, spec: dict, project_dir: Path) -> DatasetVersion:
    """The bridge's latest version of this dataset when it grew from the configured file's content (so the
    next gate includes the production cases automatically); the configured version otherwise.

    When the configured file was edited after the bridge grew it, the production cases are not dropped: the
    edited file plus the head's production cases become a new version (`carry_production_cases`).
    `follow_bridge: false` in the dataset config pins the configured file."""
    if spec.get("follow_bridge", True) is False:
        return dataset
    row = execute(store.con, _HEAD, {"name": dataset.name})
    if not row or row[0]["dataset_version"] == dataset.version:
        return dataset
    head_version, path = row[0]["dataset_version"], row[0]["path"]
    head = load_head(store, dataset.name, head_version, path, project_dir)
    if dataset.version in lineage(store, head_version):
        return head
    return carry_production_cases(store, dataset, head, project_dir)


def is_production(record: dict) -> bool:
    return (record.get("metadata") or {}).get("origin") == "production"


def carry_production_cases(store: Store, dataset: DatasetVersion, head: DatasetVersion, project_dir: Path
                           ) -> DatasetVersion:
    from engine.bridge.publish import project_relative
    from engine.console import console

    produced = [(c, case_record(c)) for c in head.cases if is_production(case_record(c))]
    if not produced:
        return dataset  # nothing came from production: the edited file is the whole truth
    in_file = {c.case_id: c for c in dataset.cases}
    carried, collisions = [], []
    for case, record in produced:
        mine = in_file.get(case.case_id)
        if mine is None:
            carried.append(record)
        elif case_record(mine) != record:
            collisions.append((mine, case, record))
        # else: the file holds this very case already (e.g. the bridge's file was copied over the golden file)
    if collisions:
        raise UserError(_collision_message(dataset, head, collisions))
    records = [case_record(c) for c in dataset.cases] + carried
    head_file = resolve_data_path(_head_path(store, dataset.name), project_dir)
    draft = head_file.parent / f".{dataset.name}.carry-{os.getpid()}.jsonl"
    draft.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    try:
        loaded = load_file(dataset.name, draft, str(draft))
        final = head_file.parent / f"{dataset.name}-{loaded.version}.jsonl"
        os.replace(draft, final)  # named by its content: a re-run writes the same file, never a second one
    finally:
        draft.unlink(missing_ok=True)
    stored_path = project_relative(final, project_dir)
    merged = replace(loaded, source=stored_path)
    with store.transaction():
        store_version(store, dataset)  # the edited file's own version: the new one's parent, for `datasets diff`
        store_version(store, merged, parent=dataset.version,
                      provenance={"carried_from": head.version, "production_cases": len(carried),
                                  "file": dataset.source})
        move_head(store, dataset.name, merged.version, stored_path)
    console.print(f"[magenta]{dataset.name}[/]: {dataset.source} changed since the bridge's version {head.version}; "
                  f"its {len(carried)} production case(s) are carried over: new version {merged.version} "
                  f"(parent {dataset.version}, the edited file) -> {stored_path}")
    return merged


def _head_path(store: Store, name: str) -> str:
    return execute(store.con, _HEAD, {"name": name})[0]["path"]


def _collision_message(dataset: DatasetVersion, head: DatasetVersion, collisions: list) -> str:
    lines = []
    for mine, theirs, record in collisions[:10]:
        differs = sorted(k for k in set(case_record(mine)) | set(record) if case_record(mine).get(k) != record.get(k))
        trace = (record.get("metadata") or {}).get("trace_id")
        lines.append(f"case id '{mine.case_id}': {dataset.source}:{mine.position} and the production case at "
                     f"{head.source}:{theirs.position}" + (f" (trace {trace})" if trace else "")
                     + f" differ in {', '.join(differs)}")
    more = f"\n  ... and {len(collisions) - 10} more" if len(collisions) > 10 else ""
    return (f"dataset '{dataset.name}': {dataset.source} changed since the bridge's version {head.version}, and "
            f"{len(collisions)} of its case id(s) collide with production cases that version holds:\n  "
            + "\n  ".join(lines) + more
            + f"\nrename or remove those cases in {dataset.source}, or set dataset.{dataset.name}.follow_bridge=false "
              "to use the file alone (without the production cases)")
