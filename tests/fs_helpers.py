"""Real filesystems that refuse writes, for exit-code tests: a read-only directory and a full one.

As root, permission bits do not stop writes, so a read-only or tiny tmpfs is mounted instead (skipped where
mounting is not allowed); as another user, a directory without write permission is enough for read-only."""
from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest


def _mount_tmpfs(target: Path, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


def _unmount(target: Path) -> None:
    subprocess.run(["umount", str(target)], check=True)


@contextmanager
def read_only_directory(target: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        target.mkdir(parents=True)
        target.chmod(0o555)
        try:
            yield target
        finally:
            target.chmod(0o755)
        return
    _mount_tmpfs(target, "ro,size=64k")
    try:
        yield target
    finally:
        _unmount(target)


@contextmanager
def full_filesystem(target: Path) -> Iterator[Path]:
    """A writable directory on a filesystem with no free space left (writes fail with ENOSPC)."""
    if os.geteuid() != 0:
        pytest.skip("filling a filesystem needs a tmpfs mount (root)")
    _mount_tmpfs(target, "size=64k")
    try:
        with open(target / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        yield target
    finally:
        _unmount(target)
