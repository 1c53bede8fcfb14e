"""Model adapters, built from a model config block (conf/model/*.yaml)."""
from __future__ import annotations

from pathlib import Path

from engine.errors import UserError
from engine.models.base import ModelAdapter, ModelRequest, ModelResponse
from engine.models.spec import ChatCompletionsParams, ModelSpec, ReplayParams
from engine.output_identity import identity_of, identity_problem
from engine.paths import resolve_data_path
from engine.provenance import content_hash

ADAPTERS = ("python", "replay", "chat_completions")


def build_adapter(spec: dict, project_dir: Path) -> ModelAdapter:
    model = ModelSpec.of(spec)
    name, adapter, params = model.name, model.adapter, model.params
    problem = identity_problem(adapter, model.output_identity)
    if problem:
        raise UserError(f"model '{name}': {problem}")
    if adapter == "python":
        from engine.models.python_callable import PythonCallableAdapter
        built = PythonCallableAdapter(name, model.target, params, project_dir, model.version)
    elif adapter == "replay":
        from engine.models.replay import ReplayAdapter
        replay = ReplayParams.of(params)
        built = ReplayAdapter(name, resolve_data_path(replay.path, project_dir), replay)
    elif adapter == "chat_completions":
        from engine.models.http import ChatCompletionsAdapter
        built = ChatCompletionsAdapter(name, ChatCompletionsParams.of(params), project_dir)
    else:
        raise UserError(f"model '{name}': unknown adapter '{adapter}' (allowed: {', '.join(ADAPTERS)})")
    # What identifies one of its outputs in the cache: the input, or the case (engine/output_identity.py).
    built.output_identity = identity_of(spec)
    return built


def fingerprint(adapter: ModelAdapter) -> str:
    return content_hash(adapter.fingerprint_payload(), length=16)


__all__ = ["ModelAdapter", "ModelRequest", "ModelResponse", "build_adapter", "fingerprint", "ADAPTERS"]
