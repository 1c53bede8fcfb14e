"""Run one statement on both engines over the same tables, and compare the results by key."""
from __future__ import annotations

import math
import os
import shutil
from typing import Any, Iterable, Mapping

import duckdb
import pyarrow as pa

from engine.sql import Statement


# The suite's JVM lives a few minutes and runs a few hundred small queries, most of them once: C2's compiler
# threads cost more CPU than their code saves, and on 2 cores they compete with the tests. C1 only with the serial
# collector took ~40 % less JVM CPU over the drift batch from a cold start (39-41 vs 69-73 CPU s, /proc, 2 runs
# each). Both compilers produce the same results; only speed differs.
SUITE_CONF = {"spark.sql.shuffle.partitions": "2",
              "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}


class SparkUnavailable(RuntimeError):
    pass


def spark_session():
    """The suite's one session (engine/spark/session.py, as `backend=spark` builds it)."""
    try:
        import pyspark  # noqa: F401
    except ImportError as e:
        raise SparkUnavailable(f"step 'pip install pyspark' did not happen: {e}") from e
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise SparkUnavailable("step 'install a JDK' did not happen: no java on the PATH and no JAVA_HOME")
    from engine.spark import session

    return session.session("local[2]", "flywheel-parity", SUITE_CONF)


def load_tables(spark, con: duckdb.DuckDBPyConnection, tables: Mapping[str, pa.Table]) -> None:
    """The same Arrow tables as DuckDB tables and Spark temp views."""
    from engine.spark import sources

    for name, table in tables.items():
        con.register(f"fw_src_{name}", table)
        con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM "fw_src_{name}"')
        con.unregister(f"fw_src_{name}")
        sources.dataframe(spark, table).createOrReplaceTempView(name)  # as backend=spark mirrors a store table


def run_duckdb(con, statement: Statement, params: Mapping[str, Any] | None = None) -> list[dict]:
    cur = con.execute(statement.text, {k: v for k, v in (params or {}).items() if k in statement.placeholders})
    if cur.description is None:
        return []
    columns = [d[0] for d in cur.description]
    return [dict(zip(columns, row)) for row in cur.fetchall()]


def run_spark(spark, statement: Statement, params: Mapping[str, Any] | None = None) -> list[dict]:
    """As `backend=spark` runs it (engine/spark/execute.py): a temp-table step becomes a cached view."""
    from engine.spark import execute

    return execute.run(spark, statement, {k: v for k, v in (params or {}).items() if k in statement.placeholders})


def same(a: Any, b: Any, rel: float = 1e-9) -> bool:
    """Equal values: numbers within `rel` (relative), NaN equal to NaN, containers element by element."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return a == b or math.isclose(float(a), float(b), rel_tol=rel, abs_tol=0.0)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], rel) for k in a)
    return a == b


def assert_same_rows(duck: list[dict], spark_rows: list[dict], key: Iterable[str], rel: float = 1e-9,
                     what: str = "") -> None:
    """The two engines' rows are the same, matched by `key` (order ignored): same keys, same values."""
    key = tuple(key)
    index = {tuple(r[k] for k in key): r for r in duck}
    other = {tuple(r[k] for k in key): r for r in spark_rows}
    assert len(index) == len(duck) and len(other) == len(spark_rows), f"{what}: key {key} is not unique"
    assert index.keys() == other.keys(), (f"{what}: keys differ; only DuckDB: {sorted(index.keys() - other.keys())[:5]}"
                                          f" only Spark: {sorted(other.keys() - index.keys())[:5]}")
    for k, row in index.items():
        theirs = {c.lower(): v for c, v in other[k].items()}
        for column, value in row.items():
            assert column.lower() in theirs, f"{what}: Spark has no column {column!r}"
            assert same(value, theirs[column.lower()], rel), \
                f"{what} {dict(zip(key, k))}: {column} is {value!r} on DuckDB, {theirs[column.lower()]!r} on Spark"
