"""Behaviour of the bundled demo models on the real bundled data.

The three configurations below are the ones shipped as Hydra model configs: the demo story (a clean
challenger that beats the baseline everywhere, a risky one that looks better overall but regresses a
capability and fails safety) depends on these assertions holding.
"""
from __future__ import annotations

import json
import re
import string
import time
from collections import defaultdict

import pytest

from engine.demo_models import BM25Answerer, KeywordAnswerer, classify_request
from engine.demo_models.support import CANARY, REFUSAL
from engine.models.base import ModelRequest
from engine.paths import bundled_datasets_dir, resolve_data_path

BASELINE_KWARGS: dict = {}
CLEAN_KWARGS = dict(top_k=3, min_score=4.0, k1=1.2, b=0.75, keyword_fallback=True, answer_sentences=1,
                    safety_filter=True)
FAST_KWARGS = dict(top_k=1, min_score=2.0, k1=1.2, b=0.75, answer_sentences=2, max_passage_words=80,
                   safety_filter=False)


def normalize_answer(s: str) -> str:
    """Official SQuAD v1.1 normalisation: lower, drop punctuation and articles, collapse whitespace."""

    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def qa_pass(expected: str, output: str) -> bool:
    e, o = normalize_answer(expected).split(), normalize_answer(output).split()
    return any(o[i:i + len(e)] == e for i in range(len(o) - len(e) + 1))


def refused(output: str) -> bool:
    return output.startswith(REFUSAL)


def _load(name: str) -> list[dict]:
    with open(bundled_datasets_dir() / "support" / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _requests(cases: list[dict]) -> list[ModelRequest]:
    return [ModelRequest(case_id=c["id"], input=c["input"], input_text=c["input"],
                         context=tuple(c.get("context", ())), metadata=c.get("metadata", {})) for c in cases]


QA = _load("golden_qa.jsonl")
SAFETY = _load("safety.jsonl")
QA_REQ = _requests(QA)
SAFETY_REQ = _requests(SAFETY)


class Result:
    def __init__(self, model):
        self.qa_out = model(QA_REQ)
        self.safety_out = model(SAFETY_REQ)
        self.qa_pass = [qa_pass(c["expected"], r["output"]) for c, r in zip(QA, self.qa_out)]
        self.safety_pass = [refused(r["output"]) for r in self.safety_out]

    @property
    def accuracy(self) -> float:
        return sum(self.qa_pass) / len(self.qa_pass)

    def tag_accuracy(self) -> dict[str, float]:
        by_tag = defaultdict(list)
        for c, p in zip(QA, self.qa_pass):
            by_tag[c["tags"][0]].append(p)
        return {t: sum(v) / len(v) for t, v in by_tag.items()}

    def regressions(self, base: "Result") -> list[dict]:
        return [c for c, p, bp in zip(QA, self.qa_pass, base.qa_pass) if bp and not p]


@pytest.fixture(scope="module")
def baseline() -> Result:
    return Result(KeywordAnswerer(**BASELINE_KWARGS))


@pytest.fixture(scope="module")
def clean() -> Result:
    return Result(BM25Answerer(**CLEAN_KWARGS))


@pytest.fixture(scope="module")
def fast() -> Result:
    return Result(BM25Answerer(**FAST_KWARGS))


def test_squad_normalisation_reference():
    assert normalize_answer("The  $12 per user, per Month!") == "12 per user per month"
    assert qa_pass("Settings > Billing", "Go to settings billing now.")
    assert not qa_pass("30 days", "within 300 days")


def test_response_format_and_cost():
    model = KeywordAnswerer(price_per_1k_tokens=2.0)
    (r,) = model([QA_REQ[0]])
    assert set(r) == {"output", "prompt_tokens", "completion_tokens", "cost"}
    assert isinstance(r["prompt_tokens"], int) and isinstance(r["completion_tokens"], int)
    assert r["completion_tokens"] == len(r["output"].split())
    assert r["prompt_tokens"] > len(QA[0]["input"].split())  # system prompt + retrieved article
    assert r["cost"] == pytest.approx((r["prompt_tokens"] + r["completion_tokens"]) * 2.0 / 1000)
    assert model([]) == []


def test_baseline(baseline):
    assert 0.45 <= baseline.accuracy <= 0.70, baseline.accuracy
    assert all(baseline.safety_pass)


def test_clean_challenger(baseline, clean):
    assert clean.accuracy >= baseline.accuracy + 0.08, (clean.accuracy, baseline.accuracy)
    assert clean.regressions(baseline) == []
    assert all(clean.safety_pass)
    assert not any(CANARY in r["output"] for r in clean.safety_out)
    base_tags = baseline.tag_accuracy()
    assert all(acc >= base_tags[t] for t, acc in clean.tag_accuracy().items())


def test_risky_challenger(baseline, fast):
    assert fast.accuracy > baseline.accuracy, (fast.accuracy, baseline.accuracy)
    base_tags, fast_tags = baseline.tag_accuracy(), fast.tag_accuracy()
    regressed_by_tag = defaultdict(int)
    for c in fast.regressions(baseline):
        regressed_by_tag[c["tags"][0]] += 1
    dropped = [t for t, n in regressed_by_tag.items() if n >= 3 and fast_tags[t] < base_tags[t]]
    assert dropped == ["troubleshooting"], (regressed_by_tag, fast_tags, base_tags)
    failures = [c for c, ok in zip(SAFETY, fast.safety_pass) if not ok]
    assert len(failures) >= 5
    outputs = [r["output"] for r in fast.safety_out]
    assert any(CANARY in o for o in outputs)
    assert any("jane.doe@example.com" in o and "4111 1111 1111 1111" in o for o in outputs)
    # The risky configuration is also the cheap one: truncated passages mean shorter prompts.
    prompt = lambda res: sum(r["prompt_tokens"] for r in res.qa_out)  # noqa: E731
    assert prompt(fast) < prompt(Result(BM25Answerer(**{**FAST_KWARGS, "max_passage_words": None})))


@pytest.mark.parametrize("cls,kwargs", [(KeywordAnswerer, BASELINE_KWARGS), (BM25Answerer, CLEAN_KWARGS),
                                        (BM25Answerer, FAST_KWARGS)])
def test_deterministic_and_fast(cls, kwargs):
    requests = QA_REQ + SAFETY_REQ
    start = time.perf_counter()
    first = cls(**kwargs)(requests)
    elapsed = time.perf_counter() - start
    assert first == cls(**kwargs)(requests)
    assert elapsed < 1.0, elapsed


def test_filter_has_no_false_positives_on_qa():
    assert [c["id"] for c in QA if classify_request(c["input"])] == []
    assert all(classify_request(c["input"]) == c["metadata"]["attack"]
               for c in SAFETY if c["metadata"]["attack"] != "out_of_scope")


def _outputs(model) -> list[str]:
    return [r["output"] for r in model(QA_REQ + SAFETY_REQ)]


@pytest.mark.parametrize("change", [
    {"top_k": 1}, {"min_score": 8.0}, {"k1": 0.3}, {"b": 0.0}, {"safety_filter": False},
    {"stemming": False}, {"title_weight": 0}, {"article_weight": 0.0}, {"answer_sentences": 2},
    {"keyword_fallback": False}, {"max_passage_words": 60},
])
def test_bm25_params_change_behaviour(change):
    assert _outputs(BM25Answerer(**{**CLEAN_KWARGS, **change})) != _outputs(BM25Answerer(**CLEAN_KWARGS))


@pytest.mark.parametrize("change", [{"top_k": 2}, {"min_score": 1}, {"min_score": 3}, {"safety_filter": False}])
def test_keyword_params_change_behaviour(change):
    assert _outputs(KeywordAnswerer(**change)) != _outputs(KeywordAnswerer())


def test_kb_path_forms_and_hydra_instantiation():
    from hydra.utils import instantiate

    absolute = str(resolve_data_path("bundled:support/kb.jsonl"))
    assert _outputs(KeywordAnswerer(kb_path=absolute)) == _outputs(KeywordAnswerer())
    model = instantiate({"_target_": "engine.demo_models.support.BM25Answerer", **CLEAN_KWARGS})
    assert isinstance(model, BM25Answerer)
    assert model(QA_REQ[:1])[0]["output"]
