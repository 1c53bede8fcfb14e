"""Model adapters, built from a model config block (conf/model/*.yaml)."""
from __future__ import annotations

from pathlib import Path

from engine.errors import UserError
from engine.models.base import ModelAdapter, ModelRequest, ModelResponse
from engine.paths import resolve_data_path
from engine.provenance import content_hash

ADAPTERS = ("python", "replay", "chat_completions")


def build_adapter(spec: dict, project_dir: Path) -> ModelAdapter:
    adapter = spec.get("adapter", "python")
    name = spec["name"]
    params = dict(spec.get("params") or {})
    if adapter == "python":
        from engine.models.python_callable import PythonCallableAdapter
        return PythonCallableAdapter(name, spec["_target_"], params, project_dir, spec.get("version"))
    if adapter == "replay":
        from engine.models.replay import ReplayAdapter
        path = params.pop("path")
        return ReplayAdapter(name, resolve_data_path(path, project_dir), path, **params)
    if adapter == "chat_completions":
        from engine.models.http import ChatCompletionsAdapter
        return ChatCompletionsAdapter(name=name, **params)
    raise UserError(f"model '{name}': unknown adapter '{adapter}' (allowed: {', '.join(ADAPTERS)})")


def fingerprint(adapter: ModelAdapter) -> str:
    return content_hash(adapter.fingerprint_payload(), length=16)


__all__ = ["ModelAdapter", "ModelRequest", "ModelResponse", "build_adapter", "fingerprint", "ADAPTERS"]
