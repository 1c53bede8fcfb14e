"""The bundled download-free encoder and the encoder plumbing."""
from __future__ import annotations

import hashlib

import duckdb
import numpy as np
import pytest

from engine.errors import UserError
from engine.metrics.encoders import HashingEncoder, build_encoder, encoder_key, text_hash


def test_features_are_word_unigrams_and_bigrams():
    assert HashingEncoder().features("Reset the PASSWORD, now!") == [
        "reset", "the", "password", "now", "reset the", "the password", "password now"]
    assert HashingEncoder(ngrams=1).features("caf\u00e9 ol\u00e9") == ["caf\u00e9", "ol\u00e9"]


def test_vectors_are_deterministic_and_l2_normalised():
    texts = ["How do I cancel?", "How do I cancel?", "", "Annual billing saves 20%"]
    v = HashingEncoder(dims=128).encode(texts)
    assert v.shape == (4, 128)
    assert np.array_equal(v[0], HashingEncoder(dims=128).encode(["How do I cancel?"])[0])  # no salted hash()
    assert np.linalg.norm(v[0]) == pytest.approx(1.0)
    assert not v[2].any()  # empty text: the zero vector
    assert float(v[0] @ v[1]) == pytest.approx(1.0)


def test_text_hash_matches_duckdb_sha256():
    for text in ["", "abc", "caf\u00e9 \u00a0\u2014 \U0001F600"]:
        assert text_hash(text) == duckdb.sql("SELECT sha256($t)", params={"t": text}).fetchall()[0][0]
        assert text_hash(text) == hashlib.sha256(text.encode()).hexdigest()


def test_encoder_key_covers_the_config():
    assert encoder_key({}) == encoder_key({"encoder": {"_target_": "engine.metrics.encoders.HashingEncoder"}})
    assert encoder_key({}) != encoder_key({"encoder": {"_target_": "engine.metrics.encoders.HashingEncoder",
                                                       "dims": 64}})


def test_build_encoder_errors_are_user_errors():
    assert isinstance(build_encoder({"_target_": "engine.metrics.encoders.HashingEncoder", "dims": 8}),
                      HashingEncoder)
    with pytest.raises(UserError, match="cannot be built"):
        build_encoder({"_target_": "engine.metrics.encoders.NoSuchEncoder"})
    with pytest.raises(UserError, match="cannot be built"):
        build_encoder({"_target_": "engine.metrics.encoders.HashingEncoder", "colour": "red"})
    with pytest.raises(UserError, match="no encode"):
        build_encoder({"_target_": "builtins.dict"})
