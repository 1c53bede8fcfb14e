"""`flywheel judges` runs its compiled plan: each subcommand's run artifacts hold plan.sql equal to `flywheel compile
judges <subcommand>`, and every statement it ran is a plan statement or the judge's Python step (its calls)."""
from __future__ import annotations

from tests.conftest import run_cli
from tests.judges.conftest import JUDGED
from tests.test_plans_of_small_commands import held


def test_judges_import_calibrate_score_and_history_run_their_compiled_plans(judged_project):
    project = judged_project
    imported = held(project, "judges", "import", "labels.jsonl", *JUDGED, "out=i.json")
    assert imported["result"].code == 0 and imported["result"].json["imports"][0]["inserted"] == 43
    assert {"labels:existing", "labels:insert", "labels:batch"} <= imported["ran"]

    calibrated = held(project, "judges", "calibrate", *JUDGED, "out=c.json")
    assert calibrated["result"].code == 0, calibrated["result"]
    assert {"labelled", "judge:quality:store", "judge:quality:verdicts", "calibration:run", "calibration:slice",
            "calibration:history"} <= calibrated["ran"]
    steps = {s["step"] for s in calibrated["data"]["steps"] if s["step"]}
    assert "judge:quality" in steps  # the judge's cache lookups ran inside its Python step

    history = held(project, "judges", "history", *JUDGED, "out=h.json")
    assert history["ran"] == {"calibration:history"} and history["result"].json["calibrations"]

    scored = held(project, "judges", "score", *JUDGED, "out=s.json")
    assert scored["result"].code == 0 and scored["result"].json["sampled"] == 0  # no traces in this project
    assert scored["ran"] == {"traces:sample"}
    assert run_cli("compile", "judges", *JUDGED, cwd=project).code == 0  # every subcommand's statements


def test_evaluate_and_gate_with_a_judge_metric_run_their_compiled_plans(judged_project):
    project = judged_project
    evaluated = held(project, "evaluate", *JUDGED, "out=e.json")
    assert evaluated["result"].code == 0, evaluated["result"]
    # the judge's cache lookups are plan statements run inside the metrics' Python step; its rows are written
    # by the plan's metrics:write step
    inside = {s["name"] for s in evaluated["data"]["steps"] if s["step"] == "metrics:python" and s["in_plan"]}
    assert inside == {"judge_cache:distinct_keys", "judge_cache:missing"}
    assert any(s["step"] == "metrics:write" for s in evaluated["data"]["steps"])
    gated = held(project, "gate", *JUDGED, "out=g.json")
    assert gated["result"].code in (0, 1), gated["result"]
