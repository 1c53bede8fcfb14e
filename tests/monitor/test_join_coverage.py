"""Join coverage: OTel traces (32-hex trace ids, 16-hex span ids, two GenAI spans per trace) and feedback keyed
the ways users key it, through the real CLI: ids that match nothing give no_data and exit 1, never a healthy KPI
or a silently missing parity section; a partial match warns with the unmatched ids; trace ids, answer span ids,
span_id-only records and the old '<traceId>-<spanId>' form all resolve."""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from engine.schemas import load_schema

MONITOR = """
window: day
model: lookup
min_join_share: 0.9
reference: {kind: first_days, days: 1}
features: {}
drift: {}
online: {rate: 0.0, metrics: []}
kpis:
  satisfaction:
    category: efficacy
    aggregates:
      mean_score: {from: feedback, agg: "avg(score)", where: "score IS NOT NULL"}
    value: mean_score
    target: {op: ">=", value: 0.5}
    severity: warn
  resolved_without_ticket:
    category: efficacy
    aggregates:
      ticketed: {from: feedback, agg: "count(DISTINCT session_id)", where: "kind = 'ticket'"}
      sessions: {from: traces, agg: "count(DISTINCT session_id)"}
    value: "1 - coalesce(ticketed, 0) / nullif(sessions, 0)"
    target: {op: ">=", value: 0.5}
    severity: blocking
parity:
  accuracy: {lab_metric: exact, live: feedback, tolerance: 0.9, slice: topic, severity: blocking}
"""
DAY0 = datetime(2025, 3, 1, 9, tzinfo=timezone.utc)
N_REFERENCE, N_CURRENT = 4, 16


def _attr(key, value):
    kind = {str: "stringValue", int: "intValue"}[type(value)]
    return {"key": key, "value": {kind: str(value) if kind == "intValue" else value}}


def _nanos(t: datetime) -> str:
    return str(int(t.timestamp() * 1000) * 1_000_000)


def trace_ids(i: int) -> tuple[str, str, str]:
    """(trace id, rewrite span id, answer span id), shaped as OTel SDKs make them."""
    return f"{0x5f3a00000000000000000000000000 + i:032x}", f"{0x1b00000000000000 + i:016x}", \
        f"{0x2c00000000000000 + i:016x}"


def when(i: int) -> datetime:
    return DAY0 + (timedelta(hours=i) if i < N_REFERENCE else timedelta(days=1 + (i - N_REFERENCE) % 2, hours=i))


def otlp_line(i: int) -> dict:
    trace, rewrite, answer = trace_ids(i)
    t = when(i)

    def chat(span, start, end, question, reply, tokens):
        return {"traceId": trace, "spanId": span, "parentSpanId": "", "name": "chat lookup", "kind": 3,
                "startTimeUnixNano": _nanos(start), "endTimeUnixNano": _nanos(end),
                "attributes": [_attr("gen_ai.operation.name", "chat"), _attr("gen_ai.request.model", "lookup"),
                               _attr("gen_ai.response.model", "lookup-v1"), _attr("gen_ai.conversation.id", f"s{i}"),
                               _attr("app.topic", "billing"), _attr("gen_ai.usage.input_tokens", tokens),
                               _attr("gen_ai.input.messages", json.dumps([{"role": "user", "parts": [
                                   {"type": "text", "content": question}]}])),
                               _attr("gen_ai.output.messages", json.dumps([{"role": "assistant", "parts": [
                                   {"type": "text", "content": reply}]}]))],
                "status": {"code": 1}}
    spans = [chat(rewrite, t, t + timedelta(milliseconds=300), f"Rewrite: question {i}", f"question {i}", 9),
             chat(answer, t + timedelta(milliseconds=350), t + timedelta(seconds=1), f"question {i}", f"answer {i}", 20)]
    return {"resourceSpans": [{"resource": {"attributes": [_attr("service.name", "helpdesk")]},
                               "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai"},
                                               "spans": spans}]}]}


def thumbs(i: int, **ref) -> dict:
    # at the trace's start: the current period ends with the last trace, and the last trace's feedback must be in it
    return {"feedback_id": f"fb-{i}", "timestamp": when(i).isoformat(), "kind": "thumbs",
            "thumbs": "up", "session_id": f"s{i}", **ref}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A project with OTel traces of the `lookup` model and a lab run of it."""
    from tests.conftest import FIXTURE_PROJECT, run_cli

    project = tmp_path_factory.mktemp("joins") / "base"
    shutil.copytree(FIXTURE_PROJECT, project)
    (project / "conf" / "monitor").mkdir()
    (project / "conf" / "monitor" / "joins.yaml").write_text(MONITOR, encoding="utf-8")
    with open(project / "spans.jsonl", "w", encoding="utf-8") as f:
        for i in range(N_REFERENCE + N_CURRENT):
            f.write(json.dumps(otlp_line(i)) + "\n")
    for args in (("ingest", "path=spans.jsonl"), ("evaluate", "model=lookup")):
        r = run_cli(*args, cwd=project)
        assert r.code == 0, r
    return project


def monitored(base: Path, tmp_path: Path, feedback: list[dict]):
    from tests.conftest import run_cli

    project = tmp_path / "project"
    shutil.copytree(base, project)
    with open(project / "feedback.jsonl", "w", encoding="utf-8") as f:
        for record in feedback:
            f.write(json.dumps(record) + "\n")
    r = run_cli("ingest", "path=feedback.jsonl", "kind=feedback", cwd=project)
    assert r.code == 0 and "0 quarantined" in r.stdout, r
    r = run_cli("monitor", "monitor=joins", "out=m.json", "report=m.html", cwd=project)
    Draft202012Validator(load_schema("monitor_result")).validate(r.json)
    return r, (project / "m.html").read_text(encoding="utf-8")


def test_feedback_keyed_by_ids_that_match_nothing_is_no_data_and_alerts(base, tmp_path):
    # ids from another system: shaped like OTel trace ids, naming no stored trace
    feedback = [thumbs(i, trace_id=f"{0x9e00000000000000000000000000 + i:032x}")
                for i in range(N_REFERENCE, N_REFERENCE + N_CURRENT)]
    r, html = monitored(base, tmp_path, feedback)
    assert r.code == 1, r
    result = r.json
    kpis = {k["name"]: k for k in result["kpis"]}
    # a warn-severity KPI from nothing still blocks: it fails closed
    assert kpis["satisfaction"]["status"] == kpis["resolved_without_ticket"]["status"] == "no_data"
    assert {"kpi.satisfaction", "kpi.resolved_without_ticket", "parity.accuracy"} <= set(result["blocking_alerts"])
    assert not result["healthy"]
    assert "16 feedback record(s), 16 naming no stored trace" in kpis["resolved_without_ticket"]["message"]
    ticket = next(c for c in kpis["resolved_without_ticket"]["coverage"] if c["aggregate"] == "sessions")
    assert ticket == {"aggregate": "sessions", "from": "traces", "records": N_CURRENT, "joined": False}
    parity = result["parity"]
    assert len(parity) == 1 and parity[0]["status"] == "no_data"  # the section is there, not silently dropped
    assert parity[0]["coverage"]["matched"] == 0 and parity[0]["coverage"]["unmatched"] == N_CURRENT
    assert "NO DATA" in r.stdout and "Join coverage" in r.stdout
    assert "NO DATA" in html and "Join coverage" in html


def test_partial_match_warns_with_the_unmatched_ids_and_every_id_form_resolves(base, tmp_path):
    current = range(N_REFERENCE, N_REFERENCE + N_CURRENT)
    feedback = []
    unmatched = []
    for k, i in enumerate(current):
        trace, rewrite, answer = trace_ids(i)
        if k < 6:
            ref = {"trace_id": trace}  # the OTel trace id: what every OTel user has
        elif k < 9:
            ref = {"trace_id": answer}  # the answer span's id, in trace_id
        elif k < 10:
            ref = {"span_id": answer}  # a span annotation: span id only
        elif k < 11:
            ref = {"trace_id": trace, "span_id": rewrite}  # a trace id and a span that is not the answer
        elif k < 12:
            ref = {"trace_id": f"{trace}-{answer}"}  # how OTLP traces were keyed before span_id existed
        else:
            unmatched.append(f"{0x7700000000000000 + i:016x}")
            ref = {"trace_id": unmatched[-1]}  # a span id of a trace this store never saw
        feedback.append(thumbs(i, **ref))
    r, html = monitored(base, tmp_path, feedback)
    assert r.code == 0, r
    result = r.json
    sat = next(k for k in result["kpis"] if k["name"] == "satisfaction")
    assert sat["status"] == "ok" and sat["value"] == 1.0
    cov = next(c for c in sat["coverage"] if c["aggregate"] == "mean_score")
    assert (cov["records"], cov["matched"], cov["unmatched"], cov["unmatched_ids"]) == (16, 12, 4, 4)
    assert cov["share"] == 0.75 and cov["examples"] == sorted(unmatched)[:3]
    warning = next(w for w in result["join_warnings"] if w["check"] == "kpi.satisfaction")["message"]
    assert "4 of 16 feedback records (score IS NOT NULL) name no stored trace (75% matched, below " \
           "monitor.min_join_share 0.9): 4 unmatched id(s), e.g. " + ", ".join(sorted(unmatched)[:3]) in warning
    parity = result["parity"][0]
    assert parity["status"] == "ok" and parity["live"]["n"] == 12  # twelve judged traces
    assert parity["coverage"]["matched"] == 12 and parity["join_warning"]
    assert "join warning" in r.stdout and sorted(unmatched)[0] in r.stdout
    assert "Join coverage" in html and sorted(unmatched)[0] in html


def test_a_partial_match_above_the_floor_does_not_warn(base, tmp_path):
    current = list(range(N_REFERENCE, N_REFERENCE + N_CURRENT))
    feedback = [thumbs(i, trace_id=trace_ids(i)[0]) for i in current[:15]]
    feedback.append(thumbs(current[15], trace_id="0" * 32))
    r, _ = monitored(base, tmp_path, feedback)
    assert r.code == 0, r
    sat = next(k for k in r.json["kpis"] if k["name"] == "satisfaction")
    assert sat["coverage"][0]["share"] == 15 / 16 and sat["join_warning"] is None
    assert r.json["join_warnings"] == []
