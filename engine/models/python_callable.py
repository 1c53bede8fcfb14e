"""A model written in Python: `_target_` names a class or factory; the object is called with a batch."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from engine.errors import UserError
from engine.models.base import ModelRequest, ModelResponse


def _load_target(target: str, params: dict, project_dir: Path) -> Any:
    from hydra.utils import get_object

    # A project's own model code (e.g. `_target_: my_models.Answerer`) lives in the project directory.
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))

    try:
        factory = get_object(target)
    except Exception as e:  # ImportError, AttributeError, hydra's own wrapping
        raise UserError(f"model _target_ '{target}' cannot be imported: {e}") from e
    try:
        return factory(**params)
    except TypeError as e:
        raise UserError(f"model _target_ '{target}' rejected its params {sorted(params)}: {e}") from e


class PythonCallableAdapter:
    """Calls `target(**params)` once, then `model(requests) -> list[str | dict]` per batch.

    A dict result may carry output, error, prompt_tokens, completion_tokens, cost and latency_ms. Latency
    defaults to the batch's wall time divided by its size. If the whole batch raises, each case is retried
    alone so that one bad case cannot fail its neighbours."""

    def __init__(self, name: str, target: str, params: dict, project_dir: Path, version: str | None = None):
        self.name = name
        self.target = target
        self.params = params
        self.version = version
        self.model = _load_target(target, params, project_dir)

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
        return ModelResponse(output_text=output, error=error if error else (None if output is not None else "no output"),
                             latency_ms=result.get("latency_ms", latency_ms),
                             prompt_tokens=result.get("prompt_tokens"),
                             completion_tokens=result.get("completion_tokens"), cost=result.get("cost"))
    return ModelResponse.failed(f"model returned {type(result).__name__}, expected str or dict", latency_ms)
