"""Blessed baselines: a passing challenger promoted with `promote=true` becomes the default baseline.

Promotion is idempotent: promoting the model that is already the blessed head (a CI job retried after the
promotion committed) changes nothing and says so. A gate of a model against itself decides nothing and is
refused with the reason.
"""
from __future__ import annotations

import json
from pathlib import Path

from engine.errors import UserError
from engine.executor import execute
from engine.provenance import stored_config, utc_now
from engine.sql import statement
from engine.store import Store


BLESSED_HEAD = statement("blessed:head", "SELECT version, model_name, model_fingerprint, model_spec, decision_id, "
                         "promoted_at FROM blessed_baselines ORDER BY version DESC LIMIT 1",
                         "the blessed baseline: the default baseline, and the head a promotion checks first",
                         "with no baseline named, or with promote=true")
DECIDED_BY = statement("blessed:decision", "SELECT result FROM gate_decisions WHERE decision_id = $decision_id",
                       "the decision that blessed the head", "with promote=true when the challenger is the head already")
NEXT_VERSION = statement("blessed:next_version", "SELECT coalesce(max(version), 0) + 1 AS version "
                         "FROM blessed_baselines", "the new head's version",
                         "with promote=true when the verdict is PASS")
BLESS = statement("blessed:insert", "INSERT INTO blessed_baselines VALUES ($version, $model_name, $fingerprint, "
                  "$model_spec, $decision_id, $promoted_at)", "the challenger becomes the blessed baseline",
                  "with promote=true when the verdict is PASS")
STATEMENTS = (BLESSED_HEAD, DECIDED_BY, NEXT_VERSION, BLESS)


def current_blessed(store: Store) -> dict | None:
    rows = execute(store.con, BLESSED_HEAD, {})
    if not rows:
        return None
    r = rows[0]
    return {"version": r["version"], "model_name": r["model_name"], "model_fingerprint": r["model_fingerprint"],
            "model_spec": json.loads(r["model_spec"]), "decision_id": r["decision_id"],
            "promoted_at": r["promoted_at"].isoformat()}


def promote(store: Store, model_spec: dict, fingerprint: str, decision_id: str) -> int:
    """Record the model as the new blessed head; the head's version when it is that model already."""
    with store.transaction() as con:
        head = current_blessed(store)
        if head and head["model_fingerprint"] == fingerprint:
            return head["version"]
        version = execute(con, NEXT_VERSION, {})[0]["version"]
        execute(con, BLESS, {"version": version, "model_name": model_spec["name"], "fingerprint": fingerprint,
                             "model_spec": stored_config(model_spec), "decision_id": decision_id,
                             "promoted_at": utc_now()})
    return version


def model_fingerprint(spec: dict, project_dir: Path) -> str:
    from engine.models import build_adapter, fingerprint

    return fingerprint(build_adapter(spec, project_dir))


def already_promoted(store: Store, challenger_fp: str) -> dict | None:
    """The stored result of the decision that made this fingerprint the blessed head, marked as a no-op
    promotion; None when the challenger is not the blessed head."""
    head = current_blessed(store)
    if not head or head["model_fingerprint"] != challenger_fp:
        return None
    rows = [r["result"] for r in execute(store.con, DECIDED_BY, {"decision_id": head["decision_id"]})]
    if not rows:  # the deciding record is gone (a hand-edited store): nothing to show, but still nothing to do
        raise UserError(f"the challenger is already the blessed baseline v{head['version']} "
                        f"('{head['model_name']}', fingerprint {challenger_fp}), but its gate decision "
                        f"{head['decision_id']} is not in the store; nothing was promoted")
    result = json.loads(rows[0])
    result["promoted"] = {"version": head["version"], "model": head["model_name"], "fingerprint": challenger_fp,
                          "already_blessed": True, "promoted_at": head["promoted_at"],
                          "decision_id": head["decision_id"]}
    result["promotion_refused"] = None
    return result


def refuse_self_comparison(baseline_fp: str, challenger_fp: str, challenger_name: str, baseline_source: str,
                           store: Store) -> None:
    """Gating a model against itself (same fingerprint: same cached outputs) can only tie: refuse, saying why."""
    if baseline_fp != challenger_fp:
        return
    head = current_blessed(store)
    if head and head["model_fingerprint"] == challenger_fp and baseline_source.startswith("blessed"):
        raise UserError(
            f"the challenger '{challenger_name}' is the blessed baseline v{head['version']} itself (fingerprint "
            f"{challenger_fp}, promoted {head['promoted_at'][:19]} by {head['decision_id']}): a gate of a model "
            f"against itself decides nothing. Gate another challenger, or compare against another model with "
            f"baseline=NAME (to confirm the promotion, re-run with promote=true: it is a no-op)")
    raise UserError(f"the challenger '{challenger_name}' and the baseline ({baseline_source}) are the same model "
                    f"(fingerprint {challenger_fp}): a gate of a model against itself decides nothing; "
                    f"pick a different challenger= or baseline=")
