"""`flywheel judges import FILE... | calibrate | score | history [METRIC]`: human labels in, judge calibration out.

    flywheel judges import labels.jsonl metrics=[support,judge]   # store people's verdicts (idempotent)
    flywheel judges calibrate metrics=[support,judge] report=calibration.html out=calibration.json
    flywheel judges score metrics=[support,judge]                 # grade sampled traces: judge_disagreement's input
    flywheel judges history                                       # the stored calibrations, newest first
"""
from __future__ import annotations


from engine.commands.registry import Outcome, command
from engine.config import Composed
from engine.errors import UserError
from engine.evaluation import store_path
from engine.judges import config as _config  # noqa: F401  (registers the judges section's checker)
from engine.judges.spec import JudgesSpec
from engine.store import Store

USAGE = ("usage: flywheel judges import FILE [FILE ...] | flywheel judges calibrate | flywheel judges score | "
         "flywheel judges history [METRIC]  (select your judge's metric suite, e.g. metrics=[support,judge])")


def _imports(store: Store, composed: Composed, paths: list[str]) -> list[dict]:
    from engine.judges.labels import import_labels

    return [import_labels(store, p, composed.config, composed.project) for p in paths]


def _report(result: dict, composed: Composed) -> None:
    from engine.report.html import report_options, report_path, write_html

    if report_path(composed.config):
        import engine.judges.html  # noqa: F401  (registers the page builder)
        from engine.console import console
        from engine.outputs import output_path

        target = output_path(report_path(composed.config), composed.project.dir)
        target = write_html(target, result, **report_options(composed.config))
        console.print(f"report written to {target}")


def run(composed: Composed, args: list[str]) -> Outcome:
    from engine.judges import report

    cfg = composed.config
    action, rest = (args[0], args[1:]) if args else (None, [])
    if action not in ("import", "calibrate", "score", "history") or (action == "import" and not rest) \
            or (action in ("calibrate", "score") and rest) or (action == "history" and len(rest) > 1):
        raise UserError(USAGE)
    from engine.judges.plan import compile_plan
    from engine.journal import running_plan

    running_plan(compile_plan(cfg, args))
    with Store.open(store_path(cfg, composed.project)) as store:
        if action == "import":
            imports = _imports(store, composed, rest)
            for imp in imports:
                report.print_import(imp)
            return Outcome(0, {"command": "judges_import", "imports": imports, "store": str(store.path)},
                           "judges_result")
        if action == "calibrate":
            from engine.judges.calibrate import run_calibration

            imports = _imports(store, composed, list(JudgesSpec.of(cfg).labels))
            result = run_calibration(store, cfg, composed.project, imports)
            report.print_calibration(result)
            _report(result, composed)
            return Outcome(0, result, "judges_result")
        if action == "score":
            from engine.judges.traces import score_traces

            result = score_traces(store, cfg, composed.project)
            report.print_score(result)
            return Outcome(0, result, "judges_result")
        from engine.judges.calibrate import history

        rows = history(store, rest[0] if rest else None, limit=50)
        report.print_history(rows)
        return Outcome(0, {"command": "judges_history", "calibrations": rows, "store": str(store.path)},
                       "judges_result")


def compile_sql(composed: Composed):
    from engine.judges.plan import compile_plan

    return compile_plan(composed.config, list(composed.args))


@command("judges", "judge calibration: `judges import FILE` human labels, `judges calibrate` agreement "
                   "(kappa, CI, per tag), `judges score` traces, `judges history`", positional=True,
         sections=("judges",), compile=compile_sql)
def judges(composed: Composed) -> Outcome:
    return run(composed, list(composed.args))
