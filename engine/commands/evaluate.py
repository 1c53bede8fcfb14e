"""`flywheel evaluate`: run one model on the selected datasets, store outputs and per-case scores."""
from __future__ import annotations

from engine import journal
from engine.commands.registry import Outcome, command
from engine.compiler import SCORING_TABLE
from engine.config import Composed
from engine.evaluate_plan import compile_run
from engine.sql import Plan
from engine.evaluation import StoreAccess, evaluate_model, load_datasets, store_path
from engine.report.terminal import print_evaluation


def compile_sql(composed: Composed) -> Plan:
    return compile_run(composed.config)


@command("evaluate", "run one model on the datasets; store outputs and per-case scores",
         compile=compile_sql, spark_inputs=(SCORING_TABLE,))
def evaluate(composed: Composed) -> Outcome:
    cfg = composed.config
    datasets = load_datasets(cfg, composed.project)  # bad data fails here, before the store is opened
    path = store_path(cfg, composed.project)
    # the store is opened for short steps only, never while the model is called
    plan = journal.running_plan(compile_run(cfg))  # compiled once: what runs and what its run artifacts show
    run = evaluate_model(StoreAccess(path), cfg["model"], datasets, cfg, composed.project, plan=plan)
    print_evaluation(run)
    if run.backend["name"] == "spark":
        from engine.console import console

        console.print(f"backend: Spark {run.backend['version']} ({run.backend['master']}): "
                      f"{run.backend['statements_on_spark']} scoring statements ran on Spark"
                      + "".join(f"; {name} ran on the store ({why})"
                                for name, why in run.backend["not_portable"].items()),
                      markup=False, highlight=False)
    result = {"command": "evaluate", "store": str(path), **run.to_json()}
    return Outcome(0, result, "evaluate_result")
