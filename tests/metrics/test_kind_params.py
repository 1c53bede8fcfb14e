"""Every default a metric kind's schema declares for one of its params is the one the kind applies: a metric that
leaves the param out compiles exactly as one that sets it to the schema's default, and (where the param shapes the
SQL) differently from one that sets another value, so the default lives in the schema and nowhere else."""
from __future__ import annotations

import pytest

from engine import registry
from engine.compiler import metric_sql

REQUIRED = {"regex_match": {"pattern": "x"}}
# read only by the kind's Python step (the texts an encoder is sent in one call; the judge's prompts), not its SQL
PYTHON_STEP_ONLY = {("embedding_similarity", "batch_size")}
# `threshold` and `aggregate` are checked against the README's kinds table (tests/test_metric_catalog.py); an
# llm_judge metric's judgements are keyed by its config as written, so writing a default out is another metric
SKIP_KINDS = {"llm_judge"}


def _params_with_defaults() -> list[tuple[str, str, object, dict]]:
    import engine.metrics  # noqa: F401  (registers the kinds)

    out = []
    for kind in registry.names("metric"):
        for key, prop in registry.schema("metric", kind)["properties"].items():
            if "default" in prop and key not in ("aggregate", "threshold") and kind not in SKIP_KINDS:
                out.append((kind, key, prop["default"], prop))
    return out


def _another_value(default, prop: dict):
    if "enum" in prop:
        return next(v for v in prop["enum"] if v != default)
    if isinstance(default, bool):
        return not default
    if isinstance(default, (int, float)):
        return default / 2 if default else 0.5
    if isinstance(default, list):
        return [*default, "zz"]
    if isinstance(default, dict):
        return {"_target_": "engine.metrics.encoders.HashingEncoder", "dims": 64}
    return "zz"


def _sql(spec: dict) -> tuple:
    compiled = metric_sql("m", spec)
    return tuple(None if part is None else part.sql()
                 for part in (compiled.value, compiled.passed, compiled.detail, compiled.where,
                              *(e for _, e in compiled.bindings)))


PARAMS = _params_with_defaults()


def test_the_kinds_declare_their_defaults():
    assert {(k, key) for k, key, _, _ in PARAMS} >= {
        ("exact_match", "normalizer"), ("classification", "normalizer"), ("numeric_close", "rel_tol"),
        ("lexical_groundedness", "support_threshold"), ("required_refusal", "patterns"), ("tokens", "which"),
        ("tool_error_rate", "max_rate"), ("embedding_similarity", "encoder")}


@pytest.mark.parametrize("kind, key, default, prop", PARAMS, ids=[f"{k}.{key}" for k, key, _, _ in PARAMS])
def test_a_left_out_param_is_its_schema_default(kind, key, default, prop):
    spec = {"kind": kind, **REQUIRED.get(kind, {})}
    implicit = _sql(spec)
    assert implicit == _sql({**spec, key: default})
    if (kind, key) not in PYTHON_STEP_ONLY:
        assert implicit != _sql({**spec, key: _another_value(default, prop)})  # the kind really reads it
