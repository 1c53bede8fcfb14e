"""Run one plan statement on a SparkSession: the statement's tree rendered in Spark SQL, its `$name` parameters
bound as Spark's named parameters (`:name`), its rows read through Arrow (instants come back as UTC datetimes,
as DuckDB returns them).

A statement that materialises a relation for later steps (`CREATE TEMP TABLE x AS query`) becomes a cached
temp view; Spark has no temporary tables. Writes into store tables never run here: the backend
(engine/spark/backend.py) sends them to the store."""
from __future__ import annotations

from typing import Any, Mapping

import pyarrow as pa
from sqlglot import exp

from engine.executor import bound_params, owner_of, user_sql_failure
from engine.sql import Statement, render

DIALECT = "spark"


def spark_text(tree: exp.Expression) -> str:
    return render(tree, pretty=True, dialect=DIALECT)


def temp_relation(tree: exp.Expression) -> tuple[str, exp.Expression] | None:
    """(name, query) of a `CREATE [OR REPLACE] TEMP TABLE name AS query`, else None."""
    if not isinstance(tree, exp.Create) or str(tree.args.get("kind") or "").upper() != "TABLE":
        return None
    props = tree.args.get("properties")
    temporary = props is not None and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions)
    query = tree.expression
    if not temporary or query is None:
        return None
    return tree.this.name, query


def dataframe(spark, statement: Statement, params: Mapping[str, Any], tree: exp.Expression | None = None):
    args = bound_params(statement, dict(params))
    return spark.sql(spark_text(tree if tree is not None else statement.tree), args=args or None)


def run(spark, statement: Statement, params: Mapping[str, Any]) -> list[dict]:
    """Run a SELECT (its rows as dicts) or a temp-table step (a cached view; no rows)."""
    return arrow(spark, statement, params).to_pylist()


class SparkStatementFailed(RuntimeError):
    """A plan statement Spark refused or failed on, named (not the user's SQL: that is a UserError)."""


def arrow(spark, statement: Statement, params: Mapping[str, Any]) -> pa.Table:
    from pyspark.errors import PySparkException

    from engine.dialects import NotPortable

    try:
        return _arrow(spark, statement, params)
    except NotPortable as e:
        raise NotPortable(f"statement '{statement.name}' cannot run on Spark with the meaning it has on DuckDB: {e} "
                          f"(run it with backend=duckdb, or change that part of the config)") from e
    except PySparkException as e:
        failure = user_sql_failure(e, statement.tree, owner_of(statement.name), engine="Spark")
        if failure is not None:
            raise failure from e
        raise SparkStatementFailed(f"statement '{statement.name}' failed on Spark: {str(e).splitlines()[0]}") from e


def _arrow(spark, statement: Statement, params: Mapping[str, Any]) -> pa.Table:
    created = temp_relation(statement.tree)
    if created is not None:
        name, query = created
        previous = _cached_view(spark, name)
        frame = dataframe(spark, statement, params, query).localCheckpoint()  # computed once, like a table
        frame.createOrReplaceTempView(name)
        if previous is not None:
            previous.unpersist()
        return pa.table({})
    return dataframe(spark, statement, params).toArrow()


def _cached_view(spark, name: str):
    try:
        return spark.table(name) if spark.catalog.tableExists(name) else None
    except Exception:
        return None
