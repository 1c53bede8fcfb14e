"""Model adapters, built from a model config block (conf/model/*.yaml)."""
from __future__ import annotations

from pathlib import Path

from engine.errors import UserError
from engine.models.base import ModelAdapter, ModelRequest, ModelResponse
from engine.output_identity import identity_of, identity_problem
from engine.paths import resolve_data_path
from engine.provenance import content_hash

ADAPTERS = ("python", "replay", "chat_completions")


def build_adapter(spec: dict, project_dir: Path) -> ModelAdapter:
    adapter = spec.get("adapter", "python")
    name = spec["name"]
    params = dict(spec.get("params") or {})
    problem = identity_problem(adapter, spec.get("output_identity"))
    if problem:
        raise UserError(f"model '{name}': {problem}")
    if adapter == "python":
        from engine.models.python_callable import PythonCallableAdapter
        built = PythonCallableAdapter(name, spec["_target_"], params, project_dir, spec.get("version"))
    elif adapter == "replay":
        from engine.models.replay import ReplayAdapter
        path = params.pop("path")
        built = ReplayAdapter(name, resolve_data_path(path, project_dir), path, **params)
    elif adapter == "chat_completions":
        from engine.models.http import ChatCompletionsAdapter
        built = ChatCompletionsAdapter(name=name, **params, **({"project_dir": project_dir} if "tools" in params else {}))
    else:
        raise UserError(f"model '{name}': unknown adapter '{adapter}' (allowed: {', '.join(ADAPTERS)})")
    # What identifies one of its outputs in the cache: the input, or the case (engine/output_identity.py).
    built.output_identity = identity_of(spec)
    return built


def fingerprint(adapter: ModelAdapter) -> str:
    return content_hash(adapter.fingerprint_payload(), length=16)


__all__ = ["ModelAdapter", "ModelRequest", "ModelResponse", "build_adapter", "fingerprint", "ADAPTERS"]
