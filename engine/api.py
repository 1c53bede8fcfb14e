"""The engine without the CLI, for notebooks and scripts: the same composition, validation and commands,
returning plain results and Polars DataFrames (DuckDB -> Arrow -> Polars, no copy through Python objects).

    from engine import api
    result = api.run("evaluate", ["model=bm25_clean"], project_dir="my-project")
    scores = api.table("scores", project_dir="my-project")          # a polars.DataFrame
    api.query("SELECT metric, avg(value) FROM scores GROUP BY 1", project_dir="my-project")
"""
from __future__ import annotations

from pathlib import Path

import polars as pl

from engine.commands import load_all
from engine.config import Composed, compose, find_project
from engine.errors import UserError
from engine.evaluation import store_path
from engine.executor import execute
from engine.sql import statement
from engine.store import Store
from engine.outputs import check_output_paths
from engine.validate import validate


def config(overrides: list[str] | None = None, project_dir: str | Path | None = None,
           conf_dir: str | Path | None = None, sections: tuple[str, ...] | None = ()) -> Composed:
    """Compose and validate the config exactly as the CLI does (a UserError lists every problem).

    `sections`: the optional sections to check besides the core (gate, monitor, bridge, ...; None: all)."""
    project = find_project(str(project_dir) if project_dir else None, str(conf_dir) if conf_dir else None)
    composed = compose(project, list(overrides or []))
    validate(composed, sections)
    return composed


def run(command: str, overrides: list[str] | None = None, project_dir: str | Path | None = None,
        conf_dir: str | Path | None = None) -> dict:
    """Run a command (evaluate, gate, ingest, monitor, bridge, ...) and return its result dict, as `out=` writes
    it, with the exit code under `exit_code`."""
    commands = load_all()
    if command not in commands:
        raise UserError(f"unknown command '{command}'; available: {', '.join(commands)}")
    project = find_project(str(project_dir) if project_dir else None, str(conf_dir) if conf_dir else None)
    composed = compose(project, list(overrides or []) + ["run.progress=false"])
    validate(composed, commands[command].sections)
    check_output_paths(composed, command)  # report=, junit=, ... as the CLI checks them
    outcome = commands[command].run(composed)
    return {**outcome.result, "exit_code": outcome.exit_code}


def query(sql: str, params: dict | None = None, project_dir: str | Path | None = None) -> pl.DataFrame:
    """A read-only query on the project's store, as a Polars DataFrame."""
    composed = config([], project_dir)
    with Store.open(store_path(composed.config, composed.project), read_only=True) as store:
        return pl.from_arrow(store.con.sql(sql, params=params or None).to_arrow_table())


_TABLES = statement("store:tables", "SELECT table_name FROM information_schema.tables", "the store's tables")


def table(name: str, project_dir: str | Path | None = None) -> pl.DataFrame:
    """A whole store table (scores, runs, traces, monitor_results, ...) as a Polars DataFrame."""
    composed = config([], project_dir)
    with Store.open(store_path(composed.config, composed.project), read_only=True) as store:
        known = {row["table_name"] for row in execute(store.con, _TABLES, {})}
        if name not in known:
            raise UserError(f"no table '{name}' in the store; tables: {', '.join(sorted(known))}")
        return pl.from_arrow(store.con.table(name).to_arrow_table())
