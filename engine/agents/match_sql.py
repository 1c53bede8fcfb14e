"""SQL over a scored row's trajectory steps and its case's agent task, for the trajectory metrics.

Every expression here is evaluated on a row of `scoring_input` (a run's case with the model's output): the
output's steps are the `trajectory_steps` rows of (model_fingerprint, output_key, repeat), the case's task the
`agent_*` rows of (dataset_version, case_id). The templates hold no user values: those are bound by the kinds
(engine/metrics/trajectory.py) as literals through `parse_expression` placeholders.

Matching an expected call to an actual call: the same tool name and every argument check holding. `m` lists,
for each expected call j (declared order), the indices of the actual tool calls that satisfy it. The order modes
read `m` without recursion:
* exact: as many calls as expected and call k satisfies expected call k, for every k;
* in_order: each expected call takes the first satisfying call after the previous one's (greedy is exact for a
  subsequence);
* any_order: as many calls as expected, each expected call (declared order) takes the first unused satisfying
  call; subset: each actual call (in order) takes the first unused expected call it satisfies. Both are greedy,
  so when one call could satisfy two expected calls, declare the more specific one first. Used calls are a
  128-bit mask: a trajectory of more than 120 tool calls fails these two modes with that reason.
"""
from __future__ import annotations

from sqlglot import exp

from engine.sql import parse_expression

# The output's own step rows (alias s) and the case's task rows (aliases a, e, k).
OWN_STEPS = ("s.model_fingerprint = scoring_input.model_fingerprint AND s.output_key = scoring_input.output_key "
             "AND s.repeat = scoring_input.repeat")
OWN_TASK = "{t}.dataset_version = scoring_input.dataset_version AND {t}.case_id = scoring_input.case_id"

_NUMBER = "('BIGINT', 'UBIGINT', 'DOUBLE')"
# One argument check (alias k) on one tool call's arguments (alias s); NULL (a missing path) counts as failed.
CHECK_HOLDS = f"""CASE k.op
  WHEN 'equals' THEN CASE
    WHEN json_type(k.value) IN {_NUMBER} AND json_type(json_extract(s.arguments, k.path)) IN {_NUMBER}
      THEN CAST(json_extract(s.arguments, k.path) AS DOUBLE) = CAST(k.value AS DOUBLE)
    ELSE CAST(json_extract(s.arguments, k.path) AS VARCHAR) = CAST(k.value AS VARCHAR) END
  WHEN 'regex' THEN regexp_matches(json_extract_string(s.arguments, k.path), k.pattern)
  WHEN 'approx' THEN json_type(json_extract(s.arguments, k.path)) IN {_NUMBER}
    AND abs(CAST(json_extract(s.arguments, k.path) AS DOUBLE) - k.approx) <= k.tolerance
  END"""

# What is known about the row, as one row of columns (no FROM: a case without a task still gives a row).
FACTS = f"""SELECT
  (SELECT count(*) FROM trajectory_steps AS s WHERE {OWN_STEPS}) AS n_steps,
  coalesce((SELECT list(s.tool_name ORDER BY s.step) FROM trajectory_steps AS s
            WHERE {OWN_STEPS} AND s.kind = 'tool_call'), []) AS calls,
  coalesce((SELECT list(s.error IS NOT NULL ORDER BY s.step) FROM trajectory_steps AS s
            WHERE {OWN_STEPS} AND s.kind = 'tool_call'), []) AS call_failed,
  (SELECT a.order_mode FROM agent_cases AS a WHERE {OWN_TASK.format(t='a')}) AS mode,
  (SELECT a.max_steps FROM agent_cases AS a WHERE {OWN_TASK.format(t='a')}) AS budget,
  coalesce((SELECT a.forbidden_tools FROM agent_cases AS a WHERE {OWN_TASK.format(t='a')}), []) AS forbidden,
  coalesce((SELECT list(e.name ORDER BY e.position) FROM agent_expected_calls AS e
            WHERE {OWN_TASK.format(t='e')}), []) AS expected,
  coalesce((SELECT list(coalesce(x.mj, []) ORDER BY x.j) FROM (
     SELECT e.position AS j, (
       SELECT list(s.call_index ORDER BY s.call_index) FROM trajectory_steps AS s
       WHERE {OWN_STEPS} AND s.kind = 'tool_call' AND s.tool_name = e.name AND NOT EXISTS (
         SELECT 1 FROM agent_argument_checks AS k WHERE k.dataset_version = e.dataset_version
         AND k.case_id = e.case_id AND k.position = e.position AND NOT coalesce({CHECK_HOLDS}, false))) AS mj
     FROM agent_expected_calls AS e WHERE {OWN_TASK.format(t='e')}) AS x), []) AS m"""

_FAIL = 1000000  # in_order: "no satisfying call left"
_IN_ORDER_FAIL = (f"list_min(list_filter(range(len(expected)), lambda j: list_reduce(range(j + 1), "
                  f"lambda acc, jj: CASE WHEN acc >= {_FAIL} THEN acc ELSE coalesce(list_min(list_filter("
                  f"m[jj + 1], lambda i: i > acc)), {_FAIL}) END, -1) >= {_FAIL}))")


def _greedy_mask(n: str, options: str) -> str:
    """The used-calls mask after greedily matching the first `n` items, each to its first unused option; -1
    when one found none."""
    return (f"list_reduce(range({n}), lambda acc, q: CASE WHEN acc < 0 THEN acc ELSE coalesce(acc | "
            f"(1::HUGEINT << list_min(list_filter({options}[q + 1], lambda i: (acc >> i) & 1 = 0))), -1) END, "
            f"0::HUGEINT)")


def _first_greedy_fail(n: str, options: str) -> str:
    return f"list_min(list_filter(range({n}), lambda p: {_greedy_mask('p + 1', options)} < 0))"


# Per-mode positions of the first mismatch, over FACTS (alias f). mt: for each actual call, the expected
# calls it satisfies.
DERIVED = f"""SELECT f.*, len(f.calls) AS n_a, len(f.expected) AS n_e,
  list_min(list_filter(range(greatest(len(f.calls), len(f.expected))), lambda x: x >= len(f.calls)
    OR x >= len(f.expected) OR NOT list_contains(f.m[x + 1], x))) AS k_exact,
  {_IN_ORDER_FAIL.replace('expected', 'f.expected').replace('m[', 'f.m[')} AS j_in_order,
  {_first_greedy_fail('len(f.expected)', 'f.m')} AS j_any,
  list_min(list_filter(range(len(f.calls)), lambda i: ({_greedy_mask('len(f.expected)', 'f.m')} >> i) & 1 = 0))
    AS extra_any,
  {_first_greedy_fail('len(f.calls)', 'list_transform(range(len(f.calls)), lambda i: list_filter(range(len(f.expected)), lambda j: list_contains(f.m[j + 1], i)))')} AS i_subset
FROM ({FACTS}) AS f"""

_CALLS = "' (calls: ' || coalesce(nullif(array_to_string(g.calls, ' → '), ''), 'none') || '; expected: ' || " \
         "coalesce(nullif(array_to_string(g.expected, ' → '), ''), 'none') || ')'"
_NOT_CALLED = ("CASE WHEN list_contains(g.calls, g.expected[{j} + 1]) THEN ' was called, but not {how} with "
               "matching arguments' ELSE ' was not called' END")

# Why the trajectory does not match its task's expected calls in the task's order mode; NULL when it does.
MISMATCH = f"""CASE
  WHEN g.mode IN ('any_order', 'subset') AND greatest(g.n_a, g.n_e) > 120
    THEN g.mode || ': too many tool calls to match (' || greatest(g.n_a, g.n_e) || ', at most 120)'
  WHEN g.mode = 'exact' AND g.k_exact IS NOT NULL THEN 'exact: ' || CASE
    WHEN g.k_exact >= g.n_a THEN 'missing call #' || (g.k_exact + 1) || ' ' || g.expected[g.k_exact + 1]
    WHEN g.k_exact >= g.n_e THEN 'unexpected call #' || (g.k_exact + 1) || ' ' || g.calls[g.k_exact + 1]
    WHEN g.calls[g.k_exact + 1] <> g.expected[g.k_exact + 1] THEN 'call #' || (g.k_exact + 1) || ' is '
      || g.calls[g.k_exact + 1] || ', expected ' || g.expected[g.k_exact + 1]
    ELSE 'call #' || (g.k_exact + 1) || ' ' || g.calls[g.k_exact + 1] || ' has arguments that do not match' END
  WHEN g.mode = 'in_order' AND g.j_in_order IS NOT NULL THEN 'in_order: expected call #' || (g.j_in_order + 1)
    || ' ' || g.expected[g.j_in_order + 1] || {_NOT_CALLED.format(j='g.j_in_order', how='in order')}
  WHEN g.mode = 'any_order' AND g.j_any IS NOT NULL THEN 'any_order: expected call #' || (g.j_any + 1) || ' '
    || g.expected[g.j_any + 1] || {_NOT_CALLED.format(j='g.j_any', how='again')}
  WHEN g.mode = 'any_order' AND g.n_a > g.n_e THEN 'any_order: unexpected call #' || (g.extra_any + 1) || ' '
    || g.calls[g.extra_any + 1]
  WHEN g.mode = 'subset' AND g.i_subset IS NOT NULL THEN 'subset: call #' || (g.i_subset + 1) || ' '
    || g.calls[g.i_subset + 1] || CASE WHEN list_contains(g.expected, g.calls[g.i_subset + 1])
    THEN ' matches no unused expected call' ELSE ' is not an expected tool' END
  END"""


def over_row(select_list: str, **values: exp.Expression) -> exp.Expression:
    """A scalar subquery computing `select_list` over the row's derived facts (alias g)."""
    return parse_expression(f"(SELECT {select_list} FROM ({DERIVED}) AS g)", **values)


def with_trajectory(select_list: str, missing: str) -> str:
    """`select_list`, or `missing` (a SQL expression) when the output recorded no trajectory."""
    return f"CASE WHEN g.n_steps = 0 THEN {missing} ELSE {select_list} END"


def calls_listing() -> str:
    return _CALLS


def task_exists(condition: str = "TRUE") -> exp.Expression:
    """The row's case has an agent task row meeting `condition` (alias a): the scope of a trajectory metric."""
    return parse_expression(f"EXISTS (SELECT 1 FROM agent_cases AS a WHERE {OWN_TASK.format(t='a')} "
                            f"AND {condition})")


def has_tool_calls() -> exp.Expression:
    return parse_expression(f"EXISTS (SELECT 1 FROM trajectory_steps AS s WHERE {OWN_STEPS} "
                            f"AND s.kind = 'tool_call')")
