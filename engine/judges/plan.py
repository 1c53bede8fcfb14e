"""What `flywheel judges import | calibrate | score | history` runs, as a compiled plan (`flywheel compile judges
calibrate`): the labels' statements, each judge's calls (a Python step) and verdict statements, the calibration's
time series."""
from __future__ import annotations

from engine.evaluate_plan import judge_cache_statements
from engine.judges.calibrate import (CALIBRATION_ROW, CALIBRATION_RUN, HISTORY, LABEL_COUNTS, LABELLED,
                                     judge_metrics)
from engine.judges.judging import judge_statements
from engine.judges.labels import IMPORT_STATEMENTS
from engine.judges.spec import JudgesSpec
from engine.judges.traces import sample_statement
from engine.sql import Plan


CACHE = judge_cache_statements()  # each judge's Python step first reads which prompts its cache lacks


def compile_plan(cfg: dict, args: list[str]) -> Plan:
    action = args[0] if args else None
    spec = JudgesSpec.of(cfg)
    when = "when traces are sampled" if action == "score" else "for a judge with labelled answers still stored"
    judges = [*CACHE, *(st.conditional(when) for name, spec in judge_metrics(cfg).items()
                        for st in judge_statements(name, spec).all())]
    if action == "import":
        steps = IMPORT_STATEMENTS
    elif action == "calibrate":
        imports = IMPORT_STATEMENTS if spec.labels else ()
        steps = (*imports, LABELLED, *judges, LABEL_COUNTS, CALIBRATION_RUN, CALIBRATION_ROW, HISTORY)
    elif action == "score":
        steps = (sample_statement(spec.traces), *judges)
    elif action == "history":
        steps = (HISTORY,)
    else:  # every statement of every subcommand
        steps = (*IMPORT_STATEMENTS, LABELLED, *judges, LABEL_COUNTS, CALIBRATION_RUN, CALIBRATION_ROW, HISTORY,
                 sample_statement(spec.traces))
    return Plan("judges", tuple(steps))
