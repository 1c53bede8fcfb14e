"""The production tables (`traces`, `feedback`, `events`) as Spark DataFrames, from `source.*`.

A Parquet source (`source.traces.path`, Hive-partitioned as `flywheel ingest to=parquet:` writes it, or a
team's own pipeline) is read by Spark natively; its columns are the store table's, cast to the store's types
(a column the files lack is NULL), so a statement reads the same relation on either engine. Without a path the
store's own table is mirrored into Spark through Arrow: right for a demo or a test, not for a lake."""
from __future__ import annotations

from typing import Any, Mapping

from sqlglot import exp

from engine.errors import UserError
from engine.sql import Statement

PRODUCTION = ("traces", "feedback", "events")


def parquet_path(cfg: Mapping[str, Any], table: str) -> str | None:
    """The Parquet path configured for a production table, or None when it is read from the store."""
    spec = ((cfg.get("source") or {}).get(table)) or {}
    fmt, path = spec.get("format"), spec.get("path")
    if fmt == "store" or (fmt is None and not path):
        return None
    if not path:
        raise UserError(f"source.{table}.path: format {fmt!r} needs a path")
    return str(path)


def frames(spark, backend_local, cfg: Mapping[str, Any], project_dir) -> dict[str, Any]:
    """table -> DataFrame for every production table."""
    out = {}
    for table in PRODUCTION:
        schema = backend_local.read_arrow(_empty(table), {}).schema
        path = parquet_path(cfg, table)
        out[table] = (_from_parquet(spark, table, _absolute(path, project_dir), schema) if path
                      else _from_store(spark, backend_local, table, schema))
    return out


def _absolute(path: str, project_dir) -> str:
    from pathlib import Path

    p = Path(path)
    return str(p if p.is_absolute() else Path(project_dir) / p)


def _from_parquet(spark, table: str, path: str, schema):
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    try:
        raw = spark.read.option("basePath", path).option("recursiveFileLookup", "false").parquet(path)
    except Exception as e:  # AnalysisException: no such path, no Parquet files
        raise UserError(f"source.{table}.path: Spark cannot read Parquet at {path}: "
                        f"{str(e).splitlines()[0][:300]}") from e
    present = set(raw.columns)
    wanted = from_arrow_schema(_signed(schema))
    return raw.select(*[(F.col(f"`{f.name}`").cast(f.dataType) if f.name in present
                         else F.lit(None).cast(f.dataType)).alias(f.name) for f in wanted.fields])


def _from_store(spark, backend_local, table: str, schema):
    return dataframe(spark, backend_local.read_arrow(_whole(table), {}))


def dataframe(spark, frame):
    """An Arrow table of the store as a Spark DataFrame: unsigned integers (a record's UBIGINT hash), which
    Spark has no type for, become DECIMAL(20, 0), which holds every value exactly."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema

    columns = [col.cast(pa.decimal128(20, 0)) if pa.types.is_unsigned_integer(col.type) else col
               for col in frame.columns]
    frame = pa.Table.from_arrays(columns, names=frame.column_names)
    return spark.createDataFrame(frame, schema=from_arrow_schema(frame.schema) if not frame.num_rows else None)


def _signed(schema):
    import pyarrow as pa

    return pa.schema([f.with_type(pa.decimal128(20, 0)) if pa.types.is_unsigned_integer(f.type) else f
                      for f in schema])


def _empty(table: str) -> Statement:
    return Statement(f"spark:schema:{table}", exp.select("*").from_(exp.to_table(table)).limit(0))


def _whole(table: str) -> Statement:
    return Statement(f"spark:source:{table}", exp.select("*").from_(exp.to_table(table)))
