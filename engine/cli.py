"""`flywheel <command> [--project DIR] [--conf DIR] [hydra overrides] [-m]`

The dispatcher composes the Hydra config, validates it, runs the command and maps the outcome to an exit
code. A UserError (bad config or input) prints a clean message and exits 2; a bug keeps its traceback.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.markup import escape

from engine.commands import Command, Outcome, load, load_all, summaries
from engine.config import Composed, compose, find_project
from engine.console import console, err_console
from engine.errors import UserError

USAGE = """usage: flywheel <command> [--project DIR] [--conf DIR] [key=value ...] [-m]

Commands:
{commands}
  compile <command>  print the SQL a command would run, without running it

Options:
  --project DIR   the project directory (default: the current directory); holds the store and conf/
  --conf DIR      the project's config tree (default: DIR/conf when it exists); searched before the bundled one
  -m, --multirun  run a Hydra sweep over comma-separated override values (commands that support it)
  key=value       Hydra overrides, e.g. model=bm25_clean dataset=support_qa out=result.json

Exit codes: 0 ok / PASS / healthy, 1 BLOCKED / alert, 2 bad config or input.
"""


def usage() -> str:
    commands = summaries()  # read without importing every command
    width = max(len(n) for n in commands) + 2
    lines = [f"  {name:<{width}} {summary}" for name, summary in commands.items()]
    return USAGE.format(commands="\n".join(lines))


def parse_args(argv: list[str]) -> tuple[dict, list[str]]:
    options = {"project": None, "conf": None, "multirun": False, "help": False}
    overrides: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            options["help"] = True
        elif arg in ("-m", "--multirun"):
            options["multirun"] = True
        elif arg in ("--project", "--conf"):
            if i + 1 >= len(argv):
                raise UserError(f"{arg} needs a directory")
            options[arg[2:]] = argv[i + 1]
            i += 1
        elif arg.startswith(("--project=", "--conf=")):
            key, value = arg[2:].split("=", 1)
            options[key] = value
        elif arg.startswith("-"):
            raise UserError(f"unknown option {arg}; see `flywheel --help`")
        else:
            overrides.append(arg)
        i += 1
    return options, overrides


def write_out(outcome: Outcome, composed: Composed) -> None:
    out = composed.config.get("out")
    if not out:
        return
    if outcome.result_schema:
        from engine.schemas import all_errors, dotted, validator  # jsonschema: imported when needed

        problems = all_errors(validator(outcome.result_schema), outcome.result)
        if problems:  # our own result breaking its schema is a bug, not a user error
            raise AssertionError(f"result does not match {outcome.result_schema}: "
                                 + "; ".join(f"{dotted(p)}: {m}" for p, m in problems[:5]))
    path = Path(out).expanduser()
    path = path if path.is_absolute() else composed.project.dir / path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(outcome.result, indent=2, default=str) + "\n", encoding="utf-8")
    console.print(f"result written to {path}")


def prepare(options: dict, overrides: list[str], cmd: Command) -> Composed:
    from engine.validate import validate  # jsonschema: imported when needed

    project = find_project(options["project"], options["conf"])
    composed = compose(project, overrides)
    validate(composed, cmd.sections)
    return composed


def run_command(cmd: Command, options: dict, overrides: list[str]) -> int:
    if options["multirun"]:
        if cmd.sweep is None:
            raise UserError(f"`flywheel {cmd.name}` does not run sweeps (-m)")
        return cmd.sweep(options, overrides)
    args: list[str] = []
    if cmd.positional:
        args = [o for o in overrides if "=" not in o]
        overrides = [o for o in overrides if "=" in o]
    composed = prepare(options, overrides, cmd)
    if args:
        from dataclasses import replace
        composed = replace(composed, args=tuple(args))
    outcome = cmd.run(composed)
    write_out(outcome, composed)
    return outcome.exit_code


def run_compile(argv: list[str]) -> int:
    commands = load_all()
    options, overrides = parse_args(argv)
    if options["help"] or not overrides:
        console.print("usage: flywheel compile <command> [overrides]  — commands with SQL: "
                      + ", ".join(n for n, c in commands.items() if c.compile))
        return 0 if options["help"] else 2
    name, overrides = overrides[0], overrides[1:]
    cmd = commands.get(name)
    if cmd is None or cmd.compile is None:
        allowed = [n for n, c in commands.items() if c.compile]
        raise UserError(f"cannot compile '{name}'; commands with SQL: {', '.join(allowed)}")
    composed = prepare(options, overrides, cmd)
    sys.stdout.write(cmd.compile(composed))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or argv[0] in ("-h", "--help", "help"):
            sys.stdout.write(usage())
            return 0 if argv else 2
        name, rest = argv[0], argv[1:]
        if name == "compile":
            return run_compile(rest)
        cmd = load(name)  # imports that command's module only
        if cmd is None:
            from engine.errors import did_you_mean
            raise UserError(f"unknown command '{name}'; {did_you_mean(name, list(load_all()) + ['compile'])}")
        options, overrides = parse_args(rest)
        if options["help"]:
            sys.stdout.write(f"flywheel {name}: {cmd.summary}\n\n" + usage())
            return 0
        return run_command(cmd, options, overrides)
    except UserError as e:
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


def entry_point() -> None:
    sys.exit(main())
