"""A judge's identity for calibration: its model, its rubric and the metric parameters that shape its verdict.

A calibration holds for one fingerprint only. Changing the judge model (or its parameters, which are in the
model fingerprint), the rubric or the pass threshold makes a new fingerprint, and an old calibration says
nothing about it. Cosmetic keys of the metric (description, batch_size, datasets) are left out.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.metrics.base import params
from engine.provenance import content_hash


@dataclass(frozen=True)
class JudgeFingerprint:
    fingerprint: str
    model: str  # the judge model's fingerprint (engine.models.fingerprint: keys its cached answers)
    rubric_hash: str
    params: dict  # metric parameters that change verdicts

    def to_json(self) -> dict:
        return {"fingerprint": self.fingerprint, "model_fingerprint": self.model, "rubric_hash": self.rubric_hash,
                "params": self.params}


def rubric_of(spec: dict) -> str:
    """The llm_judge metric's rubric (its schema's default, engine/metrics/judge.py, when it sets none)."""
    return params(spec)["rubric"]


def judge_fingerprint(model_fingerprint: str, spec: dict) -> JudgeFingerprint:
    """The fingerprint of an llm_judge metric `spec` whose judge model has `model_fingerprint`."""
    params = {"threshold": spec.get("threshold")}
    rubric_hash = content_hash({"rubric": rubric_of(spec)}, length=12)
    fp = content_hash({"model": model_fingerprint, "rubric": rubric_hash, "params": params}, length=16)
    return JudgeFingerprint(fp, model_fingerprint, rubric_hash, params)


def changed_parts(old: dict, new: JudgeFingerprint) -> list[str]:
    """What differs between a stored calibration's fingerprint parts and the current judge's."""
    parts = []
    if old.get("judge_model_fingerprint") != new.model:
        parts.append("judge model")
    if old.get("rubric_hash") != new.rubric_hash:
        parts.append("rubric")
    if (old.get("params") or {}) != new.params:
        parts.append("parameters")
    return parts or ["fingerprint"]
