"""Running a command: its arguments, its run artifacts and its JSON result (`out=PATH`). Shared by the CLI
(engine/cli.py) and the commands that run other commands in-process (`flywheel demo`)."""
from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone

from engine import exit_codes
from engine.backend_choice import BackendSpec
from engine.commands.registry import Command, Outcome
from engine.config import Composed
from engine.console import console
from engine.errors import UserError
from engine.outputs import output_path, write_text
from engine.redaction import scrub_value


def parse_args(argv: list[str]) -> tuple[dict, list[str]]:
    options = {"project": None, "conf": None, "multirun": False, "help": False, "debug": False}
    overrides: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            options["help"] = True
        elif arg in ("-m", "--multirun"):
            options["multirun"] = True
        elif arg in ("--cfg", "-c"):  # Hydra's flag: print the config instead of running (job | all)
            if i + 1 >= len(argv) or argv[i + 1] not in ("job", "all"):
                raise UserError(f"{arg} takes `job` (or `all`): `flywheel <command> [overrides] --cfg job` prints "
                                "the composed config; Hydra's own runtime config (`hydra`) is not shown")
            options["cfg"] = argv[i + 1]
            i += 1
        elif arg.startswith("--cfg="):
            options["cfg"] = arg.split("=", 1)[1]
        elif arg == "--resolve":  # Hydra's flag; Flywheel's printed config is always resolved
            pass
        elif arg == "--debug":
            options["debug"] = True
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
    path = output_path(out, composed.project.dir)
    with exit_codes.writing_output("out", out, path, outcome.exit_code):
        write_text(path, json.dumps(scrub_value(outcome.result), indent=2, default=str) + "\n")
    console.print(f"result written to {path}")


def routes_of(cmd: Command, composed, plan):
    """Where each statement of the command's plan runs under `backend=spark` (engine/spark/backend.py
    StaticRoutes: what `flywheel compile` and plan.sql print); None with DuckDB alone."""
    if plan is None or BackendSpec.of(composed.config).name != "spark":
        return None
    from engine.spark.backend import StaticRoutes

    return StaticRoutes(plan.statements, cmd.spark_inputs)


@contextmanager
def recorded_run(cmd: Command, composed):
    """Run a command with every store statement journaled; write its run artifacts (engine/run_artifacts.py)
    whether it succeeds or fails."""
    from engine import journal

    outcome: list = []
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    error = None
    with journal.recording() as log:
        try:
            yield outcome.append
        except BaseException as e:
            error = e
            raise
        finally:
            try:
                _write_artifacts(cmd, composed, log, outcome[0] if outcome else None, error, started,
                                 (time.perf_counter() - clock) * 1000)
            except Exception as e:  # noqa: BLE001 - the artifacts describe a run; they never change its outcome
                print(f"warning: could not write the run artifacts: {type(e).__name__}: {e}", file=sys.stderr)


def _write_artifacts(cmd: Command, composed, log, outcome: Outcome | None, error: BaseException | None,
                     started: datetime, elapsed_ms: float) -> None:
    from engine import run_artifacts

    exit_code = outcome.exit_code if outcome else (exit_codes.classify(error)[0] if error else None)
    # a command refused before it touched the store (bad config or data) leaves nothing behind: the error on
    # stderr is the whole story, and a mistyped directory gets no .flywheel/
    if error is not None and not log.entries:
        return
    plan = log.plan  # the plan the command ran, when it handed it over (engine/journal.py running_plan)
    if plan is None and cmd.compile is not None and cmd.plan_artifact and error is None:
        plan = cmd.compile(composed)  # pure: the same config compiled again
    run_id = run_artifacts.run_id_for(cmd.name, outcome.result if outcome else None)
    runs_on = routes_of(cmd, composed, plan)  # backend=spark: plan.sql prints each statement as its engine runs it
    data = run_artifacts.results(cmd.name, run_id, plan, log, started_at=started.isoformat(), elapsed_ms=elapsed_ms,
                                 exit_code=exit_code, error=None if error is None else exit_codes.classify(error)[1],
                                 runs_on=runs_on)
    run_artifacts.write(composed.project.dir, run_id, plan, data, runs_on)
