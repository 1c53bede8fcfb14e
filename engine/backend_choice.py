"""The backend a command's config asks for (`backend=duckdb|spark`, conf/backend/, schemas/backend.schema.json)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from engine.backend import DuckDBBackend
from engine.schemas import load_schema
from engine.specs import with_defaults


@dataclass(frozen=True)
class BackendSpec:
    name: str
    master: str
    app_name: str
    conf: dict = field(default_factory=dict)

    @classmethod
    def of(cls, cfg: Mapping[str, Any]) -> "BackendSpec":
        block = with_defaults(load_schema("backend"), cfg.get("backend") or {"name": "duckdb"})
        return cls(block["name"], block["master"], block["app_name"], dict(block["conf"]))


def start(cfg: Mapping[str, Any]) -> None:
    """Start the Spark session now when the config asks for Spark (a command that must not hold the store while
    a JVM starts, and that should fail on a missing pyspark or Java before it calls a model); else nothing."""
    spec = BackendSpec.of(cfg)
    if spec.name == "spark":
        from engine.spark import session

        session.session(spec.master, spec.app_name, spec.conf)


def backend_for(store, cfg: Mapping[str, Any], project_dir, inputs: tuple[str, ...] | None = None):
    """DuckDB over the store (the default), or Spark with the production sources of `source.*` (monitor, bridge)
    or, given `inputs`, with those store relations as its inputs instead (evaluate: the run's scoring input;
    engine/spark/backend.py says how statements are routed)."""
    spec = BackendSpec.of(cfg)
    if spec.name == "duckdb":
        return DuckDBBackend(store)
    from engine.spark import session, sources
    from engine.spark.backend import SparkBackend

    spark = session.session(spec.master, spec.app_name, spec.conf)
    if inputs is not None:
        return SparkBackend(store, spark, {}, inputs)
    local = DuckDBBackend(store)
    return SparkBackend(store, spark, sources.frames(spark, local, cfg, project_dir))


def provenance(backend) -> dict:
    """What ran the plan, for the result's provenance: Spark's master and version, how many statements ran on it,
    and the statements that read Spark's inputs but ran on the store because Spark cannot run them the same."""
    if backend.dialect == "duckdb":
        return {"name": "duckdb"}
    return {"name": "spark", "master": backend.spark.sparkContext.master, "version": backend.spark.version,
            "statements_on_spark": len(backend.on_spark), "not_portable": dict(backend.not_portable)}
