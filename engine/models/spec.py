"""A model config block (conf/model/*.yaml, a judge's `judge:`) as frozen specs (engine/specs.py): defaults from
schemas/model.schema.json, where each adapter's `params` have their own schema (its `allOf`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.schemas import load_schema
from engine.specs import with_defaults


def params_schema(adapter: str) -> dict:
    """The schema of an adapter's `params` (replay, chat_completions); a python model's params are free."""
    for clause in load_schema("model")["allOf"]:
        then = clause["then"]
        if clause["if"]["properties"]["adapter"]["const"] == adapter and "properties" in then:
            return then["properties"]["params"]
    return {"type": "object"}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    adapter: str  # python | replay | chat_completions
    target: str | None  # python: the dotted path of the class or factory
    params: dict[str, Any]  # as written: python's constructor kwargs; the others are read by their params spec
    version: str | None  # part of the cache key
    output_identity: str | None  # None: the adapter's default (engine/output_identity.py)
    repeats: int  # calls per case
    batch_size: int | None  # None: run.batch_size

    @classmethod
    def of(cls, block: dict) -> "ModelSpec":
        m = with_defaults(load_schema("model"), block)
        return cls(str(m["name"]), str(m["adapter"]), m.get("_target_"), dict(m.get("params") or {}), m["version"],
                   m.get("output_identity"), int(m["repeats"]), m.get("batch_size"))


@dataclass(frozen=True)
class ReplayParams:
    path: str  # the predictions file, as written (resolved against the project)
    id_field: str
    output_field: str

    @classmethod
    def of(cls, params: dict) -> "ReplayParams":
        p = with_defaults(params_schema("replay"), params)
        return cls(str(p["path"]), str(p["id_field"]), str(p["output_field"]))


@dataclass(frozen=True)
class ChatCompletionsParams:
    base_url: str
    model: str
    api_key_env: str | None
    temperature: float
    max_tokens: int | None
    system_prompt: str | None
    timeout_s: float
    max_retries: int
    backoff_s: float
    max_backoff_s: float
    max_concurrency: int
    price_per_1k_prompt_tokens: float
    price_per_1k_completion_tokens: float
    tools: dict[str, dict] | None  # an agent's tools by name (engine/agents/tool_loop.py)
    max_steps: int

    @classmethod
    def of(cls, params: dict) -> "ChatCompletionsParams":
        """`params` filled with the schema's defaults; an unknown key is a config error (the schema names it)."""
        from engine.errors import UserError

        schema = params_schema("chat_completions")
        unknown = sorted(set(params) - set(schema["properties"]))
        if unknown:
            raise UserError(f"unknown chat_completions param(s) {', '.join(unknown)} "
                            f"(allowed: {', '.join(schema['properties'])})")
        return cls(**with_defaults(schema, params))
