"""The README's table of metric kinds is the one generated from the kinds' schemas, and the defaults the schemas
declare are the ones the kinds apply."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine import registry
from engine.compiler import default_aggregate, metric_sql
from engine.report.metric_catalog import kinds, kinds_table, readme_block

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_table_matches_the_schemas():
    block = readme_block(README.read_text(encoding="utf-8"))
    assert block is not None, "README.md lost the metric-kinds markers"
    assert block == kinds_table(), ("README.md's metric kinds table is out of date: run "
                                    "`python -m engine.report.metric_catalog --write README.md`")


def test_every_registered_kind_is_in_the_table():
    import engine.metrics  # noqa: F401

    assert [r["kind"] for r in kinds()] == registry.names("metric")
    assert {r["kind"]: r["aggregate"] for r in kinds()}["latency"] == "p95"


@pytest.mark.parametrize("row", kinds(), ids=lambda r: r["kind"])
def test_schema_defaults_are_the_ones_applied(row):
    """A kind configured without `aggregate` is summarised by its schema's default; one without `threshold`
    passes exactly as with its schema's default threshold."""
    spec = {"kind": row["kind"]}
    schema = registry.get("metric", row["kind"]).schema
    if schema.get("required", ["kind"]) != ["kind"]:
        pytest.skip("needs required config to compile")
    assert default_aggregate(spec) == schema["properties"]["aggregate"]["default"] == row["aggregate"]
    default = schema["properties"]["threshold"].get("default")
    if default is None:
        return
    implicit, explicit = metric_sql("m", spec).passed, metric_sql("m", {**spec, "threshold": default}).passed
    assert implicit.sql() == explicit.sql()
    other = metric_sql("m", {**spec, "threshold": default / 2}).passed
    assert other.sql() != implicit.sql()  # the threshold is really what the pass rule reads
