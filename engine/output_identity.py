"""What identifies a model's output: the key the output cache stores it under, per adapter.

* `input`: the output is a function of what the model is sent (the case's input and context passages), so
  cases with equal inputs share one stored output and one call. The key is the case's input hash.
  Default for `python` (a deterministic model) and `chat_completions` (the request holds the input text
  only, never the case id, so a second call for the same input is a second sample of the same answer --
  what `repeats` is for -- not the answer to another case).
* `case`: the output belongs to one case. The key is the input hash and the case id, so two cases with the
  same question keep their own answers (and an edited input is asked again). Always so for `replay`, whose
  predictions are recorded per case id; a python model that reads `case_id` or `metadata` sets
  `output_identity: case` in its model config.
"""
from __future__ import annotations

from typing import Any

IDENTITIES = ("input", "case")
DEFAULT_IDENTITY = {"python": "input", "chat_completions": "input", "replay": "case"}
FIXED_IDENTITY = {"replay": "case"}  # replay predictions belong to case ids, whatever the config says


def identity_problem(adapter: str, identity: Any) -> str | None:
    """Why `output_identity` cannot be used with this adapter, or None."""
    if identity is None:
        return None
    if identity not in IDENTITIES:
        return f"output_identity must be one of {', '.join(IDENTITIES)}, not {identity!r}"
    fixed = FIXED_IDENTITY.get(adapter)
    if fixed and identity != fixed:
        return f"adapter '{adapter}' answers per case id: output_identity can only be '{fixed}'"
    return None


def identity_of(spec: dict) -> str:
    """The identity of a (validated) model block's outputs: its `output_identity`, else its adapter's default."""
    return spec.get("output_identity") or DEFAULT_IDENTITY[spec["adapter"]]


def output_key(identity: str, input_hash: str, case_id: str) -> str:
    """One case's key (input hashes are 24 hex characters, so the two kinds of key never collide)."""
    return input_hash if identity == "input" else f"{input_hash}:{case_id}"


def output_keys(identity: str, input_hashes, case_ids):
    """The keys of many cases at once, as an Arrow array (input_hashes and case_ids: Arrow string arrays)."""
    import pyarrow.compute as pc

    if identity == "input":
        return input_hashes
    return pc.binary_join_element_wise(input_hashes, case_ids, ":")


def output_key_sql(identity: str, input_hash, case_id):
    """The same key as `output_key`, as a SQL expression over two column expressions (sqlglot)."""
    from sqlglot import exp

    if identity == "input":
        return input_hash
    return exp.DPipe(this=exp.DPipe(this=input_hash, expression=exp.Literal.string(":")), expression=case_id)
