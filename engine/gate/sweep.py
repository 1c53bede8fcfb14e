"""`flywheel gate -m ...`: Hydra sweeps over challengers without DuckDB lock errors.

DuckDB allows one writer per file, and Hydra's joblib launcher runs jobs in separate processes. So each job
works in a private store in its own output directory (seeded read-only from the main store: cached outputs,
blessed baselines), writes its new rows as Parquet, and after the sweep one step in the parent merges them
into the main store and prints the leaderboard. A job that meets the main store busy waits like any writer
(store.lock_wait_s); a job that fails is an ERROR entry, and the jobs that finished are merged all the same.
"""
from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

from engine.config import (ENTRY_CONFIG, LAUNCHER_DIR, Composed, Project, compose, find_project, hydra_overrides,
                           resolve)
from engine.errors import UserError
from engine.executor import execute
from engine.gate.leaderboard import AGENT_TABLES, EXPORTED, merge_and_rank
from engine.outputs import check_output_paths, configured_outputs, write_text
from engine.redaction import scrub_value
from engine.sql import Statement, literal, parse, statement

ENV_PROJECT = "FLYWHEEL_PROJECT_DIR"
ENV_CONF = "FLYWHEEL_CONF_DIR"
ENV_MAIN_STORE = "FLYWHEEL_MAIN_STORE"
def _job_project() -> Project:
    conf = os.environ.get(ENV_CONF)
    return Project(Path(os.environ[ENV_PROJECT]), Path(conf) if conf else None)


# What a job may reuse from the main store: cached outputs, blessed baselines, and the bridge's dataset versions
# and heads, so the job follows them like a single gate does (table names from these constants).
_SEEDS = tuple(statement(f"seed:{table}", f"INSERT INTO {table} SELECT * FROM main_store.{table}{where}",
                         f"the main store's {table}")
               for table, where in (("outputs", " WHERE error IS NULL"), ("blessed_baselines", ""),
                                    ("dataset_versions", ""), ("cases", ""), *((t, "") for t in AGENT_TABLES),
                                    ("dataset_heads", "")))
_DETACH = statement("seed:detach", "DETACH main_store", "the main store let go")
_OF_THE_RUNS = "run_id IN (SELECT unnest($runs))"
_EXPORT_WHERE = {"runs": _OF_THE_RUNS, "run_cases": _OF_THE_RUNS, "scores": _OF_THE_RUNS, "outputs": _OF_THE_RUNS,
                 "trajectory_steps": "(model_fingerprint, output_key, repeat) IN (SELECT (model_fingerprint, "
                                     "output_key, repeat) FROM outputs WHERE run_id IN (SELECT unnest($runs)))"}


def _attach_main_store(path: Path) -> Statement:
    attach = parse("ATTACH 'main.duckdb' AS main_store (READ_ONLY)")
    attach.this.set("this", literal(str(path)))
    return Statement("seed:attach", attach, (), "the main store, read only")


def _export_job_table(table: str, path: Path) -> Statement:
    """COPY the job's rows of a table (its two runs', or all) to Parquet for the sweep's merge."""
    where = _EXPORT_WHERE.get(table, "true")
    copy = parse(f"COPY (SELECT * FROM {table} WHERE {where}) TO 'out.parquet' (FORMAT parquet)")
    copy.set("files", [literal(str(path))])
    return Statement(f"job_export:{table}", copy, ("runs",) if "$runs" in where else (), f"the job's {table}")


def _seed_private_store(store, main_store: Path) -> None:
    """Copy what the job may reuse from the main store: cached outputs, blessed baselines, dataset versions."""
    if not main_store.exists():
        return
    from engine.store import lock_wait, retry_while_locked

    con = store.con
    retry_while_locked(lambda: execute(con, _attach_main_store(main_store), {}), main_store, lock_wait)
    try:
        for seed in _SEEDS:
            execute(con, seed, {})
    finally:
        execute(con, _DETACH, {})


def job(cfg) -> None:  # called by Hydra in the job process (in-process or a joblib worker)
    from hydra.core.hydra_config import HydraConfig

    from engine.gate.session import run_gate
    from engine.evaluation import StoreAccess
    from engine.exit_codes import classify
    from engine.store import DEFAULT_LOCK_WAIT_S, Store, set_lock_wait
    from engine.validate import validate

    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    overrides = [o for o in hc.overrides.task if not o.startswith("hydra.")]
    record = {"job": hc.job.num, "overrides": overrides}
    try:
        # Hydra composed this job's config already; a second compose is impossible while Hydra is running.
        plain = resolve(cfg)  # environment-resolved values registered as secrets, as in compose()
        composed = Composed(plain, (), tuple(overrides), _job_project())
        validate(composed, ("gate",))
        set_lock_wait((plain.get("store") or {}).get("lock_wait_s", DEFAULT_LOCK_WAIT_S))
        job_store = out_dir / "job.duckdb"
        with Store.open(job_store) as store:
            _seed_private_store(store, Path(os.environ[ENV_MAIN_STORE]))
        result, _ = run_gate(composed, StoreAccess(job_store))
        with Store.open(job_store) as store:
            run_ids = [result["baseline"]["run_id"], result["challenger"]["run_id"]]
            for table in EXPORTED:
                statement = _export_job_table(table, out_dir / (table + ".parquet"))
                execute(store.con, statement, {"runs": run_ids} if statement.params else {})
        record["result"] = result
    except Exception as e:  # noqa: BLE001 - one failing job is an ERROR entry, never the end of the sweep
        record["exit_code"], record["error"] = classify(e)
    write_text(out_dir / "job_result.json", json.dumps(scrub_value(record), indent=2, default=str))


def run_sweep(options: dict, overrides: list[str]) -> int:
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from engine.evaluation import store_path
    from engine.exit_codes import check_writable
    from engine.store import DEFAULT_LOCK_WAIT_S, Store, set_lock_wait
    from engine.validate import validate

    project = find_project(options["project"], options["conf"])
    if any(o.split("=", 1)[0].lstrip("+") == "promote" and o.split("=", 1)[1].lower() == "true" for o in overrides):
        raise UserError("promote=true is not allowed in a sweep: gate the winning challenger on its own to promote it")
    # Validate the sweep's first combination up front so a typo fails before any job starts.
    first = [o if "=" not in o else o.split("=", 1)[0] + "=" + _first_value(o.split("=", 1)[1]) for o in overrides
             if not o.startswith("hydra")]
    composed = compose(project, first)
    validate(composed, ("gate",))
    check_output_paths(composed, "gate")
    for key, value in configured_outputs(composed.config):
        if key in ("out", "report"):
            check_writable(key, value, _output(value, project.dir))
    set_lock_wait((composed.config.get("store") or {}).get("lock_wait_s", DEFAULT_LOCK_WAIT_S))
    main_store = store_path(composed.config, project)
    with Store.open(main_store):
        pass  # create or migrate it now, so jobs can attach it read-only
    sweep_id = f"sweep-{uuid.uuid4().hex[:8]}"
    sweep_dir = project.dir / ".flywheel" / "sweeps" / sweep_id
    os.environ[ENV_PROJECT] = str(project.dir)
    os.environ[ENV_CONF] = str(project.conf_dir or "")
    os.environ[ENV_MAIN_STORE] = str(main_store)
    argv = ["flywheel", "-m", *hydra_overrides(project, overrides), f"hydra.sweep.dir={sweep_dir}",
            "hydra.sweep.subdir=${hydra.job.num}", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
    saved, saved_full_error = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = argv
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises (mapped to an exit code here) instead of exiting 1
    try:
        hydra.main(config_path=str(LAUNCHER_DIR), config_name=ENTRY_CONFIG, version_base="1.3")(job)()
    except (HydraException, OmegaConfBaseException) as e:
        raise UserError(f"the sweep cannot run: {str(e).splitlines()[0]}") from e
    finally:
        sys.argv = saved
        if saved_full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_full_error

    # the merge is the sweep's own run in the main store: its run artifacts hold its plan (engine/gate/leaderboard.py)
    from engine.commands.registry import Command, Outcome
    from engine.commands.running import recorded_run

    merge = Command("gate_sweep", "a gate sweep's merge into the main store", run=lambda composed: Outcome(0))
    with recorded_run(merge, composed) as record:
        code = merge_and_rank(sweep_dir, main_store, composed.config, project.dir)
        record(Outcome(code, {"run_id": sweep_id}))
    return code


def _output(value: str, project_dir: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else project_dir / path


def _first_value(value: str) -> str:
    """`a,b,c` -> `a` (a sweep's first choice); ranges and other sweep syntax are left to Hydra."""
    depth, out = 0, ""
    for ch in value:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            break
        out += ch
    return out
