"""Every registered metric kind has a description (its docstring), a JSON Schema and a test that names it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import engine.metrics  # noqa: F401  (registers every kind)
from engine import registry
from engine.schemas import validator_for

TESTS = Path(__file__).resolve().parent
TEST_SOURCES = "\n".join(p.read_text(encoding="utf-8") for p in TESTS.rglob("test_*.py")
                         if p.name != Path(__file__).name)
KINDS = registry.names("metric")


def test_the_metric_library_is_registered():
    assert {"exact_match", "contains", "token_f1", "regex_match", "numeric_close", "choice", "classification",
            "regression", "lexical_relevance", "embedding_similarity", "lexical_groundedness", "safety",
            "required_refusal", "latency", "cost", "tokens", "output_length", "error_rate", "sql",
            "llm_judge"} <= set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_a_docstring_a_schema_and_a_test(kind):
    entry = registry.get("metric", kind)
    assert entry.description, f"metric kind '{kind}' has no docstring"
    assert entry.schema.get("properties"), f"metric kind '{kind}' has no JSON schema properties"
    validator_for(entry.schema).check_schema(entry.schema)
    assert entry.schema["properties"]["kind"], kind
    assert re.search(rf"""["']{re.escape(kind)}["']|kind: {re.escape(kind)}\b""", TEST_SOURCES), \
        f"no test under tests/ mentions metric kind '{kind}'"


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_compiles_from_a_minimal_config(kind):
    minimal = {"regex_match": {"pattern": "x"}, "safety": {"packs": {"p": [{"name": "n", "category": "c",
                                                                           "pattern": "x"}]}},
               "sql": {"expression": "output_text = 'x'"},
               "llm_judge": {"judge": {"name": "j", "adapter": "python", "_target_": "x.Y"}}}
    spec = {"kind": kind, **minimal.get(kind, {})}
    entry = registry.get("metric", kind)
    assert list(validator_for(entry.schema).iter_errors(spec)) == []
    assert entry.fn(spec).value is not None


# Every other registered kind (gate rules, drift tests, samplers) meets the same bar.
import engine.bridge.sampling  # noqa: E402,F401
import engine.gate.kinds  # noqa: E402,F401
import engine.monitor.stattests  # noqa: E402,F401

OTHER = [(k, n) for k in ("gate_rule", "drift_test", "sampler") for n in registry.names(k)]
# the test projects' configs (tests/fixtures/**/*.yaml) are test inputs too
FIXTURE_CONFIGS = "\n".join(p.read_text(encoding="utf-8") for p in (TESTS / "fixtures").rglob("*.yaml"))


def test_every_family_is_registered():
    assert set(registry.names("gate_rule")) == {"threshold", "all_pass", "improvement", "no_regression",
                                                "judge_calibrated"}
    assert {"psi", "ks", "wasserstein", "jensen_shannon", "chi_square", "kl", "hellinger",
            "share_change"} <= set(registry.names("drift_test"))
    assert {"hash_rate", "stratified", "failure_first", "low_score", "drift_segment",
            "disagreement", "judge_disagreement"} <= set(registry.names("sampler"))


@pytest.mark.parametrize("kind,name", OTHER)
def test_every_other_kind_has_a_docstring_a_schema_and_a_test(kind, name):
    entry = registry.get(kind, name)
    assert entry.description, f"{kind} '{name}' has no docstring"
    assert entry.schema.get("properties"), f"{kind} '{name}' has no JSON schema properties"
    validator_for(entry.schema).check_schema(entry.schema)
    assert re.search(rf"""["']{re.escape(name)}["']|(kind|test): {re.escape(name)}\b""",
                     TEST_SOURCES + FIXTURE_CONFIGS), \
        f"no test under tests/ mentions {kind} '{name}'"
