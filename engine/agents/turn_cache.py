"""The tool loop's per-turn cache: each model turn of an agent is kept as soon as it is answered.

An agent's output is cached whole like any output (by model fingerprint and input), but only once the loop ends
with a final answer. The turns on the way cost as much as a final answer, so each one is kept too: a re-run with
the same model fingerprint and the same input re-plays the turns already answered instead of calling the
endpoint, and a loop cut short (the process killed, the endpoint failing at turn 3) resumes from the first turn
it has no answer for. A loop that ran out of `max_steps` is re-played from the cache without a call.

The store is closed while models are called (engine/runner.py), so turns live in files beside it, one JSON
file per turn, written atomically (a temporary file renamed over the target): `.flywheel/turns/ab/<key>.json`.
The key is the sha256 of (model fingerprint payload, repeat, the conversation sent): the conversation holds
every earlier turn and every tool result, so a tool that now answers differently starts a new branch. Only a
parsed assistant message is kept; a failed call (HTTP error, timeout, malformed body) is asked again next time.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import suppress
from pathlib import Path

from engine.provenance import canonical_json
from engine.redaction import scrub


class TurnCache:
    def __init__(self, directory: Path, fingerprint_payload: dict):
        self.directory = Path(directory)
        self._model = canonical_json(fingerprint_payload)

    def _path(self, repeat: int, messages: list[dict]) -> Path:
        key = hashlib.sha256(canonical_json({"model": self._model, "repeat": repeat,
                                             "messages": messages}).encode("utf-8")).hexdigest()
        return self.directory / key[:2] / f"{key}.json"

    def get(self, repeat: int, messages: list[dict]) -> dict | None:
        """The cached turn {"message", "usage"} for this conversation, or None (absent or unreadable)."""
        try:
            turn = json.loads(self._path(repeat, messages).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return turn if isinstance(turn, dict) and isinstance(turn.get("message"), dict) else None

    def put(self, repeat: int, messages: list[dict], message: dict, usage: tuple) -> None:
        """Keep one answered turn. A cache that cannot be written only costs a call next time."""
        path = self._path(repeat, messages)
        with suppress(OSError, ValueError):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".turn.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(scrub(json.dumps({"message": message, "usage": list(usage)}, ensure_ascii=False)))
                os.replace(tmp, path)
            except BaseException:
                with suppress(OSError):
                    os.unlink(tmp)
                raise
