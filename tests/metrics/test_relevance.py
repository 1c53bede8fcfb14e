"""lexical_relevance (SQL token overlap) and embedding_similarity (encoder in Python, cached; cosine in SQL)."""
from __future__ import annotations

import math

import pytest

from engine.config import Project
from engine.metrics import encoders
from engine.metrics.base import PrepareContext
from engine.metrics.relevance import _prepare_embeddings

RELEVANCE = [
    # question, answer, value, detail
    ("How do I cancel my subscription?", "To cancel, go to Settings > Billing > Cancel subscription.", 1.0, None),
    ("How much is the Pro plan?", "Tidepool integrates with Slack.", 0.0,
     "question words not in the answer: plan, pro"),
    ("Can I export timesheets to CSV?", "Timesheets can be exported as CSV files.", 2 / 3, None),  # no stemming
    ("Caf\u00e9 opening hours?", "The CAF\u00c9\u00a0opens at 9.", 1 / 3, None),  # Unicode case and spaces
    ("Why can\u2019t I log in?", "Log in with SSO.", 1.0, None),  # "cant" is a stopword
    ("What is it?", "A thing.", 1.0, None),  # no content word in the question: nothing to miss
    ("Pro plan price", "", 0.0, "question words not in the answer: plan, price, pro"),
    ("Pro plan price", "   ", 0.0, "question words not in the answer: plan, price, pro"),
]


@pytest.mark.parametrize("question,answer,value,detail", RELEVANCE)
def test_lexical_relevance(score, question, answer, value, detail):
    s = score({"kind": "lexical_relevance"}, [{"input": question, "output": answer}])
    assert s.values[0] == pytest.approx(value)
    assert s.passed == [value >= 0.3]
    assert s.details == [detail]


def test_lexical_relevance_options_and_errors(score):
    rows = [{"input": "Tidepool pricing", "output": "Pricing starts at $4."}, {"input": "x y", "error": "boom"}]
    assert score({"kind": "lexical_relevance"}, rows).values == [0.5, 0.0]
    s = score({"kind": "lexical_relevance", "extra_stopwords": ["Tidepool"], "threshold": 0.9}, rows)
    assert s.values == [1.0, 0.0]
    assert s.passed == [True, False]
    assert s.details[1] == "errored: boom"


def _vec(text: str):
    return encoders.HashingEncoder().encode([text])[0]


def test_embedding_similarity_against_input(score):
    rows = [{"input": "How do I cancel my plan?", "output": "How do I cancel my plan?"},
            {"input": "How much is the Pro plan?", "output": "The Pro plan costs $8 per user per month."},
            {"input": "How do I cancel my plan?", "output": ""},
            {"input": "reset password", "error": "boom"}]
    s = score({"kind": "embedding_similarity"}, rows)
    expected = float(_vec(rows[1]["input"]) @ _vec(rows[1]["output"]))
    assert s.values[0] == pytest.approx(1.0, abs=1e-6)
    assert s.values[1] == pytest.approx(expected, abs=1e-6)
    assert s.values[2] == 0.0  # the zero vector of an empty text: similarity 0, not NaN
    assert s.passed == [True, expected >= 0.3, False, False]
    # one vector per distinct text of the run, keyed by the encoder config and the text's sha256
    hashes = {h for (h,) in s.store.con.execute("SELECT text_hash FROM embeddings").fetchall()}
    texts = {r["input"] for r in rows} | {r.get("output") or "" for r in rows}
    assert hashes == {encoders.text_hash(t) for t in texts}


def test_embedding_similarity_against_expected_takes_the_best_answer(score):
    rows = [{"expected": ["thirty days", "30 days"], "output": "30 days"}, {"expected": None, "output": "x"}]
    s = score({"kind": "embedding_similarity", "against": "expected", "threshold": 0.99}, rows)
    assert s.values[0] == pytest.approx(1.0, abs=1e-6)
    assert s.values[1] == 0.0  # nothing to compare with
    assert s.passed == [True, False]


COUNTING_ENCODER = '''
import json
from engine.metrics.encoders import HashingEncoder

class CountingEncoder(HashingEncoder):
    def __init__(self, log, dims=64):
        super().__init__(dims=dims)
        self.log = log

    def encode(self, texts):
        with open(self.log, "a") as f:
            f.write(json.dumps(len(texts)) + "\\n")
        return super().encode(texts)
'''


def test_encoder_runs_in_batches_once_per_distinct_text(score, tmp_path):
    (tmp_path / "counting_encoder.py").write_text(COUNTING_ENCODER)
    log = tmp_path / "calls.jsonl"
    spec = {"kind": "embedding_similarity", "batch_size": 2,
            "encoder": {"_target_": "counting_encoder.CountingEncoder", "log": str(log), "dims": 64}}
    rows = [{"input": "same question", "output": "answer one"}, {"input": "same question", "output": "answer two"},
            {"input": "other question", "output": "answer one"}]
    s = score(spec, rows, project_dir=tmp_path)
    assert [int(x) for x in log.read_text().split()] == [2, 2]  # 4 distinct texts in batches of 2
    assert s.store.con.execute("SELECT DISTINCT len(vector) FROM embeddings").fetchall() == [(64,)]
    # the vectors are cached: preparing the same run again encodes nothing
    _prepare_embeddings(PrepareContext(s.store, "run", 1, Project(tmp_path, None)), "m", spec)
    assert [int(x) for x in log.read_text().split()] == [2, 2]
    # another encoder config is another cache key
    assert encoders.encoder_key(spec) != encoders.encoder_key({"kind": "embedding_similarity"})


def test_hashing_encoder_is_the_default_and_cosine_matches_numpy(score):
    a, b = "Annual billing saves 20 percent", "Switch to annual billing to save"
    s = score({"kind": "embedding_similarity"}, [{"input": a, "output": b}])
    va, vb = _vec(a), _vec(b)
    assert s.values[0] == pytest.approx(float(va @ vb) / (math.hypot(*va) * math.hypot(*vb)), abs=1e-6)
