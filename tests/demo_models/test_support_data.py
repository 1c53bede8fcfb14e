"""The bundled Tidepool support data: schema-valid, consistent, and in sync with its generator."""
from __future__ import annotations

import importlib.util
import json
import re
import string
from collections import Counter
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from engine.paths import bundled_datasets_dir, schemas_dir

SUPPORT = bundled_datasets_dir() / "support"
AREAS = {"billing", "account", "troubleshooting", "policy", "integrations", "scheduling"}
ATTACKS = {"pii_exfiltration", "harmful", "prompt_injection", "out_of_scope"}
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")


def normalize_answer(s: str) -> str:
    # SQuAD v1.1 reference normalisation.
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def _load(name: str) -> list[dict]:
    with open(SUPPORT / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def kb() -> list[dict]:
    return _load("kb.jsonl")


@pytest.fixture(scope="module")
def qa() -> list[dict]:
    return _load("golden_qa.jsonl")


@pytest.fixture(scope="module")
def safety() -> list[dict]:
    return _load("safety.jsonl")


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads((schemas_dir() / "case.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_kb_articles(kb):
    assert len(kb) >= 40
    assert len({a["id"] for a in kb}) == len(kb)
    for a in kb:
        assert set(a) == {"id", "title", "area", "text"}
        assert re.fullmatch(r"kb-\d{3}", a["id"])
        assert a["area"] in AREAS
        assert 4 <= len(_SENT_SPLIT.split(a["text"])) <= 8, a["id"]
    assert set(Counter(a["area"] for a in kb)) == AREAS


def test_qa_cases_validate_and_are_grounded(qa, kb, validator):
    assert len(qa) >= 200
    assert len({c["id"] for c in qa}) == len(qa)
    by_id = {a["id"]: a for a in kb}
    for c in qa:
        errors = list(validator.iter_errors(c))
        assert not errors, (c["id"], errors[0].message)
        assert re.fullmatch(r"qa-\d{4}", c["id"])
        assert isinstance(c["input"], str) and c["input"].strip()
        assert isinstance(c["expected"], str)
        assert 1 <= len(normalize_answer(c["expected"]).split()) <= 6, c["id"]
        assert len(c["tags"]) == 1 and c["tags"][0] in AREAS
        assert re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", c["metadata"]["topic"])
        articles = [by_id[k] for k in c["metadata"]["kb_ids"]]
        assert c["context"] == [a["text"] for a in articles]
        assert all(a["area"] == c["tags"][0] for a in articles)
        # The answer sits verbatim in exactly one sentence of the supporting article(s).
        sentences = [s for a in articles for s in _SENT_SPLIT.split(a["text"])]
        hits = [s for s in sentences if c["expected"].lower() in s.lower()]
        assert len(hits) == 1, (c["id"], c["expected"], len(hits))


def test_qa_tag_coverage(qa):
    counts = Counter(c["tags"][0] for c in qa)
    assert sum(1 for n in counts.values() if n >= 25) >= 5, counts


def test_safety_cases(safety, validator):
    assert len(safety) >= 40
    assert len({c["id"] for c in safety}) == len(safety)
    for c in safety:
        errors = list(validator.iter_errors(c))
        assert not errors, (c["id"], errors[0].message)
        assert re.fullmatch(r"rt-\d{3}", c["id"])
        assert c["expected"] is None
        assert c["tags"][0] == "safety" and c["tags"][1] in ATTACKS and len(c["tags"]) == 2
        assert c["metadata"] == {"expected_behavior": "refuse", "attack": c["tags"][1]}
    counts = Counter(c["metadata"]["attack"] for c in safety)
    assert set(counts) == ATTACKS and min(counts.values()) >= 8, counts


def test_ids_unique_across_files(qa, safety):
    ids = [c["id"] for c in qa] + [c["id"] for c in safety]
    assert len(set(ids)) == len(ids)


def test_committed_files_match_generator(kb, qa, safety):
    script = Path(__file__).resolve().parents[2] / "datasets" / "support" / "build_support_data.py"
    spec = importlib.util.spec_from_file_location("build_support_data", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == (kb, qa, safety)
