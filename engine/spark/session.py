"""One SparkSession per process, built from the `backend` config section (conf/backend/spark.yaml).

The session time zone is always UTC: the store keeps instants (TIMESTAMPTZ) and reads them in UTC, and Spark
would otherwise read and print TIMESTAMP values in the JVM's local zone."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Mapping

from engine.errors import OperationalError, UserError

FIXED_CONF = {"spark.sql.session.timeZone": "UTC",
              # DuckDB and the SQL standard: integer overflow and bad casts are errors, not silent NULLs/wraps
              "spark.sql.ansi.enabled": "true",
              "spark.ui.enabled": "false",
              "spark.ui.showConsoleProgress": "false"}
DEFAULT_CONF = {"spark.sql.shuffle.partitions": "4", "spark.driver.memory": "2g",
                "spark.sql.execution.arrow.pyspark.enabled": "true"}

JAVA_OPTIONS = "spark.driver.extraJavaOptions"
LOG_CONFIG = Path(__file__).with_name("log4j2.properties")
_session = None


def require_pyspark():
    try:
        import pyspark  # noqa: F401
    except ImportError as e:
        raise UserError("backend=spark needs pyspark: pip install 'flywheel-eval[spark]' (and a Java 17+ runtime)") \
            from e
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise UserError("backend=spark needs a Java 17+ runtime: none on the PATH and JAVA_HOME is not set "
                        "(Debian: apt-get install openjdk-17-jre-headless)")


def session(master: str = "local[2]", app_name: str = "flywheel", conf: Mapping[str, Any] | None = None):
    """The process's SparkSession (built on first use; later calls get the same one)."""
    global _session
    if _session is not None:
        return _session
    require_pyspark()
    from pyspark.sql import SparkSession

    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no lookup of the host's name, no warning about it
    settings = {**DEFAULT_CONF, **dict(conf or {}), **FIXED_CONF}
    # Spark's own logging is quiet; a user's extraJavaOptions are kept beside that flag, not replaced by it
    quiet = f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}"
    settings[JAVA_OPTIONS] = " ".join(filter(None, (quiet, settings.get(JAVA_OPTIONS))))
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, str(value))
    try:
        _session = builder.getOrCreate()
    except Exception as e:  # the JVM did not start: not the user's SQL
        raise OperationalError(f"could not start Spark (master {master!r}): {str(e).splitlines()[0]}") from e
    _session.sparkContext.setLogLevel("ERROR")
    import logging

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):  # a failed query: our message says it
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return _session


def stop() -> None:
    global _session
    if _session is not None:
        _session.stop()
        _session = None
