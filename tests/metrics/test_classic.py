"""Classification and regression kinds and their dataset-level reports (hand-computed, no sklearn)."""
from __future__ import annotations

import math

import pytest

ROWS = [
    {"expected": "cat", "output": "Cat"},
    {"expected": "cat", "output": "dog"},
    {"expected": "dog", "output": "dog"},
    {"expected": "dog", "output": " bird "},
    {"expected": "dog", "error": "timeout"},
    {"expected": "bird", "output": "bird"},
]


def test_classification_per_case(score):
    s = score({"kind": "classification"}, ROWS)
    assert s.values == [1.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    assert s.details == [None, "predicted dog, expected cat", None, "predicted bird, expected dog", "errored: timeout",
                         None]


def test_classification_report_hand_computed(score):
    report = score({"kind": "classification"}, ROWS).reports["classification:m"]
    assert len(report) == 1
    r = report[0]
    assert (r["dataset"], r["n"], r["accuracy"]) == ("d", 6, 0.5)
    per_class = {c["label"]: c for c in r["per_class"]}
    # cat: tp 1, fp 0, fn 1 | dog: tp 1, fp 1 (case 2), fn 2 (cases 4, 5) | bird: tp 1, fp 1 (case 4), fn 0
    expected = {"cat": (2, 1, 0, 1, 1.0, 0.5, 2 / 3), "dog": (3, 1, 1, 2, 0.5, 1 / 3, 0.4),
                "bird": (1, 1, 1, 0, 0.5, 1.0, 2 / 3)}
    for label, (support, tp, fp, fn, p, rec, f1) in expected.items():
        c = per_class[label]
        assert (c["support"], c["tp"], c["fp"], c["fn"]) == (support, tp, fp, fn), label
        assert (c["precision"], c["recall"], c["f1"]) == pytest.approx((p, rec, f1)), label
    assert r["macro_f1"] == pytest.approx((2 / 3 + 0.4 + 2 / 3) / 3)
    assert [(c["expected"], c["predicted"], c["n"]) for c in r["confusion"]] == [
        ("bird", "bird", 1), ("cat", "cat", 1), ("cat", "dog", 1), ("dog", "(none)", 1), ("dog", "bird", 1),
        ("dog", "dog", 1)]


def test_declared_labels_restrict_the_classes(score):
    r = score({"kind": "classification", "labels": ["Cat", "Dog"]}, ROWS).reports["classification:m"][0]
    assert [c["label"] for c in r["per_class"]] == ["cat", "dog"]  # normalised like the outputs
    assert r["macro_f1"] == pytest.approx((2 / 3 + 0.4) / 2)  # "bird" predictions are wrong, not a class
    assert r["accuracy"] == 0.5


def test_classification_report_per_dataset(score):
    rows = [{"dataset": "a", "expected": "x", "output": "x"}, {"dataset": "b", "expected": "x", "output": "y"},
            {"dataset": "b", "expected": "y", "output": "y"}]
    report = score({"kind": "classification", "normalizer": "none"}, rows).reports["classification:m"]
    assert [(r["dataset"], r["n"], r["accuracy"]) for r in report] == [("a", 1, 1.0), ("b", 2, 0.5)]
    b = {c["label"]: c for c in report[1]["per_class"]}
    # x: tp 0, fn 1 -> P 0 (no predictions: zero, not NULL), R 0, F1 0 | y: tp 1, fp 1 -> P .5, R 1, F1 2/3
    assert (b["x"]["precision"], b["x"]["recall"], b["x"]["f1"]) == (0.0, 0.0, 0.0)
    assert report[1]["macro_f1"] == pytest.approx(1 / 3)


REGRESSION_ROWS = [
    {"expected": 3, "output": "5"},  # error 2
    {"expected": "1", "output": "0"},  # error -1
    {"expected": 2, "output": "none"},  # no prediction
    {"expected": 4, "output": "about 4.5"},  # error 0.5
]


@pytest.mark.parametrize("error,values", [("absolute", [2.0, 1.0, None, 0.5]), ("squared", [4.0, 1.0, None, 0.25])])
def test_regression_per_case(score, error, values):
    s = score({"kind": "regression", "error": error}, REGRESSION_ROWS)
    assert s.values == values
    assert s.passed == [True, True, False, True]  # no max_error: passes when a number was read
    assert s.details[2] == "no number in output or expected"


def test_regression_max_error_and_report(score):
    s = score({"kind": "regression", "max_error": 1}, REGRESSION_ROWS)
    assert s.passed == [False, True, False, True]
    r = s.reports["regression:m"][0]
    assert (r["n"], r["n_predicted"]) == (4, 3)
    assert r["mae"] == pytest.approx(3.5 / 3)
    assert r["rmse"] == pytest.approx(math.sqrt((4 + 1 + 0.25) / 3))
    assert r["bias"] == pytest.approx((2 - 1 + 0.5) / 3)
    # MAE is also the summary mean of the per-case absolute errors
    assert s.summary[0]["mean"] == pytest.approx(3.5 / 3)
