"""`kind: sql`: user expressions are parsed, allowlisted and bound before anything runs."""
from __future__ import annotations

import pytest

from engine.compiler import compile_evaluate
from engine.errors import UserError
from engine.metrics.custom import bind_problems, parse_user_expression

ROWS = [
    {"output": "Refund within 30 days", "latency_ms": 50.0, "completion_tokens": 7, "context": ["a", "b"],
     "metadata": {"topic": "refunds"}, "expected": "30 days"},
    {"output": "No idea", "latency_ms": 500.0, "completion_tokens": 2, "metadata": {}, "expected": "x"},
]

ACCEPTED = [
    # expression, spec extras, values, passed
    ("contains(lower(output_text), 'refund') AND latency_ms < 100", {}, [1.0, 0.0], [True, False]),
    ("completion_tokens / 10", {"threshold": 0.5}, [0.7, 0.2], [True, False]),
    ("len(context)", {}, [2.0, 0.0], [False, False]),  # a number passes only when it equals 1 without a threshold
    ("json_extract_string(metadata, '$.topic') = 'refunds'", {}, [1.0, 0.0], [True, False]),
    ("list_count(list_filter(expected_answers, lambda a: contains(output_text, a))) > 0", {}, [1.0, 0.0],
     [True, False]),
    ("CASE WHEN output_text ILIKE '%days%' THEN 1 ELSE 0 END", {}, [1.0, 0.0], [True, False]),
]


@pytest.mark.parametrize("expression,extra,values,passed", ACCEPTED)
def test_accepted_expressions(score, expression, extra, values, passed):
    tree, problems = parse_user_expression(expression)
    assert problems == [] and bind_problems(tree) == []
    s = score({"kind": "sql", "expression": expression, **extra}, ROWS)
    assert s.values == pytest.approx(values)
    assert s.passed == passed


REJECTED = [
    ("output_text = (SELECT 1)", "subqueries are not allowed"),
    ("EXISTS (SELECT * FROM scores)", "subqueries are not allowed"),
    ("SELECT 1", "must be a scalar expression, not a statement (SELECT)"),
    ("1; DROP TABLE scores", "must be a single SQL expression, got 2 statements"),
    ("DROP TABLE scores", "must be a scalar expression, not a statement (DROP)"),
    ("DELETE FROM scores", "must be a scalar expression, not a statement (DELETE)"),
    ("COPY scores TO 'x.csv'", "must be a scalar expression, not a statement (COPY)"),
    ("secret_col > 1", "unknown column 'secret_col'"),
    ("scores.value > 1", "column 'scores.value' must be unqualified"),
    ("avg(latency_ms) > 1", "aggregate functions (the expression is per case) are not allowed"),
    ("rank() OVER (ORDER BY latency_ms) = 1", "window functions (the expression is per case) are not allowed"),
    ("unnest(context) = 'a'", "set-returning functions are not allowed"),
    ("output_text = $run_id", "parameters are not allowed"),
    ("read_text('/etc/passwd') IS NULL", "function read_text() is not allowed"),
    ("getenv('HOME') = 'x'", "function getenv() is not allowed"),
    ("lengthh(output_text) > 1", "function lengthh() is not allowed in a metric expression; did you mean length()?"),
    ("histogram(latency_ms) IS NULL", "function histogram() is not allowed"),
    ("output_text = ", "not a valid SQL expression"),
]


@pytest.mark.parametrize("expression,message", REJECTED)
def test_rejected_expressions(expression, message):
    _, problems = parse_user_expression(expression)
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize("expression,message", [
    ("upper(output_text)", "must be boolean or numeric, got VARCHAR"),
    ("output_text + 1 > 0", "DuckDB rejects it"),
    ("list_sum(output_text) > 1", "DuckDB rejects it"),
])
def test_bind_problems(expression, message):
    tree, problems = parse_user_expression(expression)
    assert problems == []
    assert any(message in p for p in bind_problems(tree)), bind_problems(tree)


def test_compiling_a_bad_expression_names_the_metric():
    with pytest.raises(UserError, match=r"metrics\.my_rule: expression 'avg\(cost\)': aggregate functions"):
        compile_evaluate({"my_rule": {"kind": "sql", "expression": "avg(cost)"}})
