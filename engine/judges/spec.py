"""The `judges` section as a frozen spec (engine/specs.py): defaults from schemas/judges.schema.json."""
from __future__ import annotations

from dataclasses import dataclass

from engine.schemas import load_schema
from engine.specs import with_defaults


@dataclass(frozen=True)
class BootstrapSpec:
    """The seeded percentile interval of Cohen's kappa."""

    resamples: int
    seed: int
    level: float


@dataclass(frozen=True)
class TraceSampleSpec:
    """`flywheel judges score`: production traces in [start, end) whose hash(salt, trace_id) falls below rate."""

    rate: float
    salt: str
    start: str | None
    end: str | None


@dataclass(frozen=True)
class JudgesSpec:
    metrics: tuple[str, ...] | None  # the llm_judge metrics to calibrate (None: every selected one)
    labels: tuple[str, ...]  # label files imported before calibrating
    bootstrap: BootstrapSpec
    traces: TraceSampleSpec

    @classmethod
    def of(cls, cfg: dict) -> "JudgesSpec":
        j = with_defaults(load_schema("judges"), cfg.get("judges"))
        b, t = j["bootstrap"], j["traces"]
        return cls(None if j["metrics"] is None else tuple(j["metrics"]), tuple(j["labels"]),
                   BootstrapSpec(int(b["resamples"]), int(b["seed"]), float(b["level"])),
                   TraceSampleSpec(float(t["rate"]), str(t["salt"]), t["start"], t["end"]))
