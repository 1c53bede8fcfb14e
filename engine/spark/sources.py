"""The production tables (`traces`, `feedback`, `events`) as Spark DataFrames, from `source.*`.

A Parquet source (`source.traces.path`, Hive-partitioned as `flywheel ingest to=parquet:` writes it, or a
team's own pipeline) is read by Spark natively; its columns are the store table's, cast to the store's types
(a column the files lack is NULL), so a statement reads the same relation on either engine. Without a path the
store's own table is mirrored into Spark through Arrow: right for a demo or a test, not for a lake."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from sqlglot import exp

from engine.errors import UserError
from engine.sql import Statement

PRODUCTION = ("traces", "feedback", "events")


def frames(spark, backend_local, cfg: Mapping[str, Any], project_dir) -> dict[str, Any]:
    """table -> DataFrame for every production table."""
    from engine.lake import SourceSpec

    out = {}
    for table, spec in SourceSpec.all_of(dict(cfg)).items():
        out[table] = (_from_parquet(spark, backend_local, spec, Path(project_dir)) if spec.format == "parquet"
                      else _from_store(spark, backend_local, table))
    return out


def _from_parquet(spark, backend_local, spec, project_dir: Path):
    """The lake as the store reads it (engine/lake.py's view: the store's columns and types, one record per key
    across batches), over Spark's own Parquet reader: the same view definition, rendered for Spark."""
    from pyspark.sql import functions as F

    from engine import lake
    from engine.spark import execute as spark_exec

    files = lake.files_of(spec, project_dir)  # the same files DuckDB reads (hidden staging skipped)
    given = Path(spec.path).expanduser()
    base = given if given.is_absolute() else project_dir / given
    reader = spark.read
    if spec.partitioning == "hive" and base.is_dir():
        reader = reader.option("basePath", str(base))
    try:
        raw = reader.parquet(*[str(f) for f in files])
    except Exception as e:  # AnalysisException: unreadable files, schemas that cannot be merged
        raise UserError(f"source.{spec.table}.path: Spark cannot read {spec.path} as Parquet: "
                        f"{str(e).splitlines()[0][:300]}") from e
    raw_name = f"fw_lake_{spec.table}"
    raw.withColumn("fw_file", F.regexp_replace(F.input_file_name(), "^file:(//)?", "")) \
        .createOrReplaceTempView(raw_name)
    columns = [(r["column_name"], r["data_type"], r["is_nullable"])
               for r in backend_local.run(lake._columns_statement(spec.table), {"table": spec.table})]
    view, _ = lake.view_statement(spec, files, columns, set(raw.columns) | {"fw_file"})
    query = view.tree.expression.transform(  # the files, read by Spark instead of DuckDB's read_parquet
        lambda n: exp.to_table(raw_name).as_("fw_lake") if isinstance(n, (exp.Table, exp.Alias))
        and n.alias == "fw_lake" else n)
    return spark.sql(spark_exec.spark_text(query))


def _from_store(spark, backend_local, table: str):
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
