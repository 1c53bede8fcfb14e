"""The Spark session as engine/spark/session.py builds it: fixed settings win, and Java options given in `conf` are
kept beside the logging flag instead of replacing it (the parity suite's own options are such a case)."""
from __future__ import annotations

from engine.spark import session
from tests.parity.harness import SUITE_CONF


def test_the_jvm_runs_with_the_logging_flag_and_the_given_java_options(spark):
    arguments = list(spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
                     .getInputArguments())
    assert f"-Dlog4j2.configurationFile={session.LOG_CONFIG.as_uri()}" in arguments
    for option in SUITE_CONF[session.JAVA_OPTIONS].split():
        assert option in arguments, (option, arguments)


def test_fixed_settings_hold_whatever_conf_asks(spark):
    for key, value in session.FIXED_CONF.items():
        assert spark.conf.get(key) == value, key
