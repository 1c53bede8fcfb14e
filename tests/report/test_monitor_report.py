"""The monitor's HTML report (`flywheel monitor report=PATH`), from a real run over simulated production traffic
with an injected drift and failure mode (tests/simulated_month.py): self-contained, complete as plain HTML, and in
headless Chromium without console errors, with every chart drawn and the first alert marked."""
from __future__ import annotations

import copy
import math

import pytest
from test_report_html import assert_self_contained, parse_html, table_rows

from engine.report.html import render_html
from tests.simulated_month import (DRIFT_DAY, FIRST_MONITOR_REPORT, day, first_monitor,  # noqa: F401
                                   monitored_month, simulated_month)

MAX_REPORT_BYTES = 1024 * 1024


@pytest.fixture(scope="module")
def monitored(monitored_month):  # noqa: F811
    """(monitor result, HTML report path, the monitor command's stdout), from the real CLI on the shared simulated
    month: its first monitor wrote the report (tests/simulated_month.py), read here where it was written."""
    r = first_monitor(monitored_month)
    assert r.code == 1 and r.out_path.is_file(), r  # the injected drift and failure raise blocking alerts
    return r.json, r.out_path.parent / FIRST_MONITOR_REPORT, r.stdout


def rule(result: dict, name: str) -> dict:
    return next(d for d in result["drift"] if d["name"] == name)


def test_monitor_report_is_self_contained_and_complete_without_javascript(monitored):
    result, path, stdout = monitored
    assert f"report written to {path}" in stdout
    text = path.read_text(encoding="utf-8")
    assert len(text.encode()) < MAX_REPORT_BYTES
    doc = parse_html(text)
    assert_self_contained(doc, text)
    header = next(doc.iter("header")).text()
    assert "ALERT" in header and not result["healthy"]
    for value in (result["run_id"], result["config_hash"], result["started_at"], result["periods"]["ref_start"][:10],
                  result["periods"]["cur_start"][:10], "all models"):
        assert value in header
    # every alert is named in the header and links to its check's block
    ids = {n.attrs["id"] for n in doc.iter() if "id" in n.attrs}
    links = {a.text(): a.attrs["href"] for a in next(doc.iter("header")).iter("a")}
    assert set(links) == set(result["blocking_alerts"]) | set(result["warnings"])
    assert {"drift.input_length_psi", "drift.topic_mix", "parity.accuracy"} <= set(result["blocking_alerts"])
    assert all(href[1:] in ids for href in links.values()), links
    # every check in one plain table; every drift rule and KPI by name, in its section
    checks = table_rows(doc, "checks-table")
    assert len(checks) == len(result["drift"]) + len(result["kpis"]) + len(result["parity"])
    drift_text, kpi_text = doc.by_id("drift").text(), doc.by_id("kpis").text()
    assert [r.iter("td").__next__().text() for r in table_rows(doc, "drift-table")] == [d["name"] for d in
                                                                                       result["drift"]]
    for d in result["drift"]:
        assert d["name"] in drift_text
        if d["windows"]:
            assert len(table_rows(doc, f"drift-windows-{d['name']}")) == len(d["windows"])
    for k in result["kpis"]:
        assert k["name"] in kpi_text
        assert k["name"] in [r.iter("td").__next__().text() for r in table_rows(doc, f"kpis-{k['category']}-table")]
    # the first alert of the injected drift, in the rule's block, its chart and its table
    psi = rule(result, "input_length_psi")
    assert psi["first_alert"].startswith(day(DRIFT_DAY))
    block = doc.by_id("check-drift-input_length_psi")
    assert f"First alert: {day(DRIFT_DAY)}" in block.text()
    assert [g.attrs["data-category"] for g in block.iter("g") if g.attrs.get("class") == "marker"] == [
        psi["first_alert"]]
    # parity: overall, per slice (largest gap first) and per window; online scores
    parity = doc.by_id("parity").text()
    for s in result["parity"][0]["slices"]:
        assert s["slice"] in parity
    assert [r.iter("td").__next__().text() for r in table_rows(doc, "online-table")] == [
        m["metric"] for m in result["online"]["metrics"]]
    titles = [next(s.iter("title")).text() for s in doc.iter("svg")]
    assert len(titles) == len(set(titles))  # one chart per thing, each named


# Sizes and mark counts of every chart, after opening every <details> so collapsed ones lay out too.
CHART_SIZES = """(() => {
  document.querySelectorAll("details").forEach(d => { d.open = true; });
  return Array.from(document.querySelectorAll("svg.chart")).map(s => {
    const r = s.getBoundingClientRect();
    return [s.querySelector("title").textContent, r.width, r.height, s.querySelectorAll("rect, circle").length];
  });
})()"""
FIRST_ALERT = """(() => {
  const block = document.getElementById("check-drift-input_length_psi");
  const marker = block.querySelector("svg.chart g.marker");
  const r = marker.querySelector("line").getBoundingClientRect();
  return [marker.getAttribute("data-category"), r.height, block.querySelector(".first-alert").textContent,
          block.querySelector("tbody .badge").closest("tr").cells[0].textContent];
})()"""


def test_monitor_report_opens_offline_with_every_chart_drawn(open_page, monitored):  # browser first: skip early
    result, path, _ = monitored
    page = open_page(path, width=1400, height=1000)
    assert page.load.errors == [], page.load.errors
    assert all(url.startswith(("file:", "data:")) for url in page.load.requests), page.load.requests
    assert "ALERT" in page.evaluate("document.querySelector('header h1').textContent")
    charts = page.evaluate(CHART_SIZES)
    with_reference = {d["feature"] for d in result["drift"] if (d.get("reference") or {}).get("labels")}
    expected = (len(with_reference) + sum(1 for d in result["drift"] if d["windows"])
                + sum(1 for k in result["kpis"] if any(w["value"] is not None for w in k["windows"]))
                + 3 * len(result["parity"]))
    assert len(charts) == expected, [c[0] for c in charts]
    assert all(w > 100 and h > 40 and marks >= 2 for _, w, h, marks in charts), charts
    window, height, label, row = page.evaluate(FIRST_ALERT)
    first = rule(result, "input_length_psi")["first_alert"]
    assert window == first and height > 50
    assert label == first[:10] and row.startswith(first[:10])


# -- rendering edge cases, from hand-made results --------------------------------------------------------------

def _result() -> dict:
    labels = ["a", "b", "c"]
    windows = [{"window": f"2025-03-0{d}T00:00:00+00:00", "statistic": s, "p_value": None, "n": n, "alert": s > 0.2,
                "details": {"bins": 3, "current_proportions": q}}
               for d, s, n, q in ((1, 0.05, 100, [0.5, 0.3, 0.2]), (2, math.inf, 300, [0.1, 0.3, 0.6]))]
    drift = {"name": "mix", "feature": "topic", "test": "psi", "severity": "blocking",
             "threshold": {"kind": "threshold", "value": 0.2, "bound": 0.2}, "status": "alert", "message": "1 of 2",
             "first_alert": windows[1]["window"], "windows": windows,
             "reference": {"n": 50, "n_missing": 0, "labels": labels, "proportions": [0.4, 0.4, 0.2]}}
    broken = {"name": "empty", "feature": "latency", "test": "ks", "severity": "warn",
              "threshold": {"kind": "p_value", "value": 0.01}, "status": "error", "message": "cannot compute: empty",
              "first_alert": None, "windows": [], "reference": {}}
    kpi = {"name": "nps", "category": "efficacy", "severity": "warn", "target": {"op": ">=", "value": 30},
           "value": None, "status": "error", "message": "cannot compute: no data", "windows": []}
    parity = {"name": "acc", "model": "m", "model_version": "v1", "severity": "blocking", "tolerance": 0.1,
              "status": "error", "message": "no lab run", "lab": {}, "live": {"rate": 0.5, "ci": [0.4, 0.6], "n": 80,
                                                                              "k": 40}, "gap": None, "slices": [],
              "windows": []}
    return {"command": "monitor", "run_id": "monitor-1", "healthy": False, "blocking_alerts": ["drift.mix",
                                                                                              "parity.acc"],
            "warnings": ["drift.empty", "kpi.nps"], "config_hash": "h", "git_commit": None,
            "started_at": "2025-03-03T00:00:00+00:00", "window": "day", "model": "m",
            "periods": {"ref_start": None, "ref_end": None, "cur_start": "2025-03-01T00:00:00+00:00",
                        "cur_end": "2025-03-03T00:00:00+00:00"},
            "online": {"rate": None, "newly_scored": {}, "metrics": []}, "drift": [drift, broken], "kpis": [kpi],
            "parity": [parity]}


def test_current_shares_in_the_window_details_are_pooled_and_drawn_against_the_reference():
    doc = parse_html(render_html(_result()))
    charts = {next(s.iter("title")).text(): s for s in doc.iter("svg")}
    bars = {r.text() for r in charts["topic: distribution, reference vs current"].iter("title")}
    # pooled over the windows, weighted by their size: a = (0.5 * 100 + 0.1 * 300) / 400
    assert {"reference a: 0.4", "current a: 0.2", "current c: 0.5"} <= bars
    # an infinite statistic is drawn at the top and labelled, the table says so too
    assert "∞" in charts["mix: psi on topic per day"].text()
    assert [td.text() for td in table_rows(doc, "drift-windows-mix")[1].iter("td")][2] == "∞"


def test_checks_that_could_not_be_computed_are_listed_without_charts():
    result = _result()
    result["drift"][0]["windows"][0]["details"].pop("current_proportions")
    result["drift"][0]["windows"][1]["details"].pop("current_proportions")
    doc = parse_html(render_html(result))
    assert "Reference only" in doc.by_id("drift").text()
    assert [td.text() for td in table_rows(doc, "checks-table")[1].iter("td")][3] == "ERROR"
    assert "No windows to chart." in doc.by_id("check-drift-empty").text()
    assert "No per-window values." in doc.by_id("check-kpi-nps").text()
    assert "no lab run" in doc.by_id("check-parity-acc").text()
    assert "No online scores" in doc.by_id("online").text()
    healthy = copy.deepcopy(result) | {"healthy": True, "blocking_alerts": [], "warnings": []}
    assert "HEALTHY" in next(parse_html(render_html(healthy)).iter("header")).text()
