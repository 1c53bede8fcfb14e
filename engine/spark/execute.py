"""Run one plan statement on a SparkSession: the statement's tree rendered in Spark SQL, its `$name` parameters
bound as Spark's named parameters (`:name`), its rows read through Arrow (instants come back as UTC datetimes,
as DuckDB returns them).

A statement that materialises a relation for later steps (`CREATE TEMP TABLE x AS query`) becomes a cached
temp view; Spark has no temporary tables. Writes into store tables never run here: the backend
(engine/spark/backend.py) sends them to the store."""
from __future__ import annotations

import time
from typing import Any, Mapping

import pyarrow as pa
from sqlglot import exp

from engine import journal
from engine.executor import bound_params, owner_of, user_sql_failure
from engine.sql import Statement, computed_part, render, temp_relation  # noqa: F401  (temp_relation: re-exported)

DIALECT = "spark"


def spark_text(tree: exp.Expression) -> str:
    return render(tree, pretty=True, dialect=DIALECT)


def spark_sql(tree: exp.Expression) -> str:
    """The text Spark is given for a plan statement (what plan.sql and `flywheel compile ... backend=spark` print
    for it): its `computed_part`, in Spark SQL."""
    return spark_text(computed_part(tree)[0])


def run(spark, statement: Statement, params: Mapping[str, Any]) -> list[dict]:
    """Run a SELECT (its rows as dicts) or a temp-table step (a cached view; no rows)."""
    return arrow(spark, statement, params).to_pylist()


class SparkStatementFailed(RuntimeError):
    """A plan statement Spark refused or failed on, named (not the user's SQL: that is a UserError)."""


def arrow(spark, statement: Statement, params: Mapping[str, Any]) -> pa.Table:
    """Run the statement on Spark: a SELECT's rows as Arrow, or (a temp-table step) a cached view and no rows.
    Journaled (engine/journal.py) with its Spark SQL, time and rows, as the store journals what it runs."""
    from pyspark.errors import PySparkException

    from engine.dialects import NotPortable

    started, text, bound = time.perf_counter(), None, bound_params(statement, dict(params))
    try:
        text = spark_sql(statement.tree)
        table = _arrow(spark, statement, text, bound)
    except NotPortable as e:
        raise NotPortable(f"statement '{statement.name}' cannot run on Spark with the meaning it has on DuckDB: {e} "
                          f"(run it with backend=duckdb, or change that part of the config)") from e
    except PySparkException as e:
        journal.record_on(DIALECT, statement.name, text or "", started, "error", None, bound)
        failure = user_sql_failure(e, statement.tree, owner_of(statement.name), engine="Spark")
        if failure is not None:
            raise failure from e
        raise SparkStatementFailed(f"statement '{statement.name}' failed on Spark: {str(e).splitlines()[0]}") from e
    except BaseException:
        journal.record_on(DIALECT, statement.name, text or "", started, "error", None, bound)
        raise
    journal.record_on(DIALECT, statement.name, text, started, "ok",
                      None if temp_relation(statement.tree) is not None else table.num_rows, bound)
    return table


def _arrow(spark, statement: Statement, text: str, args: dict[str, Any]) -> pa.Table:
    created = temp_relation(statement.tree)
    frame = spark.sql(text, args=args or None)
    if created is not None:
        name = created[0]
        previous = _cached_view(spark, name)
        frame = frame.localCheckpoint()  # computed once, like a table
        frame.createOrReplaceTempView(name)
        if previous is not None:
            previous.unpersist()
        return pa.table({})
    return frame.toArrow()


def _cached_view(spark, name: str):
    try:
        return spark.table(name) if spark.catalog.tableExists(name) else None
    except Exception:
        return None
