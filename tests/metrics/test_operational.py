"""Operational kinds: latency, cost, tokens, output_length, error_rate."""
from __future__ import annotations

import pytest

from engine import registry
from engine.compiler import default_aggregate

ROWS = [
    {"output": "a b c", "latency_ms": 100.0, "prompt_tokens": 10, "completion_tokens": 3, "cost": 0.002},
    {"output": "caf\u00e9\u00a0ol\u00e9", "latency_ms": 300.0, "prompt_tokens": 20, "completion_tokens": 2,
     "cost": 0.004},
    {"error": "timeout", "latency_ms": 5000.0},
    {"output": "", "latency_ms": None, "prompt_tokens": None, "completion_tokens": None, "cost": None},
]


@pytest.mark.parametrize("spec,values,passed", [
    ({"kind": "latency"}, [100.0, 300.0, 5000.0, None], [True, True, False, False]),
    ({"kind": "latency", "max_ms": 200}, [100.0, 300.0, 5000.0, None], [True, False, False, False]),
    ({"kind": "cost", "max_cost": 0.003}, [0.002, 0.004, None, None], [True, False, False, False]),
    ({"kind": "tokens"}, [13.0, 22.0, None, None], [True, True, False, False]),
    ({"kind": "tokens", "which": "prompt", "max_tokens": 15}, [10.0, 20.0, None, None], [True, False, False, False]),
    ({"kind": "tokens", "which": "completion"}, [3.0, 2.0, None, None], [True, True, False, False]),
    ({"kind": "output_length"}, [5.0, 8.0, 0.0, 0.0], [True, True, False, True]),
    ({"kind": "output_length", "unit": "words", "min": 1, "max": 2}, [3.0, 2.0, 0.0, 0.0],
     [False, True, False, False]),
    ({"kind": "error_rate"}, [0.0, 0.0, 1.0, 0.0], [True, True, False, True]),
])
def test_operational_values_and_limits(score, spec, values, passed):
    s = score(spec, ROWS)
    assert s.values == pytest.approx(values)
    assert s.passed == passed


def test_latency_detail_and_errored_rows(score):
    s = score({"kind": "latency", "max_ms": 200}, ROWS)
    assert s.details == [None, "latency_ms 300.0 is out of bounds", "errored: timeout", "latency_ms unknown"]
    assert score({"kind": "error_rate"}, ROWS).details == [None, None, "timeout", None]


def test_aggregates_and_direction():
    assert default_aggregate({"kind": "latency"}) == "p95"
    assert default_aggregate({"kind": "latency", "aggregate": "p99"}) == "p99"
    for kind in ("latency", "cost", "tokens", "output_length", "error_rate"):
        assert registry.get("metric", kind).fn.higher_is_better is False


def test_summary_percentiles_of_latency(score):
    s = score({"kind": "latency"}, [{"output": "x", "latency_ms": float(v)} for v in range(1, 101)])
    row = s.summary[0]
    assert row["p50"] == pytest.approx(50.5)
    assert row["p95"] == pytest.approx(95.05)
    assert row["mean"] == pytest.approx(50.5)
