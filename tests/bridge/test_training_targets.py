"""Without golden growth, a failure with a correction trains on the corrected answer; PII never leaves."""
from __future__ import annotations

import json

from engine.bridge.run import run_bridge
from tests.bridge.conftest import add_feedback, add_traces

CFG = {
    "monitor": {"window": "day"},
    "dataset": {},
    "bridge": {"out_dir": "out", "salt": "s",
               "policies": {"failures": {"kind": "failure_first", "signals": ["correction", "negative_feedback"]},
                            "all": {"kind": "hash_rate", "rate": 1.0}},
               "export": {"format": "jsonl", "layout": "flat", "redact": {"pii": ["email", "phone", "credit_card"],
                                                                          "fields": ["user_id"]}},
               "golden": {"dataset": None}},
}


def test_corrections_are_training_targets_and_pii_is_redacted(store, tmp_path):
    add_traces(store, [
        {"trace_id": "a", "input": "my email is jane@example.com, where is the invoice?", "output": "wrong"},
        {"trace_id": "b", "input": "call me on +1 415 555 0134", "output": "ok"},
        {"trace_id": "c", "input": "Where is the invoice?", "output": "wrong too"},
        {"trace_id": "d", "input": "where is the INVOICE", "output": "dup of c"},
    ])
    add_feedback(store, "a", "correction", correction="Under Settings > Billing; card 4111 1111 1111 1111 on file")
    result = run_bridge(store, CFG, tmp_path)
    rows = {r["trace_id"]: r for r in map(json.loads, open(result["training"]["path"]))}
    assert rows["a"]["target"] == "Under Settings > Billing; card [CARD] on file"
    assert rows["a"]["target_source"] == "correction" and rows["a"]["policy"] == "failures"
    assert rows["a"]["input"] == "my email is [EMAIL], where is the invoice?"
    assert rows["b"]["input"] == "call me on [PHONE]" and rows["b"]["target_source"] == "model_output"
    assert len({"c", "d"} & set(rows)) == 1  # the same normalised question is exported once
    assert all("user_id" not in r for r in rows.values())
