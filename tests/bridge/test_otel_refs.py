"""The bridge finds feedback however it names its trace: the OTel trace id, the answer span id (in trace_id or in
span_id), or the '<traceId>-<spanId>' form; feedback naming no stored trace selects nothing."""
from __future__ import annotations

from engine.bridge.sampling import compile_policy
from engine.monitor.sources import traces_in_scope
from engine.sql import render
from tests.bridge.conftest import add_traces

TRACES = traces_in_scope({"window": "day"})


def _ids(i: int) -> tuple[str, str]:
    return f"{0x4bf92f3577b34da6a3ce929d0e0e4700 + i:032x}", f"{0x00f067aa0ba90200 + i:016x}"


def _feedback(store, n: int, kind: str, trace_id: str | None, span_id: str | None = None, **fields) -> None:
    score = 0.0 if kind in ("correction", "ticket") or fields.get("thumbs") == "down" else 1.0
    store.con.execute(
        """INSERT INTO feedback (feedback_id, trace_id, span_id, "timestamp", kind, thumbs, correction, score,
                                 record_hash, batch_id, source_file, source_line)
           VALUES (?, ?, ?, TIMESTAMPTZ '2025-03-02 00:00:00+00', ?, ?, ?, ?, 0, 'b', 'test', ?)""",
        [f"fb-{n}", trace_id, span_id, kind, fields.get("thumbs"), fields.get("correction"), score, n])


def test_failure_signals_follow_every_form_of_reference(store):
    add_traces(store, [{"trace_id": _ids(i)[0], "input": f"question {i}", "topic": "billing"} for i in range(6)])
    for i in range(6):
        store.con.execute("UPDATE traces SET span_id = ? WHERE trace_id = ?", [_ids(i)[1], _ids(i)[0]])
    _feedback(store, 0, "correction", _ids(0)[0], correction="the right answer")  # the OTel trace id
    _feedback(store, 1, "thumbs", _ids(1)[1], thumbs="down")  # the answer span id, in trace_id
    _feedback(store, 2, "ticket", None, _ids(2)[1])  # a span annotation: span_id only
    _feedback(store, 3, "thumbs", f"{_ids(3)[0]}-{_ids(3)[1]}", thumbs="down")  # the pre-span_id form
    _feedback(store, 4, "thumbs", "ffff" * 8, thumbs="down")  # names no stored trace
    _feedback(store, 5, "thumbs", _ids(5)[0], thumbs="up")  # not a failure
    policy = {"kind": "failure_first", "signals": ["correction", "ticket", "negative_feedback"]}
    got = [r[0] for r in store.con.execute(render(compile_policy("p", policy, TRACES, "s"))).fetchall()]
    assert sorted(got) == sorted(_ids(i)[0] for i in range(4))
