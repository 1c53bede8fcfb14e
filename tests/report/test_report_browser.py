"""The HTML reports in headless Chromium: they load offline without console errors, the charts draw, the
regressed cases are there, and sorting and filtering work. Skipped with a message when Chromium is missing."""
from __future__ import annotations

import json

from engine.report.html import Page, Section, document

MAX_DEMO_REPORT_BYTES = 2 * 1024 * 1024

# Sizes of every chart, after opening every <details> so collapsed ones lay out too.
CHART_SIZES = """(() => {
  document.querySelectorAll("details").forEach(d => { d.open = true; });
  return Array.from(document.querySelectorAll("svg.chart")).map(s => {
    const r = s.getBoundingClientRect();
    return [r.width, r.height, s.querySelectorAll("rect, circle, path").length];
  });
})()"""
DUPLICATE_IDS = """(() => {
  const ids = Array.from(document.querySelectorAll("[id]")).map(e => e.id);
  return ids.filter((id, i) => ids.indexOf(id) !== i);
})()"""


def visible_row_ids(page, table_id: str) -> list[str]:
    return page.evaluate(f"Array.from(document.getElementById({json.dumps(table_id)}).tBodies[0].rows)"
                         ".filter(r => !r.hidden).map(r => r.id || r.cells[0].textContent.trim())")


def set_filter(page, table_id: str, selector: str, script: str) -> None:
    page.evaluate(f"""(() => {{
      const box = document.querySelector('.filters[data-table={json.dumps(table_id)}]');
      const el = box.querySelector({json.dumps(selector)});
      {script}
      el.dispatchEvent(new Event(el.type === "checkbox" ? "change" : "input"));
    }})()""")


def assert_loaded_cleanly(page) -> None:
    assert page.load.errors == [], page.load.errors
    assert all(url.startswith(("file:", "data:")) for url in page.load.requests), page.load.requests
    assert page.evaluate(DUPLICATE_IDS) == []


def test_console_errors_and_blocked_fetches_are_caught(open_page, tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title></head><body>'
                      '<script>console.error("deliberate"); setTimeout(() => missingFunction(), 50);</script>'
                      "</body></html>", encoding="utf-8")
    errors = open_page(broken).load.errors
    assert any("deliberate" in e for e in errors), errors
    assert any("missingFunction is not defined" in e for e in errors), errors
    # a report that tried to fetch anything would be blocked by its Content-Security-Policy, visibly
    fetching = tmp_path / "fetching.html"
    fetching.write_text(document(Page("t", None, "h", "", [], [Section(
        "s", "S", '<img src="http://127.0.0.1:9/chart.png" alt="">')])), encoding="utf-8")
    errors = open_page(fetching).load.errors
    assert any("Content Security Policy" in e and "127.0.0.1:9" in e for e in errors), errors


def test_demo_gate_report_opens_offline_with_charts_and_regressed_cases(open_page, cli, tmp_path):
    r = cli("gate", "challenger=bm25_fast", "baseline=keyword_baseline", "out=gate.json", "report=gate.html",
            cwd=tmp_path)
    assert r.code == 1, r  # the bundled risky challenger is BLOCKED
    result, report = r.json, tmp_path / "gate.html"
    assert report.stat().st_size < MAX_DEMO_REPORT_BYTES
    page = open_page(report, width=1400, height=1000)
    assert_loaded_cleanly(page)
    assert "BLOCKED" in page.evaluate("document.querySelector('header h1').textContent")
    charts = page.evaluate(CHART_SIZES)
    metrics = {c["metric"] for c in result["per_tag"]["rows"]}
    assert len(charts) >= len(metrics) + 2  # one per metric, the improvement rule, the violations
    assert all(w > 100 and h > 40 and marks > 2 for w, h, marks in charts), charts
    # every regressed case id of the gate result is listed, side by side
    rule = next(x for x in result["rules"] if x["kind"] == "no_regression")
    regressed = [c["case_id"] for c in rule["cases"]]
    assert regressed and rule["status"] == "fail"
    table = f"cases-{rule['name']}"
    assert visible_row_ids(page, table) == [f"case-{rule['name']}-{c}" for c in regressed]
    # filtering: by text, then by capability tag
    set_filter(page, table, "input[type=search]", f"el.value = {json.dumps(regressed[0])};")
    assert visible_row_ids(page, table) == [f"case-{rule['name']}-{regressed[0]}"]
    set_filter(page, table, "input[type=search]", "el.value = '';")
    set_filter(page, table, "select", "el.value = 'troubleshooting';")
    shown = visible_row_ids(page, table)
    assert shown and len(shown) == sum("troubleshooting" in c["tags"] for c in rule["cases"])
    # safety violations, grouped by the violated rule named in the detail
    violated = page.evaluate("Array.from(document.querySelectorAll('#violations-table tbody tr'))"
                             ".map(r => r.cells[0].textContent)")
    assert "pii.credit_card" in violated and "canary.system_prompt" in violated


def test_cases_from_production_are_marked_and_filterable(open_page, production_gate):  # browser first: skip early
    _, report = production_gate
    page = open_page(report)
    assert_loaded_cleanly(page)
    table = "cases-no_regressions"
    badge = page.evaluate(f"document.querySelector('#{table} tr[data-production] .badge.prod').textContent")
    assert badge == "from production"
    set_filter(page, table, "input[type=checkbox]", "el.checked = true;")
    assert visible_row_ids(page, table) == ["case-no_regressions-m6"]
    assert page.evaluate("document.querySelector('.filters[data-table=\"cases-no_regressions\"] .count')"
                         ".textContent") == "1 of 1 cases shown"


def test_sweep_report_sorts_the_leaderboard_and_charts_the_swept_parameters(open_page, swept):
    project, r = swept  # tests/report/conftest.py: lookup_v1 and lookup_better, min_delta 0.0 and 0.3
    assert r.code == 0, r  # at least one challenger passes
    board = r.json
    page = open_page(project / "sweep.html", width=1400, height=1000)
    assert_loaded_cleanly(page)
    charts = page.evaluate(CHART_SIZES)
    assert len(charts) == 2 and all(w > 100 and h > 100 and marks >= 4 for w, h, marks in charts), charts
    titles = page.evaluate("Array.from(document.querySelectorAll('svg.chart > title')).map(t => t.textContent)")
    assert titles == ["challenger against found", "gate.rules.found_improves.min_delta against found"]
    ranks = "Array.from(document.querySelectorAll('#leaderboard-table tbody tr')).map(r => +r.cells[0].textContent)"
    assert page.evaluate(ranks) == [e["rank"] for e in board["entries"]] == [1, 2, 3, 4]
    click_rank = "document.querySelector('#leaderboard-table th button').click()"
    page.evaluate(click_rank)  # ascending (already), then descending
    page.evaluate(click_rank)
    assert page.evaluate(ranks) == [4, 3, 2, 1]
