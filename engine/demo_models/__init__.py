"""Bundled deterministic demo models (no network, no weights) for the Tidepool support domain."""
from engine.demo_models.support import BM25Answerer, KeywordAnswerer, classify_request

__all__ = ["BM25Answerer", "KeywordAnswerer", "classify_request"]
