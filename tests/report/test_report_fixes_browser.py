"""What a new user found hard to read in the HTML reports, checked in headless Chromium with a screenshot of each
fixed part (written to $FLYWHEEL_SCREENSHOTS when set, else to the test's temporary directory):

* sweep: the verdict and the failed rules come first and are on screen at 1280 px;
* gate: accuracy before safety; a threshold rule's metric charted by the rule's aggregate with its unit and
  the bound as a line whose label nothing covers; no "no data" label over the delta row; personal data in
  case outputs masked unless report.show_pii=true;
* monitor: the parity text names the live source configured (feedback or online scores).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: the first-hour traffic

from first_hour_data import write_production  # noqa: E402

EMAIL, PHONE = "jane.doe@example.com", "415-555-0101"
PII_ANSWER = f"Write to {EMAIL} or call {PHONE}"

# Boxes of every <text> in an SVG and of the bars (rects, not the legend's) - for overlap checks.
BOXES = """((selector) => {
  const svg = document.querySelector(selector);
  const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  return {
    svg: box(svg),
    texts: Array.from(svg.querySelectorAll("text")).map(t => [t.textContent, t.getAttribute("class"), ...box(t)]),
    bars: Array.from(svg.querySelectorAll("rect")).filter(r => +r.getAttribute("height") > 12 || r.querySelector("title"))
           .map(box),
  };
})"""
ON_TOP = """((selector) => {
  const el = document.querySelector(selector);
  el.scrollIntoView({block: "center"});
  const r = el.getBoundingClientRect();
  const hit = document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2);
  return [hit === el || el.contains(hit), r.left, r.right, window.innerWidth];
})"""


def overlaps(a, b) -> bool:
    return a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5


@pytest.fixture
def shots(tmp_path) -> Path:
    target = Path(os.environ.get("FLYWHEEL_SCREENSHOTS") or tmp_path / "screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target


def screenshot(page, selector: str, path: Path) -> None:
    top, height = page.evaluate(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                                ".getBoundingClientRect(); return [r.top + window.scrollY, r.height]; })()")
    page.screenshot(path, top=int(top), height=int(min(height, 3000)) + 2)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000, path


@pytest.fixture
def pii_gate(cli, project):
    """The fixture project gated with a policy that lists safety first, a p95 latency rule and a bootstrap delta;
    the challenger answers m1 with an email and a phone number (a regression and a safety failure)."""
    (project / "conf" / "metrics" / "extra.yaml").write_text(
        "no_email:\n  kind: safety\n  packs:\n    pii:\n      - name: email\n        category: pii\n"
        "        pattern: '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}'\n"
        "latency:\n  kind: latency\n", encoding="utf-8")
    (project / "conf" / "gate" / "ordered.yaml").write_text(
        "bootstrap: {resamples: 200, seed: 7}\nrules:\n"
        "  no_email: {kind: all_pass, metric: no_email}\n"
        "  p95_latency: {kind: threshold, metric: latency, aggregate: p95, op: '<=', bound: 800}\n"
        "  found_improves: {kind: improvement, metric: found, min_delta: 0.0,\n"
        "                   significance: {test: bootstrap, alpha: 0.05}}\n"
        "  no_regressions: {kind: no_regression, metric: found}\n", encoding="utf-8")

    def gate(*extra):
        r = cli("gate", "gate=ordered", "metrics=[mini,extra]", f"challenger.params.answers.m1='{PII_ANSWER}'",
                "out=gate.json", *extra, cwd=project)
        assert r.code == 1, r  # BLOCKED: m1 regressed and leaks an email
        return r.json

    return gate


def test_gate_report_reads_accuracy_first_and_charts_rules_plainly(open_page, pii_gate, project, shots):
    result = pii_gate("report=gate.html")
    page = open_page(project / "gate.html", width=1280, height=900)
    assert page.load.errors == []
    sections = page.evaluate("Array.from(document.querySelectorAll('main > section')).map(s => s.id)")
    assert sections.index("improvement") < sections.index("safety")
    assert sections.index("regressions") < sections.index("safety")
    rules = page.evaluate("Array.from(document.querySelectorAll('#rules-table tbody tr'))"
                          ".map(r => r.cells[0].textContent)")
    assert rules == ["found_improves", "no_regressions", "no_email", "p95_latency"]  # config order was safety first
    charts = page.evaluate("Array.from(document.querySelectorAll('#capabilities h3')).map(h => h.textContent)")
    assert charts.index("found") < charts.index("no_email")
    screenshot(page, "#rules", shots / "gate_rules.png")

    # the latency chart: p95 per tag (what the rule checks) in ms, with the rule's bound as a labelled line
    latency = 'svg[aria-label^="latency"]'
    boxes = page.evaluate(BOXES + f"({json.dumps(latency)})")
    texts = {t[0]: t for t in boxes["texts"]}
    assert "latency p95 (ms)" in texts
    label = next(t for t in boxes["texts"] if t[1] == "rule-label")
    assert label[0] == "p95_latency: p95 <= 800 ms"
    assert page.evaluate(f"document.querySelectorAll('{latency} line.rule').length") == 1
    assert not any(overlaps(label[2:], bar) for bar in boxes["bars"])
    assert not any(overlaps(label[2:], t[2:]) for t in boxes["texts"] if t is not label)
    assert page.evaluate(ON_TOP + f"({json.dumps(latency + ' text.rule-label')})")[0]
    challenger_p95 = next(c for c in result["per_tag"]["rows"]
                          if c["metric"] == "latency" and c["tag"] is None and c["side"] == "challenger")["p95"]
    assert any(t[0].endswith(" ms") and t[0].startswith(f"{challenger_p95:.4g}"[:4]) for t in boxes["texts"])
    screenshot(page, latency, shots / "gate_latency.png")

    # the delta row of the improvement chart: no "no data" label, and no text over another
    improvement = "#improvement svg"
    boxes = page.evaluate(BOXES + f"({json.dumps(improvement)})")
    assert not [t for t in boxes["texts"] if t[0] == "no data" or t[1] == "missing"]
    for i, a in enumerate(boxes["texts"]):
        for b in boxes["texts"][i + 1:]:
            assert not overlaps(a[2:], b[2:]), (a, b)
    screenshot(page, "#improvement", shots / "gate_improvement.png")

    # personal data in the regressed and failing outputs is masked
    cases = page.evaluate("document.getElementById('regressions').textContent + "
                          "document.getElementById('safety').textContent")
    assert EMAIL not in cases and PHONE not in cases
    assert "Write to [EMAIL] or call [PHONE]" in cases
    assert "report.show_pii=true" in cases
    assert EMAIL not in (project / "gate.html").read_text(encoding="utf-8")
    screenshot(page, "#regressions", shots / "gate_regressions_masked.png")

    pii_gate("report=gate_pii.html", "report.show_pii=true")
    page = open_page(project / "gate_pii.html", width=1280, height=900)
    shown = page.evaluate("document.getElementById('regressions').textContent")
    assert PII_ANSWER in shown
    screenshot(page, "#regressions", shots / "gate_regressions_shown.png")


def test_sweep_leaderboard_shows_verdict_and_failed_rules_first(open_page, swept, shots):
    project, r = swept  # tests/report/conftest.py: lookup_v1 and lookup_better, min_delta 0.0 and 0.3
    assert r.code == 0, r
    page = open_page(project / "sweep.html", width=1280, height=900)
    heads = page.evaluate("Array.from(document.querySelectorAll('#leaderboard-table th')).map(t => t.textContent)")
    assert heads[:3] == ["rank", "verdict", "failed rules / error"]
    blocked = [i for i, e in enumerate(r.json["entries"]) if e["verdict"] == "BLOCKED"]
    assert blocked
    row = blocked[0] + 1
    cell = f"#leaderboard-table tbody tr:nth-child({row}) td:nth-child(3)"
    assert page.evaluate(f"document.querySelector('{cell}').textContent") == \
        ", ".join(r.json["entries"][blocked[0]]["failed_rules"])
    on_top, left, right, width = page.evaluate(ON_TOP + f"({json.dumps(cell)})")
    assert on_top and right <= width  # on screen without scrolling sideways
    screenshot(page, "#leaderboard", shots / "sweep_leaderboard.png")


def test_monitor_parity_names_the_live_source_configured(open_page, cli, tmp_path, shots):
    project = tmp_path / "helpdesk"
    assert cli("init", str(project), cwd=tmp_path).code == 0
    # the deployed model's lab run: the traffic written below is my_model_v2's (the template's challenger)
    lab = cli("evaluate", "model=my_model_v2", "out=lab.json", cwd=project)
    assert lab.code == 0, lab
    write_production(project, days=10, per_day=25)
    assert cli("ingest", "path=data/production", cwd=project).code == 0
    texts = {}
    for live, extra in (("feedback", []), ("online", ["monitor.parity.accuracy.lab_metric=relevance"])):
        r = cli("monitor", f"monitor.parity.accuracy.live={live}", *extra, f"report={live}.html",
                f"out={live}.json", cwd=project)
        assert r.code in (0, 1), r
        assert r.json["parity"][0]["live_source"] == live
        assert r.json["parity"][0]["lab"]["run_id"] == lab.json["run_id"]  # compared with that lab run
        page = open_page(project / f"{live}.html", width=1280, height=900)
        assert page.load.errors == []
        texts[live] = page.evaluate("document.getElementById('parity').textContent")
        screenshot(page, "#parity", shots / f"monitor_parity_{live}.png")
    assert "live: user feedback" in texts["feedback"] and "online scores" not in texts["feedback"]
    assert "live: online scores of relevance" in texts["online"] and "user feedback" not in texts["online"]
