"""Sampling policies: quota arithmetic, determinism, nesting, independence between policies."""
from __future__ import annotations

import pytest

from engine.bridge.sampling import compile_policy
from engine.monitor.sources import traces_in_scope
from engine.sql import render
from tests.bridge.conftest import add_feedback, add_traces

TRACES = traces_in_scope({"window": "day"})


def select(store, policy: dict, name: str = "p", salt: str = "s") -> list[str]:
    return [r[0] for r in store.con.execute(render(compile_policy(name, policy, TRACES, salt))).fetchall()]


@pytest.fixture
def traffic(store):
    # strata of sizes 50 (billing), 30 (account), 15 (policy), 5 (integrations): 100 traces
    sizes = {"billing": 50, "account": 30, "policy": 15, "integrations": 5}
    rows, i = [], 0
    for topic, n in sizes.items():
        for _ in range(n):
            rows.append({"trace_id": f"t{i:03d}", "input": f"question {i}", "topic": topic, "day": i % 10})
            i += 1
    add_traces(store, rows)
    return store


def by_topic(store, ids: list[str]) -> dict[str, int]:
    rows = store.con.execute("SELECT topic, count(*) FROM traces WHERE list_contains($ids, trace_id) GROUP BY 1",
                             {"ids": ids}).fetchall()
    return dict(rows)


def test_proportional_quotas_use_largest_remainders(traffic):
    # total 10 over sizes 50/30/15/5: exact shares 5, 3, 1.5, 0.5 -> floors 5, 3, 1, 0 (9); one more to the
    # largest remainder (0.5 tie between policy and integrations -> by key: integrations < policy)
    got = by_topic(traffic, select(traffic, {"kind": "stratified", "by": ["topic"], "total": 10}))
    assert got == {"billing": 5, "account": 3, "integrations": 1, "policy": 1}
    # total 7: shares 3.5, 2.1, 1.05, 0.35 -> floors 3, 2, 1, 0 (6); remainders .5, .1, .05, .35 -> billing +1
    got = by_topic(traffic, select(traffic, {"kind": "stratified", "by": ["topic"], "total": 7}))
    assert got == {"billing": 4, "account": 2, "policy": 1}
    # more than there is: everything, never more than a stratum holds
    assert sum(by_topic(traffic, select(traffic, {"kind": "stratified", "by": ["topic"], "total": 500})).values()) == 100


def test_per_stratum_quota_caps_each_stratum(traffic):
    got = by_topic(traffic, select(traffic, {"kind": "stratified", "by": ["topic"], "per_stratum": 8}))
    assert got == {"billing": 8, "account": 8, "policy": 8, "integrations": 5}


def test_samples_are_deterministic_nested_and_independent_between_policies(traffic):
    small = select(traffic, {"kind": "hash_rate", "rate": 0.2})
    large = select(traffic, {"kind": "hash_rate", "rate": 0.5})
    assert small == select(traffic, {"kind": "hash_rate", "rate": 0.2})  # same config, same sample
    assert set(small) < set(large)  # nested as the rate grows
    assert 5 <= len(small) <= 40 and 30 <= len(large) <= 70
    other = select(traffic, {"kind": "hash_rate", "rate": 0.2}, name="q")
    assert set(other) != set(small)  # another policy draws its own sample
    assert set(select(traffic, {"kind": "hash_rate", "rate": 0.2}, salt="t")) != set(small)


def test_failure_first_orders_by_number_of_signals_and_respects_the_limit(traffic):
    add_feedback(traffic, "t001", "thumbs", thumbs="down")
    add_feedback(traffic, "t002", "thumbs", thumbs="down")
    add_feedback(traffic, "t002", "correction", correction="the right answer")
    add_feedback(traffic, "t003", "thumbs", thumbs="up")
    add_feedback(traffic, "t004", "ticket")
    policy = {"kind": "failure_first", "signals": ["correction", "ticket", "negative_feedback"]}
    got = select(traffic, policy)
    assert got[0] == "t002" and set(got) == {"t001", "t002", "t004"}  # t003 was thumbs up: no signal
    assert select(traffic, {**policy, "limit": 1}) == ["t002"]


def test_disagreement_between_online_score_and_feedback(traffic):
    traffic.con.execute("INSERT INTO live_scores VALUES ('t010', 'relevance', 'h', 0.9, TRUE, NULL, now()), "
                        "('t011', 'relevance', 'h', 0.9, TRUE, NULL, now()), "
                        "('t012', 'relevance', 'h', 0.1, FALSE, NULL, now())")
    add_feedback(traffic, "t010", "thumbs", thumbs="down")  # score passes, user unhappy: disagreement
    add_feedback(traffic, "t011", "thumbs", thumbs="up")    # agree
    add_feedback(traffic, "t012", "thumbs", thumbs="down")  # agree (both fail)
    got = select(traffic, {"kind": "disagreement", "a": "online:relevance", "b": "feedback"})
    assert got == ["t010"]


def test_low_score_takes_the_lowest_live_scores_below_the_bound(traffic):
    traffic.con.execute("INSERT INTO live_scores VALUES ('t020', 'relevance', 'h', 0.05, FALSE, NULL, now()), "
                        "('t021', 'relevance', 'h', 0.2, FALSE, NULL, now()), "
                        "('t022', 'relevance', 'h', 0.8, TRUE, NULL, now()), "
                        "('t023', 'safety', 'h', 0.0, FALSE, NULL, now())")
    got = select(traffic, {"kind": "low_score", "metric": "relevance", "below": 0.3})
    assert got == ["t020", "t021"]


def test_drift_segment_takes_the_windows_the_latest_monitor_run_flagged(traffic):
    con = traffic.con
    con.execute("INSERT INTO monitor_runs VALUES ('old', now() - INTERVAL 1 DAY, now() - INTERVAL 1 DAY, 'h', NULL, "
                "FALSE, 1, '{}'), ('new', now(), now(), 'h', NULL, FALSE, 1, '{}')")
    con.execute("INSERT INTO monitor_results VALUES "
                "('new', 'drift', 'input_length_psi', NULL, TIMESTAMPTZ '2025-03-04 00:00:00+00', 1, NULL, 0.2, TRUE, "
                "'blocking', NULL), "
                "('new', 'drift', 'input_length_psi', NULL, TIMESTAMPTZ '2025-03-05 00:00:00+00', 0.1, NULL, 0.2, "
                "FALSE, 'blocking', NULL), "
                "('old', 'drift', 'input_length_psi', NULL, TIMESTAMPTZ '2025-03-06 00:00:00+00', 1, NULL, 0.2, TRUE, "
                "'blocking', NULL)")
    got = select(traffic, {"kind": "drift_segment", "rule": "input_length_psi"})
    days = {d for (d,) in con.execute("SELECT DISTINCT extract(day FROM \"timestamp\") FROM traces WHERE "
                                      "list_contains($ids, trace_id)", {"ids": got}).fetchall()}
    assert days == {4} and len(got) == 10  # day index 3 (March 4th) only: 10 of the 100 traces
