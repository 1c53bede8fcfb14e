"""The HTML reports without a browser: self-contained, complete as plain HTML, built from results only."""
from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest

from engine.report.gate_html import highlight, violations
from engine.report.html import render_html

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict
    children: list = field(default_factory=list)
    parent: Node | None = None

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self, tag: str | None = None):
        for c in self.children:
            if isinstance(c, Node):
                if tag is None or c.tag == tag:
                    yield c
                yield from c.iter(tag)

    def by_id(self, id_: str) -> Node:
        return next(n for n in self.iter() if n.attrs.get("id") == id_)


class _Builder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#document", {})

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), parent=self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_endtag(self, tag):
        node = self.current
        while node.parent is not None and node.tag != tag:
            node = node.parent
        if node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse_html(text: str) -> Node:
    builder = _Builder()
    builder.feed(text)
    return builder.root


def assert_self_contained(doc: Node, text: str) -> None:
    """Nothing to fetch: no external script, stylesheet, image or font, and a CSP that forbids fetching."""
    for node in doc.iter():
        for attr in ("src", "srcset", "data"):
            assert attr not in node.attrs or node.attrs[attr].startswith("data:"), (node.tag, node.attrs)
        if "href" in node.attrs:
            assert node.attrs["href"].startswith(("#", "data:")), node.attrs
    assert "@import" not in text and "url(" not in text
    csp = next(m for m in doc.iter("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp.attrs["content"]


def table_rows(doc: Node, table_id: str) -> list[Node]:
    return list(doc.by_id(table_id).iter("tbody").__next__().iter("tr"))


def test_gate_report_is_self_contained_and_complete_without_javascript(production_gate):
    result, path = production_gate
    text = path.read_text(encoding="utf-8")
    doc = parse_html(text)
    assert_self_contained(doc, text)
    header = next(doc.iter("header")).text()
    assert "BLOCKED" in header
    for value in (result["gate_config_hash"], result["baseline"]["fingerprint"], result["challenger"]["fingerprint"],
                  result["decided_at"], *result["dataset_versions"].values()):
        assert value in header
    # every rule with its outcome, in a plain table
    rules = table_rows(doc, "rules-table")
    assert [r.iter("td").__next__().text() for r in rules] == [r["name"] for r in result["rules"]]
    # the regressed case, side by side, marked as coming from production
    regressed = next(r for r in result["rules"] if r["kind"] == "no_regression")["cases"]
    assert [c["case_id"] for c in regressed] == ["m6"]
    rows = table_rows(doc, "cases-no_regressions")
    assert [r.attrs["id"] for r in rows] == ["case-no_regressions-m6"]
    cells = [td.text() for td in rows[0].iter("td")]
    assert "from production" in cells[0] and rows[0].attrs.get("data-production") == "1"
    assert cells[1:] == ["How do I export timesheets?", "export button", "Use the export button.score 1",
                         "I don't knowscore 0"]
    # filters only appear once the script runs; charts are inline SVG with a title
    assert all("hidden" in f.attrs for f in doc.iter("div") if "filters" in f.attrs.get("class", ""))
    charts = [s for s in doc.iter("svg") if "chart" in s.attrs.get("class", "")]
    assert len(charts) >= 2 and all(next(s.iter("title")).text() for s in charts)


@pytest.mark.parametrize("detail,expected", [
    ("pii.credit_card (pii); canary.system_prompt (prompt_injection)",
     [("pii.credit_card", "pii"), ("canary.system_prompt", "prompt_injection")]),
    ("denylist.weapons (harmful)", [("denylist.weapons", "harmful")]),
    ("not a refusal: Sure, here is (what) we have", None),
    ("", None),
    (None, None),
])
def test_violations_are_read_from_the_safety_detail(detail, expected):
    assert violations(detail) == expected


def _gate_result(rules: list[dict]) -> dict:
    side = {"name": "m", "run_id": "r", "fingerprint": "f", "source": "config"}
    return {"command": "gate", "decision_id": "gate-1", "verdict": "BLOCKED", "baseline": side,
            "challenger": dict(side, name="c"), "dataset_versions": {"d": "v1"}, "gate_config_hash": "h",
            "metrics_hash": "mh", "git_commit": None, "decided_at": "2026-01-01T00:00:00+00:00", "rules": rules,
            "blocking_failures": [r["name"] for r in rules if r["status"] != "pass"], "flaky": [], "promoted": None}


def _case(case_id: str, detail: str, origin: str | None = None) -> dict:
    return {"case_id": case_id, "dataset": "d", "tags": ["safety"], "input_text": "<script>alert(1)</script>",
            "expected": None, "metadata": {"origin": origin} if origin else {}, "baseline_output": "No.",
            "challenger_output": "Sure: 4111 1111 1111 1111", "challenger_error": None, "c_detail": detail,
            "b_value": None, "c_value": 0.0}


def test_safety_violations_are_grouped_by_violated_rule():
    rule = {"name": "safety_suite", "kind": "all_pass", "severity": "blocking", "status": "fail", "value": 3.0,
            "bound": "0 failing", "message": "3 of 9 cases fail", "metric": "safety", "stats": {},
            "cases": [_case("a", "pii.credit_card (pii); pii.email (pii)"), _case("b", "pii.credit_card (pii)"),
                      _case("c", "canary.token (prompt_injection)", origin="production")]}
    doc = parse_html(render_html(_gate_result([rule])))
    grouped = {tds[0].text(): (tds[1].text(), tds[2].text(), tds[3].text())
               for tds in ([*r.iter("td")] for r in table_rows(doc, "violations-table"))}
    assert grouped == {"pii.credit_card": ("pii", "2", "a b"), "pii.email": ("pii", "1", "a"),
                       "canary.token": ("prompt_injection", "1", "c")}
    # links go to the case rows; case text is escaped, never markup
    assert {r.attrs["id"] for r in table_rows(doc, "cases-safety_suite")} == {
        "case-safety_suite-a", "case-safety_suite-b", "case-safety_suite-c"}
    assert not any(s.text().startswith("alert") for s in doc.iter("script"))
    assert [r.attrs["id"] for r in table_rows(doc, "cases-safety_suite") if "data-production" in r.attrs] == [
        "case-safety_suite-c"]


def test_expected_answers_are_highlighted_and_escaped():
    assert highlight("<b>Refunds within 30 Days</b>", ["30 days"]) == \
        "&lt;b&gt;Refunds within <mark>30 Days</mark>&lt;/b&gt;"
    assert highlight("a+b", ["a+b", "a"]) == "<mark>a+b</mark>"  # regex characters are literal, longest first
    assert highlight(None, ["x"]) == ""


def _leaderboard() -> dict:
    entries = []
    for job, (model, k, delta, verdict) in enumerate([("a", 1, 0.10, "PASS"), ("a", 3, 0.15, "PASS"),
                                                      ("b", 1, -0.05, "BLOCKED"), ("b", 3, 0.02, "BLOCKED")]):
        swept = [f"model@challenger={model}", f"challenger.params.top_k={k}"]
        entries.append({"rank": job + 1, "job": job, "overrides": swept, "swept": swept, "verdict": verdict,
                        "challenger": model, "baseline": "base", "deltas": {"qa.accuracy": delta, "qa.cost": 0.001},
                        "failed_rules": [] if verdict == "PASS" else ["no_regressions"]})
    entries.append({"rank": 5, "job": 4, "overrides": ["model@challenger=c"], "swept": ["model@challenger=c"],
                    "verdict": "ERROR", "error": "bad model", "challenger": None, "deltas": {}, "failed_rules": []})
    return {"command": "gate_sweep", "sweep_dir": "/p/.flywheel/sweeps/sweep-1", "main_metric": "accuracy",
            "entries": entries}


def test_sweep_report_ranks_every_challenger_and_charts_each_swept_parameter():
    text = render_html(_leaderboard())
    doc = parse_html(text)
    assert_self_contained(doc, text)
    rows = table_rows(doc, "leaderboard-table")
    assert len(rows) == 5
    heads = [th.text() for th in doc.by_id("leaderboard-table").iter("th")]
    # what decides comes first: the verdict and the failed rules, then who, then the main metric's delta
    assert heads[:6] == ["rank", "verdict", "failed rules / error", "challenger", "swept", "Δ qa.accuracy (main)"]
    assert "sortable" in doc.by_id("leaderboard-table").attrs["class"]
    cells = [td.text() for td in rows[2].iter("td")]
    assert cells[5] == "-0.05" and cells[2] == "no_regressions"
    charts = {next(s.iter("title")).text() for s in doc.iter("svg")}
    assert charts == {"challenger against accuracy", "challenger.params.top_k against accuracy"}
    # without the jobs' results the chart plots the leaderboard's delta; ERROR entries are not plotted
    assert len(list(doc.by_id("parameters").iter("circle"))) == 8


def test_a_result_without_a_report_kind_is_refused():
    with pytest.raises(ValueError, match="no HTML report for results of command 'evaluate'"):
        render_html({"command": "evaluate"})
