"""Files the bridge exports appear only when its transaction commits.

Every file (training export, label queue, new golden version) is written into a staging directory first and
recorded in `bridge_publications` inside the bridge's transaction. After the commit the files are renamed into
place. A bridge killed before the commit leaves only staged files, which the next run deletes (the store has no
record of them, so nothing was exported); one killed between the commit and the renames leaves journal rows
that the next command completes. Either way a re-run finds each export on disk exactly once.

Paths are stored relative to the project directory (when inside it), so a moved or cloned project still works.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from engine.executor import execute
from engine.paths import resolve_data_path
from engine.provenance import utc_now
from engine.sql import statement
from engine.store import Store

_STAGE = statement("bridge:stage_file", "INSERT OR REPLACE INTO bridge_publications VALUES ($export_id, $staged, "
                   "$final, NULL)", "a file the export's commit will publish")
_PENDING = statement("bridge:pending_files", "SELECT export_id, staged_path, final_path FROM bridge_publications "
                     "WHERE published_at IS NULL AND ($export_id IS NULL OR export_id = $export_id)",
                     "committed files not yet renamed into place (one export's, or all)")
_PUBLISHED = statement("bridge:file_published", "UPDATE bridge_publications SET published_at = $at "
                       "WHERE export_id = $export_id AND final_path = $final", "a file renamed into place")

STAGING = ".staging"


def project_relative(path: Path, project_dir: Path) -> str:
    """The path as stored: relative to the project when it is inside it, absolute otherwise."""
    path = Path(os.path.abspath(path))
    try:
        return path.relative_to(Path(os.path.abspath(project_dir))).as_posix()
    except ValueError:
        return str(path)


class Staging:
    """The staging directory of one export: `stage(final)` gives the path to write instead of `final`."""

    def __init__(self, store: Store, out_dir: Path, export_id: str, project_dir: Path):
        self.store, self.export_id, self.project_dir = store, export_id, project_dir
        self.dir = out_dir / STAGING / export_id
        self.files: list[tuple[Path, Path]] = []  # (staged, final)

    def stage(self, final: Path) -> Path:
        staged = self.dir / final.name
        staged.parent.mkdir(parents=True, exist_ok=True)
        self.files.append((staged, final))
        return staged

    def record(self) -> None:
        """Journal the pending renames; call inside the transaction that records the export."""
        for staged, final in self.files:
            execute(self.store.con, _STAGE, {"export_id": self.export_id,
                                             "staged": project_relative(staged, self.project_dir),
                                             "final": project_relative(final, self.project_dir)})

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def publish(store: Store, project_dir: Path, export_id: str | None = None) -> list[str]:
    """Rename the committed, not yet published files into place (one export's, or all pending); returns the
    final paths. Safe to repeat: a file already moved is only marked published."""
    done = []
    for row in execute(store.con, _PENDING, {"export_id": export_id}):
        eid, staged_rel, final_rel = row["export_id"], row["staged_path"], row["final_path"]
        staged, final = resolve_data_path(staged_rel, project_dir), resolve_data_path(final_rel, project_dir)
        if staged.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, final)
        elif not final.exists():
            from engine.console import err_console
            err_console.print(f"bridge export {eid}: neither {staged_rel} nor {final_rel} exists; the file was "
                              "removed by hand", highlight=False)
        execute(store.con, _PUBLISHED, {"at": utc_now(), "export_id": eid, "final": final_rel})
        _remove_if_empty(staged.parent)  # the export's staging directory, then .staging itself
        _remove_if_empty(staged.parent.parent)
        done.append(final_rel)
    return done


def recover(store: Store, project_dir: Path, out_dir: Path) -> None:
    """Finish what a killed bridge left: publish committed files, delete staged files of uncommitted exports."""
    publish(store, project_dir)
    staging = out_dir / STAGING
    if staging.is_dir():
        for leftover in staging.iterdir():
            # nothing pending is left after publish(): what remains belongs to an export that never committed
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)
        _remove_if_empty(staging)


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass
