"""Run artifacts, like dbt's `target/`: every command writes `.flywheel/runs/<run id>/` in the project with

* `plan.sql`: the compiled plan (what `flywheel compile <command>` prints, with `backend=spark` each statement
  in the dialect of the engine it runs on), for commands that have one;
* `run_results.json`: every statement the store or Spark executed, in order: the engine that ran it (`engine`:
  duckdb, the local store, or spark), the plan step it was (`name`, `in_plan`), a statement of one of the plan's
  Python steps (`step`; its own `name` and SQL), the store's own bookkeeping (`phase`: connect, migrate,
  transaction, close) or neither (`outside_plan`: work a command does with SQL of its own), its status,
  milliseconds and rows read back, and its SQL.

A plan statement runs with its parameters bound by the engine, so its executed text is the text plan.sql prints;
`in_plan` compares the two with whitespace ignored (the plan is printed pretty). A statement whose SELECT runs on
Spark and whose rows the store writes (INSERT ... SELECT, COPY) leaves two steps of its name: Spark's (in the plan)
and the store's write of those rows (its SQL shown).

Schema history: 2 added `engine` to each step and `on_spark` to the summary (version 1 journaled the store only).
"""
from __future__ import annotations

import json
import re
import shutil
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from engine.journal import Journal
from engine.sql import Plan, Statement

SCHEMA_VERSION = 2
KEEP_RUNS = 100  # run directories kept per project, newest first (the store keeps the durable record)
RESULTS_FILE = "run_results.json"
PLAN_FILE = "plan.sql"


def normalized(sql: str) -> str:
    return re.sub(r"\s+", "", sql).rstrip(";")


def run_id_for(command: str, result: dict | None) -> str:
    given = (result or {}).get("run_id")
    if isinstance(given, str) and re.fullmatch(r"[A-Za-z0-9._:-]{1,200}", given):
        return given.replace(":", "-")
    return f"{command}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


def plan_texts(plan: Plan | None, runs_on: Callable[[Statement], str] | None = None) -> dict[str, str]:
    """Each plan statement's text as plan.sql prints it (normalised) -> its name: on DuckDB its compiled text, on
    Spark (`runs_on`) the Spark SQL of what Spark computes (engine/spark/execute.py `spark_sql`)."""
    out = {}
    for st in plan.statements if plan else ():
        if not isinstance(st, Statement):
            continue
        if runs_on is None or st.tree is None or runs_on(st) == "duckdb":
            out[normalized(st.text)] = st.name
            continue
        from engine.dialects import NotPortable
        from engine.spark.execute import spark_sql

        try:
            out[normalized(spark_sql(st.tree))] = st.name
        except NotPortable:  # printed as NOT PORTABLE: it cannot have run on Spark
            pass
    return out


def results(command: str, run_id: str, plan: Plan | None, journal: Journal, *, started_at: str, elapsed_ms: float,
            exit_code: int | None, error: str | None = None,
            runs_on: Callable[[Statement], str] | None = None) -> dict:
    """`runs_on`: where each plan statement runs (backend=spark: engine/spark/backend.py StaticRoutes)."""
    by_text = plan_texts(plan, runs_on)
    steps = []
    for i, e in enumerate(journal.entries):
        plan_name = by_text.get(normalized(e.sql))
        steps.append({"index": i, "name": e.name or plan_name, "in_plan": plan_name is not None, "engine": e.engine,
                      "phase": e.phase, "step": e.step, "status": e.status, "ms": e.ms, "rows": e.rows, "params": list(e.params),
                      "sql": None if plan_name is not None else e.sql})  # a plan step's SQL is in plan.sql
    ran = {s["name"] for s in steps if s["in_plan"]} | set(journal.steps_run)
    return {
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "run_id": run_id,
        "started_at": started_at,
        "elapsed_ms": round(elapsed_ms, 3),
        "exit_code": exit_code,
        "error": error,
        "plan": {"file": PLAN_FILE if plan else None,
                 "statements": [st.name for st in plan.statements] if plan else [],
                 # an unconditional statement that did not run means the plan is not what ran
                 "not_run": [st.name for st in plan.statements if st.name not in ran and not st.only_when]
                 if plan else [],
                 "skipped": [st.name for st in plan.statements if st.name not in ran and st.only_when]
                 if plan else []},
        "summary": {"executed": len(steps), "in_plan": sum(s["in_plan"] for s in steps),
                    "store_bookkeeping": sum(s["phase"] is not None for s in steps),
                    "in_python_steps": sum(not s["in_plan"] and s["phase"] is None and s["step"] is not None
                                           for s in steps),
                    "outside_plan": sum(not s["in_plan"] and s["phase"] is None and s["step"] is None
                                        for s in steps),
                    "on_spark": sum(s["engine"] == "spark" for s in steps),
                    "errors": sum(s["status"] == "error" for s in steps),
                    "ms": round(sum(s["ms"] for s in steps), 3)},
        "steps": steps,
    }


def write(project_dir: Path, run_id: str, plan: Plan | None, run_results: dict,
          runs_on: Callable[[Statement], str] | None = None) -> Path | None:
    """Write the run's directory; a failure to write is a warning, never the command's failure."""
    target = Path(project_dir) / ".flywheel" / "runs" / run_id
    try:
        target.mkdir(parents=True, exist_ok=True)
        if plan is not None:
            (target / PLAN_FILE).write_text(plan.to_text(runs_on, getattr(runs_on, "notes", None)),
                                            encoding="utf-8")
        tmp = target / f".{RESULTS_FILE}.tmp"
        tmp.write_text(json.dumps(run_results, indent=1, default=str), encoding="utf-8")
        tmp.replace(target / RESULTS_FILE)
        _prune(target.parent)
    except OSError as e:
        print(f"warning: could not write the run artifacts to {target}: {e}", file=sys.stderr)
        return None
    return target


def _prune(runs_dir: Path) -> None:
    runs = sorted((d for d in runs_dir.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime, reverse=True)
    for old in runs[KEEP_RUNS:]:
        shutil.rmtree(old, ignore_errors=True)
