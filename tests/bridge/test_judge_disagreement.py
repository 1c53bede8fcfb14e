"""The `judge_disagreement` sampler: largest judge-vs-signal gaps first, a random share of the limit, labelled
traces left out, deterministic."""
from __future__ import annotations

import pytest

from engine.bridge.sampling import compile_policy
from engine.monitor.sources import traces_in_scope
from engine.sql import render
from tests.bridge.conftest import add_feedback, add_traces

TRACES = traces_in_scope({"window": "day"})


def select(store, policy: dict, salt: str = "s") -> list[str]:
    return [r[0] for r in store.con.execute(render(compile_policy("p", policy, TRACES, salt))).fetchall()]


def verdict(store, trace_id: str, value: float, metric: str = "helpful") -> None:
    store.con.execute("INSERT INTO judge_verdicts VALUES (?, 'fp', 'trace', ?, 'o', 'h', ?, ?, NULL, now())",
                      [metric, trace_id, value, value >= 0.5])


@pytest.fixture
def disputes(store):
    add_traces(store, [{"trace_id": f"t{i:02d}", "input": f"question {i}", "topic": "billing"} for i in range(40)])
    # judge score vs user feedback (thumbs: 1 or 0) and an online relevance score
    for tid, judge, thumbs in (("t00", 1.0, "down"), ("t01", 0.0, "up"), ("t02", 0.8, "down"), ("t04", 0.6, "up"),
                               ("t05", 1.0, "up")):
        verdict(store, tid, judge)
        add_feedback(store, tid, "thumbs", thumbs=thumbs)
    verdict(store, "t03", 0.9)
    store.con.execute("INSERT INTO live_scores VALUES ('t03', 'relevance', 'mh', 0.2, false, NULL, now())")
    verdict(store, "t06", 0.2)  # no signal to disagree with
    add_feedback(store, "t07", "thumbs", thumbs="down")  # no judge verdict
    verdict(store, "t08", 0.0, metric="other_judge")
    add_feedback(store, "t08", "thumbs", thumbs="up")  # disagrees with another judge only
    return store


POLICY = {"kind": "judge_disagreement", "judge": "helpful", "against": ["feedback", "online:relevance"]}


def test_largest_gaps_first_then_a_random_share(disputes):
    got = select(disputes, {**POLICY, "limit": 6, "random_share": 0.5})
    # gaps: t00 1.0, t01 1.0, t02 0.8, t03 0.7 (relevance), t04 0.4 (< min_gap 0.5), t05 0 (agree)
    assert len(got) == 6 and set(got[:2]) == {"t00", "t01"} and got[2] == "t02"
    assert not {"t03", "t04", "t05"} & set(got[:3])  # 3 = 6 - round(6 * 0.5) disputed places
    assert got == select(disputes, {**POLICY, "limit": 6, "random_share": 0.5})  # deterministic
    other_salt = select(disputes, {**POLICY, "limit": 6, "random_share": 0.5}, salt="other")
    assert other_salt[:3] == got[:3] and other_salt[3:] != got[3:]  # only the random share depends on the salt
    only_disputes = select(disputes, {**POLICY, "limit": 10, "random_share": 0})
    assert only_disputes == got[:2] + ["t02", "t03"]
    feedback_only = select(disputes, {**POLICY, "against": ["feedback"], "limit": 10, "random_share": 0})
    assert feedback_only == got[:2] + ["t02"]  # t03 disagrees with relevance only
    assert select(disputes, {**POLICY, "limit": 10, "random_share": 0, "min_gap": 0.3}) == only_disputes + ["t04"]


def test_labelled_traces_are_not_sent_again(disputes):
    disputes.con.execute("""INSERT INTO judge_labels VALUES ('k', 'helpful', 'trace', NULL, NULL, 't00', 'o', 'h',
                            'trace', 'pass', NULL, 'ann', NULL, NULL, 'b', 'f', 1, now())""")
    got = select(disputes, {**POLICY, "limit": 10, "random_share": 0})
    assert got[0] == "t01" and "t00" not in got
    everything = select(disputes, {**POLICY, "limit": 100, "random_share": 0.9})
    assert "t00" not in everything and len(everything) == 39  # 39 traces are unlabelled; none twice
    assert len(set(everything)) == len(everything)
