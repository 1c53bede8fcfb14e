"""The backend a command's config asks for (`backend=duckdb|spark`, conf/backend/)."""
from __future__ import annotations

from typing import Any, Mapping

from engine.backend import DuckDBBackend


def backend_for(store, cfg: Mapping[str, Any], project_dir):
    """DuckDB over the store (the default), or Spark with the production sources of `source.*`."""
    spec = cfg.get("backend") or {"name": "duckdb"}
    if spec.get("name", "duckdb") == "duckdb":
        return DuckDBBackend(store)
    from engine.spark import session, sources
    from engine.spark.backend import SparkBackend

    spark = session.session(spec.get("master", "local[2]"), spec.get("app_name", "flywheel"), spec.get("conf"))
    local = DuckDBBackend(store)
    return SparkBackend(store, spark, sources.frames(spark, local, cfg, project_dir))


def provenance(backend) -> dict:
    """What ran the plan, for the result's provenance."""
    if backend.dialect == "duckdb":
        return {"name": "duckdb"}
    return {"name": "spark", "master": backend.spark.sparkContext.master, "version": backend.spark.version,
            "statements_on_spark": len(backend.on_spark)}
