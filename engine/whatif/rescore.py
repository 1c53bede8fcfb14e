"""Re-scoring stored runs under metric definitions they were not scored with: from the stored model outputs and
the golden cases, with the metric's own compiled SQL, and zero model calls.

A run can be re-scored only from the outputs it was scored on. For every case and repeat of the run the store
must still hold that output: a missing row, or a row rewritten after the run started by another run (an errored
call retried later replaces the error the run saw), means the run's outputs are gone, and the run is left out
with the reason rather than scored on something it never saw. A metric kind that needs a model or an encoder
(an LLM judge, embeddings) cannot be re-scored without calling it, and is refused the same way.
"""
from __future__ import annotations

from sqlglot import exp

from engine import registry
from engine.compiler import scored_select, scoring_join
from engine.provenance import content_hash
from engine.sql import literal, param, parse
from engine.whatif.history import StoredRun
from engine.whatif.prepared import Prepared

SCORE_COLUMNS = ["run_id", "dataset", "dataset_version", "case_id", "repeat", "metric", "value", "passed", "detail"]

_OUTPUTS = Prepared.of("outputs_check", parse("""
WITH expected AS (
    SELECT rc.case_id, rc.output_key, rp.rep
    FROM run_cases AS rc, range($repeats) AS rp(rep)
    WHERE rc.run_id = $run_id
), found AS (
    SELECT e.case_id, o.output_key IS NULL AS missing,
           o.output_key IS NOT NULL AND o.run_id <> $run_id AND o.created_at > $started_at AS replaced
    FROM expected AS e
    LEFT JOIN outputs AS o ON o.model_fingerprint = $fingerprint AND o.output_key = e.output_key AND o.repeat = e.rep
)
SELECT count(*) AS expected, count(*) FILTER (WHERE missing) AS missing, count(*) FILTER (WHERE replaced) AS replaced,
       list_slice(list_sort(list(DISTINCT case_id) FILTER (WHERE missing OR replaced)), 1, 5) AS examples
FROM found
"""), "are the run's outputs all still stored, as the run saw them?", "before a run is re-scored")

_REPEATS = Prepared.of("repeats", parse("SELECT coalesce(max(repeat), 0) + 1 AS repeats FROM scores WHERE run_id = $run_id"),
                       "a stored run's repeats", "before a run is re-scored")


def metric_hash(spec: dict) -> str:
    """A metric definition's hash (as `live_scores.metrics_hash` and the replay's per-metric hashes)."""
    return content_hash(spec)


def needs_model(spec: dict) -> bool:
    """The kind calls a model or an encoder before its SQL (a judge, embeddings)."""
    return registry.get("metric", spec["kind"]).fn.prepare is not None


def rescore_statement(name: str, spec: dict, table: str) -> exp.Insert:
    """The metric's own scoring SQL over a stored run ($run_id, $repeats), inserted into `table` (shaped like
    `scores`)."""
    rows = scored_select(name, spec, scoring_join(spec)).subquery("scored")  # self-contained: no materialised input
    select = exp.select(param("run_id"), "dataset", "dataset_version", "case_id", "repeat", literal(name), "value",
                        "passed", "detail").from_(rows)
    return exp.insert(select, exp.to_table(table), columns=SCORE_COLUMNS)


def table_statement(table: str, prefix: str = "") -> Prepared:
    return Prepared.of(f"{prefix}rescored_table", parse(f"CREATE OR REPLACE TEMP TABLE {table} AS "
                                                        f"SELECT * FROM scores LIMIT 0"),
                       "re-scored rows go here (shaped like scores)")


def rescore_statements(metrics: dict[str, dict], used: tuple[str, ...], table: str,
                       prefix: str = "") -> dict[str, Prepared]:
    """Each used metric's scoring SQL over a stored run, for the metrics that can be re-scored without a model."""
    import engine.metrics  # noqa: F401  (registers the metric kinds)

    return {m: Prepared.of(f"{prefix}rescore:{m}", rescore_statement(m, metrics[m], table),
                           f"metric {m} re-scored from the stored outputs",
                           "for runs scored with another definition of the metric")
            for m in used if not needs_model(metrics[m])}


CHECKS = (_REPEATS, _OUTPUTS)  # run before a run is re-scored


class Rescorer:
    """Re-scores runs into a temporary table, once per (run, metric). `table` comes from code (not user text)."""

    def __init__(self, con, metrics: dict[str, dict], table: str, statements: dict[str, Prepared],
                 create: Prepared):
        self.con, self.metrics, self.table = con, metrics, table
        create.rows(con, {})
        self._statements = statements
        self._done: set[tuple[str, str]] = set()
        self._outputs: dict[str, str | None] = {}
        self._repeats: dict[str, int] = {}
        self._hashes: dict[str, str] = {}
        self.model_calls = 0  # stays 0: re-scoring never calls a model (reported, and checked by the tests)

    def hash(self, metric: str) -> str:
        if metric not in self._hashes:
            self._hashes[metric] = metric_hash(self.metrics[metric])
        return self._hashes[metric]

    def differs(self, metric: str, runs: list[StoredRun]) -> bool:
        """Were any of these runs scored with another definition of `metric` (or without it)?"""
        wanted = self.hash(metric)
        return any(run.metric_hash(metric) != wanted for run in runs)

    def refusal(self, metric: str, runs: list[StoredRun]) -> str | None:
        """Why `metric` cannot be re-scored for these runs, or None."""
        spec = self.metrics[metric]
        if needs_model(spec):
            return (f"metric '{metric}' ({spec['kind']}) differs from the one the runs were scored with and needs a "
                    f"model or an encoder to re-score: not re-scored without model calls")
        for run in runs:
            problem = self.outputs_problem(run)
            if problem:
                return problem
        return None

    def repeats(self, run: StoredRun) -> int:
        if run.run_id not in self._repeats:
            self._repeats[run.run_id] = int(_REPEATS.rows(self.con, {"run_id": run.run_id})[0]["repeats"])
        return self._repeats[run.run_id]

    def outputs_problem(self, run: StoredRun) -> str | None:
        """Why the run's own outputs are no longer all stored, or None."""
        if run.run_id not in self._outputs:
            row = _OUTPUTS.rows(self.con, {"run_id": run.run_id, "repeats": self.repeats(run),
                                           "fingerprint": run.fingerprint, "started_at": run.started_at})[0]
            problem = None
            if not row["expected"]:
                problem = f"run {run.run_id} has no stored cases: nothing to re-score"
            elif row["missing"] or row["replaced"]:
                parts = []
                if row["missing"]:
                    parts.append(f"{row['missing']} of its {row['expected']} outputs are missing")
                if row["replaced"]:
                    parts.append(f"{row['replaced']} were replaced by a later run (a retried call)")
                problem = (f"run {run.run_id} ({run.model_name}): " + " and ".join(parts)
                           + f" (e.g. {', '.join(row['examples'])}): cannot re-score from stored outputs")
            self._outputs[run.run_id] = problem
        return self._outputs[run.run_id]

    def rescore(self, run: StoredRun, metric: str) -> None:
        """Score `run` with the configured definition of `metric` into the temporary table (once)."""
        if (run.run_id, metric) in self._done:
            return
        self._statements[metric].rows(self.con, {"run_id": run.run_id, "repeats": self.repeats(run)})
        self._done.add((run.run_id, metric))
