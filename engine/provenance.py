"""Hashes and identities that make every stored row traceable to its inputs."""
from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


# Built once: json.dumps(value, **options) builds an encoder per call (a third of a short value's cost).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_json(value: Any) -> str:
    return _CANONICAL.encode(value)


def content_hash(value: Any, length: int = 16) -> str:
    """A short, stable sha256 of a JSON-able value (dict key order does not matter)."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()[:length]


def stored_config(config: Any) -> str:
    """A config (or part of one) as stored in the store and results: canonical JSON, secrets as fingerprints."""
    from engine.redaction import redact

    return canonical_json(redact(config))


def config_hash(config: Any) -> str:
    """The provenance hash of a config: of its stored form, so that it changes when a secret changes but
    cannot be used to test guesses of the secret faster than its fingerprint allows."""
    from engine.redaction import redact

    return content_hash(redact(config))


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in 4 MiB blocks (golden files, replay predictions)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def new_run_id(command: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{command}-{stamp}-{uuid.uuid4().hex[:8]}"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def git_commit(project_dir: Path) -> str | None:
    """The user's project commit (with '-dirty' if it has uncommitted changes), or None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_dir, capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=project_dir,
                               capture_output=True, text=True, timeout=5)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None
