"""A model written in Python: `_target_` names a class or factory; the object is called with a batch."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from engine.agents.trajectory import TrajectoryError
from engine.agents.trajectory import normalize as normalize_trajectory
from engine.config import active_config
from engine.errors import UserError
from engine.models.importing import ImportFailure, call_factory, load_object
from engine.models.base import ModelRequest, ModelResponse


def _find_key(node: Any, name: str, target: str, params: dict, path: str = "") -> list[tuple[int, str]]:
    """(match quality, key path) of every model block in the config with this name and `_target_`."""
    found: list[tuple[int, str]] = []
    if isinstance(node, dict):
        if node.get("_target_") == target and node.get("name", name) == name:
            found.append((0 if (node.get("params") or {}) == params else 1, path))
        for key, value in node.items():
            if isinstance(value, (dict, list)) and key != "params":
                found += _find_key(value, name, target, params, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _find_key(value, name, target, params, f"{path}[{i}]")
    return found


def model_origin(name: str, target: str, params: dict, field: str = "_target_") -> str:
    """`conf/model/x.yaml @ challenger._target_` for the model block being built, from the active config."""
    composed = active_config()
    matches = sorted(_find_key(composed.config, name, target, params)) if composed else []
    if not matches:  # e.g. a blessed baseline read back from the store
        return f"model '{name}' @ {field}"
    key = f"{matches[0][1]}.{field}"
    return f"{composed.source_of(key)} @ {key}"


def _load_target(name: str, target: str, params: dict, project_dir: Path) -> Any:
    try:
        return call_factory(load_object(target, project_dir), params)
    except ImportFailure as e:
        field = "params" if e.kind in ("bad_params", "constructor_raised") else "_target_"
        where = model_origin(name, target, params, field)
        raise UserError(f"{where}: cannot build model '{name}' from `_target_: {target}`: {e}") from e


class PythonCallableAdapter:
    """Calls `target(**params)` once, then `model(requests) -> list[str | dict]` per batch.

    A dict result may carry output, error, prompt_tokens, completion_tokens, cost, latency_ms and an agent's
    `trajectory` (its steps: engine/agents/trajectory.py). Latency
    defaults to the batch's wall time divided by its size. If the whole batch raises, each case is retried
    alone so that one bad case cannot fail its neighbours."""

    def __init__(self, name: str, target: str, params: dict, project_dir: Path, version: str | None = None):
        self.name = name
        self.target = target
        self.params = params
        self.version = version
        self.model = _load_target(name, target, params, project_dir)

    def fingerprint_payload(self) -> dict:
        return {"adapter": "python", "target": self.target, "params": self.params, "version": self.version}

    def predict_batch(self, requests: list[ModelRequest]) -> list[ModelResponse]:
        started = time.perf_counter()
        try:
            results = list(self.model(requests))
        except Exception as e:
            if len(requests) == 1:
                return [ModelResponse.failed(f"{type(e).__name__}: {e}", _ms(started))]
            return [r for req in requests for r in self.predict_batch([req])]
        if len(results) != len(requests):
            reason = f"model returned {len(results)} results for {len(requests)} inputs"
            return [ModelResponse.failed(reason, _ms(started)) for _ in requests]
        per_case_ms = _ms(started) / len(requests)
        return [_to_response(r, per_case_ms) for r in results]


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _to_response(result: Any, latency_ms: float) -> ModelResponse:
    if isinstance(result, str):
        return ModelResponse(output_text=result, latency_ms=latency_ms)
    if isinstance(result, dict):
        output = result.get("output")
        error = result.get("error")
        if output is not None and not isinstance(output, str):
            output, error = None, f"model output is {type(output).__name__}, expected text"
        raw = None
        if "trajectory" in result:  # an agent: its steps are kept with the output (engine/agents/trajectory.py)
            try:
                raw = {"trajectory": normalize_trajectory(result["trajectory"])}
            except TrajectoryError as e:
                output, error = None, f"bad trajectory: {e}"
        return ModelResponse(output_text=output, error=error if error else (None if output is not None else "no output"),
                             latency_ms=result.get("latency_ms", latency_ms),
                             prompt_tokens=result.get("prompt_tokens"),
                             completion_tokens=result.get("completion_tokens"), cost=result.get("cost"), raw=raw)
    return ModelResponse.failed(f"model returned {type(result).__name__}, expected str or dict", latency_ms)
