"""The Python API: the same commands as the CLI, results as dicts and Polars DataFrames."""
from __future__ import annotations

import polars as pl
import pytest

from engine import api
from engine.errors import UserError


def test_api_runs_a_command_and_reads_the_store_as_polars(project):
    result = api.run("evaluate", [], project_dir=project)
    assert result["exit_code"] == 0 and result["model"]["name"] == "lookup"
    scores = api.table("scores", project_dir=project)
    assert isinstance(scores, pl.DataFrame)
    assert scores.filter(pl.col("metric") == "exact").height == 5
    means = api.query("SELECT metric, avg(value) AS mean FROM scores GROUP BY 1 ORDER BY 1", project_dir=project)
    assert means.to_dicts() == [{"metric": "exact", "mean": pytest.approx(0.4)},
                                {"metric": "found", "mean": pytest.approx(0.6)}]


def test_api_reports_config_problems_as_user_errors(project):
    with pytest.raises(UserError, match="unknown metric kind 'nope'"):
        api.config(["metrics.exact.kind=nope"], project_dir=project)
    with pytest.raises(UserError, match="no table 'nope'"):
        api.run("evaluate", [], project_dir=project)
        api.table("nope", project_dir=project)
