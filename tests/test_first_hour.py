"""A new user's first hour, played through the real CLI at 80 columns (a CI log, a pipe):

`flywheel init` in an empty directory, evaluate, gate, a sweep of two challengers, ingest of the traces the team
already has (Flywheel JSONL and OpenTelemetry GenAI spans) with their feedback, monitor, bridge. Every step
exits as documented, and what it prints is readable: every name and number whole, every table within 80
columns.
"""
from __future__ import annotations

import re
from pathlib import Path

import duckdb

from first_hour_data import write_production

from engine.gate.report import _value as gate_value
from engine.monitor.report import _num as monitor_num
from engine.report.terminal import _fmt as evaluate_value

COLUMNS = 80
TABLE_CHARS = re.compile(r"[│┃┏┓┗┛┡┩└┘├┤┼╇╈━─╭╮╰╯]")


def run(cli, project, *args):
    return cli(*args, cwd=project, env={"COLUMNS": str(COLUMNS)})


def assert_readable(r, *tokens: str) -> None:
    """Nothing cut to `…`, every table line within the width, every expected token printed whole."""
    out = r.stdout
    assert "…" not in out, out
    too_wide = [line for line in out.splitlines() if TABLE_CHARS.search(line) and len(line) > COLUMNS]
    assert not too_wide, "\n".join(too_wide)
    words = set(re.findall(r"[\w.,:%+\-<>=/@]+", out))
    for token in tokens:
        assert token in out, (token, out)
        if re.fullmatch(r"[\w.]+", token):  # a name or a number: not glued to a neighbour either
            assert re.search(rf"(?<![\w.]){re.escape(token)}(?![\w])", out), (token, out)
    assert words  # printed something


def test_the_first_hour(cli, tmp_path):
    project = tmp_path / "helpdesk"
    project.mkdir()

    # 1. a project to start from
    r = run(cli, tmp_path, "init", str(project))
    assert r.code == 0, r
    assert_readable(r, "conf/config.yaml", "my_model.py", "flywheel evaluate", "flywheel gate")

    # 2. the lab: the stub model on the golden and red-team sets
    r = run(cli, project, "evaluate", "out=evaluate.json")
    assert r.code == 0, r
    result = r.json
    tokens = set()
    for row in result["summary"]:
        aggregate = result["aggregates"][row["metric"]]
        tokens |= {row["metric"], evaluate_value(row[aggregate], aggregate), row["dataset"]}
        tokens |= {row["tag"]} if row["tag"] else set()
    assert_readable(r, *tokens)

    # 3. the release gate: the challenger answers more and regresses nowhere
    r = run(cli, project, "gate", "out=gate.json", "report=reports/gate.html")
    assert r.code == 0, r
    gate = r.json
    assert gate["verdict"] == "PASS"
    assert_readable(r, "PASS", gate["challenger"]["name"], gate["baseline"]["name"],
                    *[rule["name"] for rule in gate["rules"]], *[gate_value(rule["value"]) for rule in gate["rules"]])
    assert (project / "reports" / "gate.html").is_file()

    # 4. a sweep over two challengers: one is the baseline itself (a gate against itself decides nothing: an
    #    ERROR entry saying so, not a verdict), one passes
    r = run(cli, project, "gate", "-m", "challenger=my_model,my_model_v2", "out=leaderboard.json",
            "report=reports/sweep.html")
    assert r.code == 0, r  # at least one challenger passes
    board = r.json
    assert sorted(e["verdict"] for e in board["entries"]) == ["ERROR", "PASS"]
    passed = next(e for e in board["entries"] if e["verdict"] == "PASS")
    errored = next(e for e in board["entries"] if e["verdict"] == "ERROR")
    assert passed["challenger"] == "my_model_v2"
    assert "the challenger 'my_model' and the baseline (config) are the same model" in errored["error"]
    assert_readable(r, "my_model_v2", "PASS", "ERROR", "are the same")

    # 5. the traces the team already has, with feedback: JSONL, and OpenTelemetry spans in the three layouts
    #    instrumentations write (current GenAI conventions, OpenLLMetry's indexed attributes, OpenInference), with
    #    feedback as span events and as records keyed by the OTel trace id
    data = write_production(project)
    assert min(data["spans_by_layout"].values()) > 0, data["spans_by_layout"]
    assert data["span_feedback"] > 0 and data["feedback_by_otel_trace_id"] > 0 and data["feedback"] > 0
    r = run(cli, project, "ingest", "path=data/production", "out=ingest.json")
    assert r.code == 0, r
    ingest = r.json
    totals = ingest["totals"]
    assert totals["quarantined"] == 0
    assert totals["read"] == data["traces"] + data["spans"] + data["span_feedback"] + data["feedback"]
    assert ingest["by_kind"]["traces"]["accepted"] == data["traces"] + data["spans"]
    assert ingest["by_kind"]["feedback"]["accepted"] == data["feedback"] + data["span_feedback"]
    assert_readable(r, "traces.jsonl", "spans_otlp.jsonl", "spans_openllmetry.jsonl", "spans_openinference.jsonl",
                    "feedback.jsonl", "otlp", f"{totals['read']:,}", f"{totals['accepted']:,}")
    by_file = {Path(f["path"]).name: f for f in ingest["files"]}
    for layout, count in data["spans_by_layout"].items():  # each file read in its own layout, every span a trace
        otlp = by_file[data["paths"][layout].name]["otlp"]
        assert otlp["traces"] == count and otlp["skipped"] == 0, otlp
    # the feedback keyed by OTel trace ids found its traces (the spans' ids, not some other key)
    con = duckdb.connect(str(project / ".flywheel" / "flywheel.duckdb"), read_only=True)
    try:
        joined = con.execute("SELECT count(*) FROM feedback AS f JOIN traces AS t USING (trace_id) "
                             "WHERE f.source_file LIKE '%feedback.jsonl' AND length(f.trace_id) = 32").fetchone()[0]
    finally:
        con.close()
    assert joined == data["feedback_by_otel_trace_id"]

    # 6. monitor: the second week drifts (longer messages, questions the model cannot answer): exit 1
    r = run(cli, project, "monitor", "out=monitor.json", "report=reports/monitor.html")
    assert r.code == 1, r
    monitor = r.json
    assert "drift.input_length_psi" in monitor["blocking_alerts"]
    parity = monitor["parity"][0]
    assert parity["status"] == "alert" and parity["live_source"] == "feedback"
    assert_readable(r, "ALERT", *[d["name"] for d in monitor["drift"]], *[k["name"] for k in monitor["kpis"]],
                    *[monitor_num(k["value"]) for k in monitor["kpis"]], "live: user feedback",
                    *[m["metric"] for m in monitor["online"]["metrics"]])

    # 7. the bridge: failures with a correction become golden cases, the rest wait in a label queue
    r = run(cli, project, "bridge", "out=bridge.json")
    assert r.code == 0, r
    bridge = r.json
    golden = bridge["golden"]
    assert golden["dataset"] == "golden" and golden["added"] > 0 and golden["version"] != golden["parent_version"]
    assert_readable(r, *bridge["policies"], *[str(p["selected"]) for p in bridge["policies"].values()],
                    golden["version"])

    # 8. what the bridge changed in the golden set
    r = run(cli, project, "datasets", "list")
    assert r.code == 0, r
    assert_readable(r, "golden", "red_team", golden["version"], golden["parent_version"])
    r = run(cli, project, "datasets", "diff", golden["parent_version"], "golden@head", "out=diff.json")
    assert r.code == 0, r
    assert len(r.json["added"]) == golden["added"]
    assert_readable(r, f"{golden['added']} added", *[c["case_id"] for c in r.json["added"]])
