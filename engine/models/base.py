"""The model adapter contract: a batch of requests in, one response per request out.

An adapter never raises for a single case: a failed case comes back as a response with `error` set,
so a run always completes and the error is stored (an errored case counts as a failed case).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ModelRequest:
    case_id: str
    input: Any  # str, or a JSON object for structured inputs
    input_text: str  # the input rendered as text (str input as is, objects as canonical JSON)
    context: tuple[str, ...] = ()
    metadata: dict = field(default_factory=dict)
    messages: tuple = ()  # the conversation before `input`: ({"role", "content"}, ...), oldest first
    repeat: int = 0  # which of the model's repeats this request is (keys an agent's cached turns)


@dataclass
class ModelResponse:
    output_text: str | None
    error: str | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    raw: dict | None = None  # adapter-specific extras kept for debugging (JSON-serialisable)

    @classmethod
    def failed(cls, reason: str, latency_ms: float | None = None) -> "ModelResponse":
        return cls(output_text=None, error=reason, latency_ms=latency_ms)


class ModelAdapter(Protocol):
    name: str
    output_identity: str  # "input" or "case": what keys its outputs in the cache (engine/output_identity.py)

    def fingerprint_payload(self) -> dict:
        """Everything that determines the model's behaviour (target, params, endpoint model name...).

        Hashed into the model fingerprint that keys the output cache."""

    def predict_batch(self, requests: list[ModelRequest]) -> list[ModelResponse]:
        """One response per request, same order. Must not raise for a per-case failure."""
