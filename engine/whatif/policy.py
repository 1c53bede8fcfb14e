"""Which policy a replay judges under, or compares against.

* `current`: the project's config as composed now (working tree plus the command line's overrides);
* a git revision (`policy=origin/main`): the project's config tree as it is in that revision, read with
  `git show REV:conf/...` from the repository the project lives in, composed over the bundled tree exactly as
  the project's own `conf/` would be;
* `stored` (comparison side only): the rules each decision was actually decided with, as stored with it.
"""
from __future__ import annotations

import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from engine.config import Composed, Project, compose
from engine.errors import UserError
from engine.provenance import config_hash
from engine.validate import validate

STORED = "stored"
CURRENT = "current"


@dataclass(frozen=True)
class Policy:
    """A composed config to judge under (None for `stored`), and where it came from."""

    source: str  # stored | current | git
    config: dict | None
    rev: str | None = None  # as given on the command line
    commit: str | None = None  # the revision's full commit id
    overrides: tuple[str, ...] = ()  # command-line overrides applied on top

    def label(self, section: str) -> str:
        if self.source == "git":
            return f"git {self.rev} ({(self.commit or '')[:12]})" + (
                f" + {' '.join(self.overrides)}" if self.overrides else "")
        if self.source == CURRENT:
            return "current config" + (f" + {' '.join(self.overrides)}" if self.overrides else "")
        return ("the rules each decision was decided with" if section == "gate"
                else "the stored alerts (each run's own bounds)")

    def to_json(self, section: str) -> dict:
        out = {"source": self.source, "rev": self.rev, "commit": self.commit, "label": self.label(section),
               "overrides": list(self.overrides)}
        if self.config is not None:
            out["config_hash"] = config_hash(self.config.get(section))
        return out


def _git(cwd: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=not binary, timeout=60)
    except OSError as e:
        raise UserError(f"policy from git: cannot run git ({e})") from e


def _check(proc: subprocess.CompletedProcess, what: str) -> str:
    if proc.returncode != 0:
        err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode("utf-8", "replace")
        raise UserError(f"{what}: {err.strip() or 'git failed'}")
    return proc.stdout if isinstance(proc.stdout, str) else proc.stdout.decode("utf-8")


@contextmanager
def conf_at_revision(project: Project, rev: str) -> Iterator[tuple[str, str, Path | None]]:
    """The project's config tree as it is in `rev`, written to a temporary directory.

    Yields (commit, the tree's path in the repository, the directory or None when the revision has no such
    tree: the project then composed the bundled config alone)."""
    if not rev or rev.startswith("-"):
        raise UserError(f"policy={rev!r}: give a git revision (a branch, tag or commit)")
    conf = (project.conf_dir or project.dir / "conf").resolve()
    top = Path(_check(_git(project.dir, "rev-parse", "--show-toplevel"),
                      f"policy={rev} needs the project {project.dir} in a git repository").strip()).resolve()
    commit = _check(_git(top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"),
                    f"policy={rev}: no such revision in {top}").strip()
    if not commit:
        raise UserError(f"policy={rev}: no such revision in {top}")
    try:
        rel = conf.relative_to(top).as_posix()
    except ValueError:
        raise UserError(f"policy={rev}: the config tree {conf} is outside the git repository {top}") from None
    listed = _check(_git(top, "ls-tree", "-r", "-z", "--name-only", commit, "--", rel),
                    f"policy={rev}: cannot list {rel}")
    files = [f for f in listed.split("\0") if f]
    with tempfile.TemporaryDirectory(prefix="flywheel-policy-") as tmp:
        if not files:
            yield commit, rel, None
            return
        root = Path(tmp) / "conf"
        for name in files:
            # `git show REV:path` gives the blob's bytes as committed (no filters, no working tree)
            blob = _git(top, "show", f"{commit}:{name}", binary=True)
            _check(blob, f"policy={rev}: cannot read {name}")
            target = root / Path(name).relative_to(rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob.stdout)
        yield commit, rel, root


def current_policy(composed: Composed, section: str) -> Policy:
    validate(composed, (section,))
    return Policy(CURRENT, composed.config, overrides=_user_overrides(composed.overrides))


def unedited_policy(composed: Composed, section: str) -> Policy:
    """The project's config now without the command line's overrides (`against=current`)."""
    plain = compose(composed.project, [])
    validate(plain, (section,))
    return Policy(CURRENT, plain.config)


def git_policy(composed: Composed, rev: str, section: str, overrides: tuple[str, ...] = ()) -> Policy:
    """The config as it is in `rev` (plus `overrides`), validated like the current one. Error messages name
    the files as `REV:conf/...`."""
    with conf_at_revision(composed.project, rev) as (commit, rel, conf):
        project = Project(composed.project.dir, conf)
        try:
            at_rev = compose(project, list(overrides))
            validate(at_rev, (section,))
        except UserError as e:
            text = str(e).replace(str(conf), f"{rev}:{rel}") if conf else str(e)
            raise UserError(f"the policy at {rev} is not valid: {text}") from e
    return Policy("git", at_rev.config, rev, commit, _user_overrides(overrides))


POLICY_KEYS = ("gate", "metrics", "monitor")


def _user_overrides(overrides) -> tuple[str, ...]:
    """The command line's overrides of the policy (gate, metrics, monitor), for the label."""
    def key(o: str) -> str:
        return o.lstrip("+~").split("=", 1)[0].split(".", 1)[0].split("@", 1)[0]
    return tuple(o for o in overrides if key(o) in POLICY_KEYS)


def resolve(composed: Composed, spec: str | None, section: str, *, candidate: bool) -> Policy:
    """`policy=` (candidate: the command line's overrides apply) or `against=` (None/stored: the stored rules;
    `current`: the config now without the overrides; else a git revision)."""
    if candidate:
        if spec in (None, "", CURRENT):
            return current_policy(composed, section)
        return git_policy(composed, spec, section, tuple(composed.overrides))
    if spec in (None, "", STORED):
        return Policy(STORED, None)
    if spec == CURRENT:
        return unedited_policy(composed, section)
    return git_policy(composed, spec, section)
