"""`flywheel <command> [--project DIR] [--conf DIR] [--debug] [hydra overrides] [-m]`

The dispatcher composes the Hydra config, validates it, runs the command and maps the outcome to an exit
code, a contract CI relies on (engine/exit_codes.py): 0 ok / PASS, 1 BLOCKED / alert, 2 the user's config or
input is wrong (a clean message naming the place, no traceback), 3 Flywheel could not do its job (one line;
the traceback with --debug). A crash never exits 1.
"""
from __future__ import annotations

import sys

from rich.markup import escape

from engine import exit_codes
from engine.commands import Command, load, load_all, summaries
from engine.commands.running import parse_args, recorded_run, routes_of, write_out
from engine.config import Composed, compose, find_project
from engine.console import console, err_console
from engine.errors import UserError
from engine.outputs import check_output_paths, configured_outputs, output_path

USAGE = """usage: flywheel <command> [--project DIR] [--conf DIR] [--debug] [key=value ...] [-m]

Commands:
{commands}
  compile <command>  print the SQL a command would run, without running it

Options:
  --project DIR   the project directory (default: the current directory); holds the store and conf/
  --conf DIR      the project's config tree (default: DIR/conf when it exists); searched before the bundled one
  -m, --multirun  run a Hydra sweep over comma-separated override values (commands that support it)
  --cfg job       print the composed config (and the file each key comes from) instead of running
  --debug         on an internal error (exit 3), print the traceback
  key=value       Hydra overrides, e.g. model=bm25_clean dataset=support_qa out=result.json

{exit_codes}"""


def usage(only: str | None = None) -> str:
    commands = summaries()  # read without importing every command
    width = max(len(n) for n in commands) + 2
    lines = [f"  {name:<{width}} {summary}" for name, summary in commands.items()]
    return USAGE.format(commands="\n".join(lines), exit_codes=exit_codes.help_text(list(commands), only))


def check_outputs(composed: Composed) -> None:
    """Output files a command may be asked to write, checked before it runs, so a path that cannot be written fails
    in a second (exit 2) instead of after an hour of model calls."""
    for key, value in configured_outputs(composed.config):
        exit_codes.check_writable(key, value, output_path(value, composed.project.dir))


def prepare(options: dict, overrides: list[str], cmd: Command) -> Composed:
    from engine.validate import validate  # jsonschema: imported when needed

    project = find_project(options["project"], options["conf"])
    composed = compose(project, overrides)
    validate(composed, cmd.sections)
    check_output_paths(composed, cmd.name)
    from engine.store import DEFAULT_LOCK_WAIT_S, set_lock_wait
    set_lock_wait((composed.config.get("store") or {}).get("lock_wait_s", DEFAULT_LOCK_WAIT_S))
    return composed


def prepare_with_args(options: dict, overrides: list[str], cmd: Command) -> Composed:
    """`prepare`, with the command's own words (positional ones, `key=value` arguments) kept apart from the Hydra
    overrides and handed to it in `Composed.args`."""
    args: list[str] = []
    if cmd.positional:  # `~key` (Hydra's delete) is an override too
        args = [o for o in overrides if "=" not in o and not o.startswith("~")]
        overrides = [o for o in overrides if o not in args]
    if cmd.arguments:
        args += [o for o in overrides if o.split("=", 1)[0] in cmd.arguments]
        overrides = [o for o in overrides if o.split("=", 1)[0] not in cmd.arguments]
    composed = prepare(options, overrides, cmd)
    if args:
        from dataclasses import replace
        composed = replace(composed, args=tuple(args))
    return composed


def run_command(cmd: Command, options: dict, overrides: list[str]) -> int:
    if options.get("cfg"):
        from engine.commands.config_cmd import show
        if options["cfg"] not in ("job", "all"):
            raise UserError(f"--cfg {options['cfg']}: use --cfg job")
        if options["multirun"]:
            raise UserError("--cfg job shows one config: drop -m and give one value per key")
        return show(cmd.name, options, [o for o in overrides if "=" in o or o[:1] in "+~"])
    if options["multirun"]:
        if cmd.sweep is None:
            raise UserError(f"`flywheel {cmd.name}` does not run sweeps (-m)")
        return cmd.sweep(options, overrides)
    composed = prepare_with_args(options, overrides, cmd)
    check_outputs(composed)
    with recorded_run(cmd, composed) as record:
        outcome = cmd.run(composed)
        record(outcome)
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
    composed = prepare_with_args(options, overrides, cmd)
    plan = cmd.compile(composed)
    runs_on = routes_of(cmd, composed, plan)
    sys.stdout.write(plan.to_text(runs_on, runs_on.notes if runs_on is not None else None))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
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
        if cmd.main is not None:  # init, config: their own arguments
            return cmd.main(rest)
        options, overrides = parse_args(rest)
        if options["help"]:
            sys.stdout.write(f"flywheel {name}: {cmd.summary}\n\n" + usage(only=name))
            return 0
        code = run_command(cmd, options, overrides)
        sys.stdout.flush()
        return code
    except BaseException as e:  # noqa: BLE001 - every failure becomes an exit code of the contract
        if isinstance(e, SystemExit):
            raise
        code, message = exit_codes.classify(e)
        if debug and code == exit_codes.CANNOT_RUN:
            import traceback
            traceback.print_exception(e, file=sys.stderr)
        err_console.print(f"[bold red]error:[/] {escape(message)}" if code != exit_codes.INTERRUPTED
                          else escape(message), highlight=False)
        return code


def entry_point() -> None:
    sys.exit(main())
