"""Text encoders for `embedding_similarity`: objects with `encode(texts) -> one vector per text`.

An encoder is code, so a metric names it with `encoder: {_target_: dotted.path, **kwargs}`. It runs in Python
in batches over the distinct texts of a run; vectors are cached in the store's `embeddings` table, keyed by
the encoder config and the text's sha256, and the cosine is computed in SQL.
"""
from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.errors import UserError
from engine.provenance import content_hash

DEFAULT_ENCODER = {"_target_": "engine.metrics.encoders.HashingEncoder"}


class Encoder(Protocol):
    def encode(self, texts: list[str]) -> Sequence[Sequence[float]]:
        """One vector per text, same order, all of the same length."""


class HashingEncoder:
    """Feature hashing of lowercase word unigrams and bigrams into `dims` signed buckets, L2-normalised.

    Deterministic and download-free (the hash is blake2b, not Python's salted hash()); an empty text
    encodes to the zero vector."""

    _WORD = re.compile(r"[^\W_]+")  # Unicode letters and digits

    def __init__(self, dims: int = 512, ngrams: int = 2):
        if dims < 1 or ngrams < 1:
            raise ValueError("dims and ngrams must be >= 1")
        self.dims = int(dims)
        self.ngrams = int(ngrams)

    def features(self, text: str) -> list[str]:
        words = self._WORD.findall(text.lower())
        return [" ".join(words[i:i + n]) for n in range(1, self.ngrams + 1) for i in range(len(words) - n + 1)]

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self.features(text):
                h = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "big")
                out[row, h % self.dims] += 1.0 if (h >> 63) == 0 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def encoder_config(spec: dict) -> dict:
    return dict(spec.get("encoder") or DEFAULT_ENCODER)


def encoder_key(spec: dict) -> str:
    """Identifies cached vectors: the encoder's whole config (change a parameter, get new vectors)."""
    return content_hash(encoder_config(spec), length=16)


def build_encoder(config: dict, project_dir: Path | None = None) -> Any:
    from hydra.utils import get_object

    params = {k: v for k, v in config.items() if k != "_target_"}
    if project_dir is not None and str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))  # a project's own encoder module
    try:
        encoder = get_object(config["_target_"])(**params)
    except Exception as e:  # ImportError, TypeError from bad params, hydra's wrapping
        raise UserError(f"encoder '{config['_target_']}' cannot be built with {sorted(params)}: {e}") from e
    if not callable(getattr(encoder, "encode", None)):
        raise UserError(f"encoder '{config['_target_']}' has no encode(texts) method")
    return encoder


def text_hash(text: str) -> str:
    """The same value as DuckDB's sha256(text)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
