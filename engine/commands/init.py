"""`flywheel init [DIR] [--force]`: write a working project skeleton.

The skeleton (engine/templates/project/) is a complete small project: conf/config.yaml starting from the
bundled defaults, a golden set with capability tags and a red-team set, a python model stub whose docstring is
the adapter contract, a metric suite, a gate policy, and a monitor and a bridge config that refer to that
suite. `flywheel evaluate` and `flywheel gate` run in it at once.

Existing files are never overwritten unless `--force` is given: a file that exists with other content is a
conflict (exit 2, nothing written); one with the same content is left as it is.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from engine.commands.registry import standalone
from engine.console import console
from engine.errors import UserError

USAGE = """usage: flywheel init [DIR] [--force]

Write a working Flywheel project into DIR (default: the current directory; created if missing):
conf/ (config, datasets, models, metrics, gate, monitor, bridge), data/ (a golden set and a red-team set)
and my_model.py (a python model stub; the adapter contract is in its docstring).

  --force   overwrite files that already exist with other content (default: refuse, exit 2)
"""

NEXT_STEPS = """next steps:
  {cd}flywheel evaluate          # my_model on data/golden.jsonl and data/red_team.jsonl
  flywheel gate              # my_model_v2 (challenger) against my_model (baseline): PASS, exit 0
  flywheel config evaluate   # the composed config, and the file each key comes from
then replace my_model.py with a call to your model, data/*.jsonl with your cases, and adjust
conf/metrics/my_metrics.yaml and conf/gate/my_gate.yaml. Production traces: `flywheel ingest path=...`,
then `flywheel monitor` and `flywheel bridge` (conf/monitor/my_monitor.yaml, conf/bridge/my_bridge.yaml).
The store is .flywheel/flywheel.duckdb: keep .flywheel/ out of version control."""


@dataclass(frozen=True)
class Planned:
    relative: str  # path inside the project, with / separators
    content: bytes
    state: str  # new | same | conflict


def template_files() -> dict[str, bytes]:
    """relative path -> content of every file of the skeleton."""
    root = resources.files("engine.templates") / "project"
    out: dict[str, bytes] = {}

    def walk(node, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.name == "__pycache__":
                continue
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            else:
                out[f"{prefix}{child.name}"] = child.read_bytes()

    walk(root, "")
    return out


def plan(target: Path) -> list[Planned]:
    planned = []
    for relative, content in template_files().items():
        path = target / relative
        if not path.exists():
            state = "new"
        elif path.is_file() and path.read_bytes() == content:
            state = "same"
        else:
            state = "conflict"
        planned.append(Planned(relative, content, state))
    return planned


def parse(argv: list[str]) -> tuple[Path, bool, bool]:
    directory, force, help_ = None, False, False
    for arg in argv:
        if arg in ("-h", "--help"):
            help_ = True
        elif arg in ("-f", "--force"):
            force = True
        elif arg.startswith("-"):
            raise UserError(f"flywheel init: unknown option {arg}; usage: flywheel init [DIR] [--force]")
        elif directory is None:
            directory = arg
        else:
            raise UserError(f"flywheel init takes one directory, got '{directory}' and '{arg}'")
    return Path(directory or ".").expanduser(), force, help_


@standalone("init", "write a working project skeleton (config, data, model stub, metrics, gate, monitor, "
                    "bridge) into DIR")
def init(argv: list[str]) -> int:
    target, force, help_ = parse(argv)
    if help_:
        console.print(USAGE, highlight=False, markup=False)
        return 0
    if target.exists() and not target.is_dir():
        raise UserError(f"flywheel init: {target} exists and is not a directory")
    planned = plan(target)
    conflicts = [p for p in planned if p.state == "conflict"]
    if conflicts and not force:
        raise UserError(f"flywheel init: {len(conflicts)} file(s) already exist in {target.resolve()} with other "
                        "content; nothing was written:\n  " + "\n  ".join(p.relative for p in conflicts)
                        + "\nmove them away, pick another directory, or overwrite them with --force")
    written = []
    for p in planned:
        if p.state == "same":
            continue
        path = target / p.relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(p.content)
        written.append(p)
    console.print(f"initialised a Flywheel project in {target.resolve()}: {len(written)} file(s) written"
                  + (f" ({len(conflicts)} overwritten)" if conflicts else "")
                  + (f", {len(planned) - len(written)} already there" if len(planned) > len(written) else ""),
                  highlight=False)
    for p in written:
        console.print(f"  {p.relative}" + ("  (overwritten)" if p.state == "conflict" else ""), highlight=False)
    here = target.resolve() == Path.cwd().resolve()
    console.print(NEXT_STEPS.format(cd="" if here else f"cd {target}\n  "), highlight=False, markup=False)
    return 0
