"""Blessed baselines: a passing challenger promoted with `promote=true` becomes the default baseline."""
from __future__ import annotations

import json

from engine.provenance import stored_config, utc_now
from engine.store import Store


def current_blessed(store: Store) -> dict | None:
    row = store.con.execute("SELECT version, model_name, model_fingerprint, model_spec, decision_id, promoted_at "
                            "FROM blessed_baselines ORDER BY version DESC LIMIT 1").fetchall()
    if not row:
        return None
    version, name, fp, spec, decision, at = row[0]
    return {"version": version, "model_name": name, "model_fingerprint": fp, "model_spec": json.loads(spec),
            "decision_id": decision, "promoted_at": at.isoformat()}


def promote(store: Store, model_spec: dict, fingerprint: str, decision_id: str) -> int:
    with store.transaction() as con:
        version = con.execute("SELECT coalesce(max(version), 0) + 1 FROM blessed_baselines").fetchall()[0][0]
        con.execute("INSERT INTO blessed_baselines VALUES (?, ?, ?, ?, ?, ?)",
                    [version, model_spec["name"], fingerprint, stored_config(model_spec), decision_id, utc_now()])
    return version
