"""What went wrong when a model was called: errored cases of one run, grouped by their error message.

"7 errors" alone sends a user to the store; the distinct messages with a few case ids each say at once whether
one bug hit every case or several things failed. The message is the adapter's (for a python model: the
exception's type and text), stored in `outputs.error`.
"""
from __future__ import annotations

import duckdb

from engine.executor import execute
from engine.sql import Statement, parse

MESSAGE_CHARS = 1000  # a message longer than this (a whole traceback) is cut in the result
CASE_IDS = 3  # case ids kept per message

ERRORS = Statement("runs:error_messages", parse("""
SELECT o.error AS message, count(*) AS n,
       list(DISTINCT rc.case_id ORDER BY rc.case_id) AS case_ids
FROM run_cases AS rc
JOIN outputs AS o ON o.output_key = rc.output_key
WHERE rc.run_id = $run_id AND o.model_fingerprint = $fingerprint AND o.error IS NOT NULL AND o.repeat < $repeats
GROUP BY o.error
ORDER BY n DESC, o.error
"""), ("run_id", "fingerprint", "repeats"), "the run's errored calls grouped by message", "when a call errored")


def error_summary(con: duckdb.DuckDBPyConnection, run_id: str, fingerprint: str, repeats: int = 1) -> list[dict]:
    """One entry per distinct error message, most frequent first: message, count (errored case calls, repeats
    counted apart) and the first case ids (sorted)."""
    rows = execute(con, ERRORS, {"run_id": run_id, "fingerprint": fingerprint, "repeats": repeats})
    return [{"message": r["message"][:MESSAGE_CHARS], "count": int(r["n"]), "case_ids": list(r["case_ids"][:CASE_IDS])}
            for r in rows]
