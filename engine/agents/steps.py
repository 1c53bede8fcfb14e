"""Trajectories as rows: each output's recorded trajectory (outputs.raw.trajectory) becomes one row per step of
`trajectory_steps`, plus a last `final` step holding the final answer. So a recorded trajectory always has at
least one row, and an output with no rows has no trajectory (the trajectory metrics fail it, never pass it).

The rows are written in SQL from the stored outputs, in the run's write transaction: outputs recovered from a
journal or cached from an earlier run get their rows too, and a replaced output has its old rows replaced.
"""
from __future__ import annotations

from engine.executor import execute
from engine.sql import Statement, parse

# Rows of an output that this run called again are dropped first (its trajectory may have changed).
_DROP_REPLACED = """
DELETE FROM trajectory_steps AS s WHERE s.model_fingerprint = $fingerprint AND EXISTS (
  SELECT 1 FROM outputs AS o WHERE o.model_fingerprint = s.model_fingerprint AND o.output_key = s.output_key
  AND o.repeat = s.repeat AND o.run_id = $run_id)"""

_INSERT = """
INSERT INTO trajectory_steps
WITH recorded AS (
  SELECT o.model_fingerprint, o.output_key, o.repeat, o.output_text,
         CAST(json_extract(o.raw, '$.trajectory') AS JSON[]) AS steps
  FROM outputs AS o
  WHERE o.model_fingerprint = $fingerprint AND o.raw IS NOT NULL AND json_exists(o.raw, '$.trajectory')
    AND o.output_key IN (SELECT rc.output_key FROM run_cases AS rc WHERE rc.run_id = $run_id)
    AND NOT EXISTS (SELECT 1 FROM trajectory_steps AS t WHERE t.model_fingerprint = o.model_fingerprint
                    AND t.output_key = o.output_key AND t.repeat = o.repeat)
), unrolled AS (
  SELECT model_fingerprint, output_key, repeat, unnest(steps) AS s, unnest(range(len(steps))) AS step
  FROM recorded
)
SELECT model_fingerprint, output_key, repeat, step::INTEGER, s ->> 'type', s ->> 'role', s ->> 'content',
       s ->> 'name', s ->> 'id',
       CASE WHEN s ->> 'type' = 'tool_call' THEN (row_number() OVER (
         PARTITION BY model_fingerprint, output_key, repeat, s ->> 'type' ORDER BY step) - 1)::INTEGER END,
       json_extract(s, '$.arguments'), json_extract(s, '$.result'), s ->> 'error',
       TRY_CAST(s ->> 'latency_ms' AS DOUBLE)
FROM unrolled
UNION ALL
SELECT model_fingerprint, output_key, repeat, len(steps)::INTEGER, 'final', 'assistant', output_text,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM recorded"""


DROP_REPLACED = Statement("trajectory:drop_replaced", parse(_DROP_REPLACED), ("fingerprint", "run_id"),
                          "step rows of outputs this run called again")
INSERT_STEPS = Statement("trajectory:insert", parse(_INSERT), ("fingerprint", "run_id"),
                         "one row per step of each output that recorded a trajectory, then its final answer")


def store_steps(con, fingerprint: str, run_id: str) -> None:
    """Write the step rows of the run's outputs that recorded a trajectory (after the run's outputs and
    run_cases rows are written, inside the same transaction)."""
    params = {"fingerprint": fingerprint, "run_id": run_id}
    execute(con, DROP_REPLACED, params)
    execute(con, INSERT_STEPS, params)


def calls_text_sql(fingerprint: str, output_key: str) -> str:
    """A SQL expression for the tool calls of the first repeat of one output, as `name(arguments) → ...`
    ('(no tool calls)' for a trajectory without any, NULL without a trajectory). The arguments are column
    references (e.g. `br.model_fingerprint`), for the gate's case listings."""
    return (f"(SELECT CASE WHEN count(*) = 0 THEN NULL ELSE coalesce(string_agg(ts.tool_name || '(' || "
            f"coalesce(CAST(ts.arguments AS VARCHAR), '') || ')' || CASE WHEN ts.error IS NULL THEN '' ELSE "
            f"' !error' END, ' → ' ORDER BY ts.step) FILTER (WHERE ts.kind = 'tool_call'), '(no tool calls)') END "
            f"FROM trajectory_steps AS ts WHERE ts.model_fingerprint = {fingerprint} AND ts.output_key = {output_key} "
            f"AND ts.repeat = 0)")
