"""A store with hand-made production traces and feedback, for the bridge's SQL."""
from __future__ import annotations

import pytest

from engine.store import Store


def add_traces(store: Store, rows: list[dict]) -> None:
    """rows: trace_id, input, topic (and optionally output, channel, day)."""
    for r in rows:
        store.con.execute(
            """INSERT INTO traces (trace_id, session_id, user_id, "timestamp", model, model_version, input, output,
                                   topic, channel, record_hash, batch_id, source_file, source_line)
               VALUES (?, ?, ?, TIMESTAMPTZ '2025-03-01 00:00:00+00' + to_days(?), 'm', 'v1', ?, ?, ?, ?, 0, 'b',
                       'test', 0)""",
            [r["trace_id"], r.get("session_id", "s-" + r["trace_id"]), r.get("user_id", "u1"), r.get("day", 0),
             r["input"], r.get("output", "an answer"), r.get("topic"), r.get("channel", "web")])


def add_feedback(store: Store, trace_id: str, kind: str, **fields) -> None:
    score = {"thumbs": 1.0 if fields.get("thumbs") == "up" else 0.0, "correction": 0.0, "ticket": 0.0}.get(kind)
    store.con.execute(
        """INSERT INTO feedback (feedback_id, trace_id, "timestamp", kind, thumbs, correction, score, record_hash,
                                 batch_id, source_file, source_line)
           VALUES (?, ?, TIMESTAMPTZ '2025-03-02 00:00:00+00', ?, ?, ?, ?, 0, 'b', 'test', 0)""",
        [f"fb-{trace_id}-{kind}", trace_id, kind, fields.get("thumbs"), fields.get("correction"), score])


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "store.duckdb") as s:
        yield s


from tests.production_fixture import production_project, production_template  # noqa: E402,F401
