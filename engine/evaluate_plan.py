"""The whole plan of an evaluate run: its cases, the outputs the cache lacks, its row in `runs`, the scoring
statements (engine/compiler.py) and the run's completion, as named statements with bound parameters.

`flywheel compile evaluate` prints this plan and engine/evaluation.py runs these statements (their SQL is not
written anywhere else). What is not a statement here: the golden files' dataset versions (engine/datasets.py),
the Arrow writes of new outputs and of the metrics' Python steps (engine/bulk.py), and agent trajectory rows
(engine/agents/steps.py).
"""
from __future__ import annotations

from sqlglot import exp

from engine.agents.steps import DROP_REPLACED, INSERT_STEPS
from engine.compiler import compile_evaluate
from engine.models.errors import ERRORS
from engine.output_identity import identity_of, output_key_sql
from engine.sql import Plan, PythonStep, Statement, Write, param, parse, temp_table

RUN_CASES_TABLE = "flywheel_run_cases"  # step 1's temporary table of the run's cases
NEEDED = "flywheel_needed_outputs"  # an Arrow table of the answers a judge needs (engine/runner.py `missing`)
DATASETS_TABLE = "flywheel_run_datasets"  # the run's dataset versions, registered from Arrow (name, version, ord)

# The run's cases, read from the store's `cases` rows of its dataset versions (so a million cases never pass
# through Python), each with the key of the output it reads and its index in the run's list of cases.
_RUN_CASES = f"""
SELECT d.name AS dataset, c.dataset_version, c.case_id, c.input_hash, __key__ AS output_key,
       row_number() OVER (ORDER BY d.ord, c.position) - 1 AS position
FROM cases AS c JOIN {DATASETS_TABLE} AS d ON d.dataset_version = c.dataset_version"""

# The (output key, repeat) pairs with no successful stored output, one case each, in case order.
MISSING = """
WITH needed AS (
  SELECT output_key, arg_min(dataset_version, position) AS dataset_version,
         arg_min(case_id, position) AS case_id, min(position) AS position
  FROM __needed__ GROUP BY output_key)
SELECT n.output_key, n.dataset_version, n.case_id, n.position, r.repeat::INTEGER AS repeat
FROM needed AS n CROSS JOIN range($repeats) AS r(repeat)
WHERE NOT EXISTS (SELECT 1 FROM outputs AS o WHERE o.model_fingerprint = $fingerprint
                  AND o.output_key = n.output_key AND o.repeat = r.repeat AND o.error IS NULL)
ORDER BY r.repeat, n.position"""

_PYTHON_STEPS = "when a metric has a Python step (a judge, an encoder): the rows of its private copy of the run"


def run_cases_select(identity: str) -> exp.Select:
    key = output_key_sql(identity, exp.column("input_hash", table="c"), exp.column("case_id", table="c"))
    return parse(_RUN_CASES).transform(lambda n: key.copy() if isinstance(n, exp.Column) and n.name == "__key__"
                                       else n)


def _owner(relation: str) -> str:
    """The run's own outputs (`outputs:...`), or a judge's cached answers (`judge_cache:...`)."""
    return "outputs" if relation == RUN_CASES_TABLE else "judge_cache"


def missing_outputs(relation: str) -> Statement:
    tree = parse(MISSING).transform(
        lambda n: exp.to_table(relation) if isinstance(n, exp.Table) and n.name == "__needed__" else n)
    return Statement(f"{_owner(relation)}:missing", tree, ("repeats", "fingerprint"),
                     "the outputs the cache lacks: the model calls to make")


def distinct_keys(relation: str) -> Statement:
    return Statement(f"{_owner(relation)}:distinct_keys", parse(f"SELECT count(DISTINCT output_key) AS n FROM {relation}"),
                     (), "distinct outputs the run reads (cases sharing an input share one)")


def stage_run_cases(identity: str) -> Statement:
    return Statement("run_cases:stage", temp_table(RUN_CASES_TABLE, run_cases_select(identity), replace=False), (),
                     f"the run's cases and the key of the output each reads ({identity} identity)")


def insert_run_cases(identity: str) -> Statement:
    columns = ["dataset", "dataset_version", "case_id", "input_hash", "output_key"]
    rows = exp.select(param("run_id"), *columns).from_(run_cases_select(identity).subquery("rc"))
    return Statement("run_cases:insert", exp.insert(rows, "run_cases", columns=["run_id", *columns]), ("run_id",),
                     "the run's cases, stored")


RUN_CASE_COUNT = Statement("run_cases:count", parse(f"SELECT count(*) AS n FROM {RUN_CASES_TABLE}"))
START_RUN = Statement("runs:start", parse(
    "INSERT INTO runs (run_id, command, model_name, model_fingerprint, config_hash, metrics_hash, dataset_versions, "
    "git_commit, started_at, status, config) VALUES ($run_id, $command, $model_name, $fingerprint, $config_hash, "
    "$metrics_hash, $dataset_versions, $git_commit, $started_at, 'running', $config)"),
    ("run_id", "command", "model_name", "fingerprint", "config_hash", "metrics_hash", "dataset_versions",
     "git_commit", "started_at", "config"), "the run's row, running until it finishes")
SCRATCH = (
    Statement("scratch:run_cases", parse(f"SELECT $run_id AS run_id, dataset, dataset_version, case_id, input_hash, "
                                         f"output_key FROM {RUN_CASES_TABLE} ORDER BY position"), ("run_id",),
              "", _PYTHON_STEPS),
    Statement("scratch:runs", parse("SELECT * FROM runs WHERE run_id = $run_id"), ("run_id",), "", _PYTHON_STEPS),
    Statement("scratch:cases", parse(f"SELECT c.* FROM cases AS c WHERE c.dataset_version IN "
                                     f"(SELECT DISTINCT dataset_version FROM {RUN_CASES_TABLE})"), (), "",
              _PYTHON_STEPS),
    Statement("scratch:outputs", parse(f"SELECT o.* FROM outputs AS o WHERE o.model_fingerprint = $fingerprint "
                                       f"AND o.repeat < $repeats AND o.output_key IN "
                                       f"(SELECT output_key FROM {RUN_CASES_TABLE})"), ("fingerprint", "repeats"),
              "", _PYTHON_STEPS),
)
COUNT_ERRORS = Statement("runs:errors", parse(
    "SELECT count(*) AS n FROM run_cases AS rc JOIN outputs AS o ON o.output_key = rc.output_key "
    "WHERE rc.run_id = $run_id AND o.model_fingerprint = $fingerprint AND o.error IS NOT NULL "
    "AND o.repeat < $repeats"), ("run_id", "fingerprint", "repeats"), "the run's errored model calls")
FINISH_RUN = Statement("runs:finish", parse(
    "UPDATE runs SET status = 'ok', finished_at = $finished_at, n_cases = $n_cases, n_model_calls = $n_model_calls, "
    "n_errors = $n_errors WHERE run_id = $run_id"),
    ("finished_at", "n_cases", "n_model_calls", "n_errors", "run_id"), "the run is complete")


READ_DATASETS = PythonStep("datasets:read", "the golden files, each parsed and validated unless its sha256 is "
                           "stored with the version it made (engine/dataset_cache.py); bad data stops here")
REGISTER_DATASETS = PythonStep("datasets:register", "each golden file's content-addressed version and cases, "
                               "stored once (engine/datasets.py), its file hash remembered (engine/dataset_cache.py) "
                               "and the bridge's newer version of a dataset followed")
MODEL_CALLS = PythonStep("model:calls", "the model is called for the outputs the cache lacks, with the store "
                         "closed; each answered batch is journaled to .flywheel/pending (engine/runner.py)")
METRIC_STEPS = PythonStep("metrics:python", "the metrics' Python steps (judges, encoders) on a private in-memory copy "
                          "of the run; their rows are written with the scores", _PYTHON_STEPS)
WRITE_OUTPUTS = Write("write:outputs", "outputs", "upsert", "the new outputs (a new answer replaces a stored error)")
METRIC_WRITES = PythonStep("metrics:write", "the rows the metrics' Python steps made (a judge's answers and "
                           "judgements, vectors), written in the run's transaction", _PYTHON_STEPS)


def judge_cache_statements() -> tuple[Statement, ...]:
    """What a judge's Python step reads before it calls the judge: the answers its cache lacks."""
    return tuple(st.conditional("in a judge's Python step, for its prompts") for st in
                 (distinct_keys(NEEDED), missing_outputs(NEEDED)))


def compile_run(cfg: dict, model_spec: dict | None = None) -> Plan:
    """Every step of `flywheel evaluate` on this config, in the order they run."""
    identity = identity_of(model_spec if model_spec is not None else cfg["model"])
    read = [READ_DATASETS, REGISTER_DATASETS, stage_run_cases(identity), distinct_keys(RUN_CASES_TABLE),
            missing_outputs(RUN_CASES_TABLE), RUN_CASE_COUNT, START_RUN, *SCRATCH]
    scoring = compile_evaluate(cfg["metrics"]).statements
    judges = judge_cache_statements() if any(m.get("kind") == "llm_judge" for m in cfg["metrics"].values()) else ()
    return Plan("evaluate", (*read, MODEL_CALLS, METRIC_STEPS, *judges, insert_run_cases(identity), WRITE_OUTPUTS,
                             METRIC_WRITES, DROP_REPLACED, INSERT_STEPS, *scoring, COUNT_ERRORS, ERRORS, FINISH_RUN))
