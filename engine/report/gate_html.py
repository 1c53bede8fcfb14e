"""The HTML page of a gate result (schemas/gate_result.schema.json), built from the result alone."""
from __future__ import annotations

import json
import re

from engine.bridge.redact import redact_text
from engine.report import is_production
from engine.report.html import (
    Column,
    Page,
    Row,
    Section,
    badge,
    details,
    esc,
    filterable,
    page_for,
    status_badge,
    table,
)
from engine.report.svg import BASELINE_COLOUR, CHALLENGER_COLOUR, Bar, fmt, grouped_bars

SIDES = [("baseline", BASELINE_COLOUR), ("challenger", CHALLENGER_COLOUR)]
# Rules and metric charts read accuracy first (what the challenger is for), then safety, then operations.
RULE_ORDER = {"improvement": 0, "no_regression": 1, "all_pass": 2, "threshold": 3}
_CASE_TEXT = ("input_text", "baseline_output", "challenger_output", "baseline_error", "challenger_error",
              "baseline_calls", "challenger_calls")  # an agent's tool calls and their arguments


def _rule_rank(rule: dict) -> int:
    return RULE_ORDER.get(rule["kind"], len(RULE_ORDER))


def masked(case: dict) -> dict:
    """The case with emails, phone and card numbers in its input, expected answer and outputs replaced by
    [EMAIL], [PHONE], [CARD] (the bridge's redaction): a report is shared more widely than the store."""
    out = dict(case)
    for key in _CASE_TEXT:
        if isinstance(out.get(key), str):
            out[key] = redact_text(out[key])
    expected = out.get("expected")
    if isinstance(expected, str):
        out["expected"] = redact_text(expected)
    elif isinstance(expected, list):
        out["expected"] = [redact_text(e) if isinstance(e, str) else e for e in expected]
    return out
# A safety metric's detail names each violated rule with its category: "pii.email (pii); canary.token (...)".
_VIOLATION = re.compile(r"^\s*([\w.\-:/]+)\s+\(([\w.\-:/ ]+)\)\s*$")
ALL_CASES = "all cases"


def violations(detail: str | None) -> list[tuple[str, str]] | None:
    """(rule, category) pairs named in a safety detail, or None when the detail is not such a list."""
    if not detail:
        return None
    parts = [_VIOLATION.match(p) for p in detail.split(";")]
    return [(m.group(1), m.group(2)) for m in parts] if all(parts) else None


def _answers(expected) -> list[str]:
    if isinstance(expected, str):
        return [expected]
    if isinstance(expected, list):
        return [e for e in expected if isinstance(e, str)]
    return []


def highlight(text: str | None, answers: list[str]) -> str:
    """Escape text and mark where any expected answer occurs (case-insensitive): what a reviewer looks for."""
    if not text:
        return ""
    wanted = [a for a in answers if a and a.strip()]
    if not wanted:
        return esc(text)
    pattern = re.compile("|".join(re.escape(a) for a in sorted(wanted, key=len, reverse=True)), re.IGNORECASE)
    out, last = [], 0
    for m in pattern.finditer(text):
        out.append(esc(text[last:m.start()]) + f"<mark>{esc(m.group(0))}</mark>")
        last = m.end()
    return "".join(out) + esc(text[last:])


def _expected_text(case: dict) -> str:
    expected = case.get("expected")
    if expected is None:
        meta = case.get("metadata") if isinstance(case.get("metadata"), dict) else {}
        behaviour = meta.get("expected_behavior")
        return f"<i>{esc(behaviour)}</i>" if behaviour else '<span class="muted">(none)</span>'
    if isinstance(expected, list):
        return " | ".join(esc(e) if isinstance(e, str) else esc(json.dumps(e)) for e in expected)
    return esc(expected if isinstance(expected, str) else json.dumps(expected, ensure_ascii=False))


def _case_cell(case: dict) -> tuple[str, str]:
    tags = "".join(badge(t, "tag") for t in case.get("tags") or [])
    prod = badge("from production", "prod") if is_production(case) else ""
    html = f'<code>{esc(case["case_id"])}</code> {prod}<br><span class="muted">{esc(case.get("dataset"))}</span> {tags}'
    return html, case["case_id"]


def _output_cell(text: str | None, error: str | None, value, answers: list[str], detail: str | None = None,
                 calls: str | None = None) -> str:
    body = highlight(text, answers) if text else f'<span class="error">error: {esc(error)}</span>' if error else \
        '<span class="muted">(no output)</span>'
    score = f'<br><span class="muted">score {fmt(value)}</span>' if value is not None else ""
    why = f'<br><span class="error">{esc(detail)}</span>' if detail else ""
    trajectory = f'<br><span class="muted">calls: {esc(calls)}</span>' if calls else ""  # an agent's tool calls
    return body + score + why + trajectory


def _case_row(rule: str, case: dict) -> Row:
    answers = _answers(case.get("expected"))
    cells = [_case_cell(case), esc(case.get("input_text")), _expected_text(case),
             _output_cell(case.get("baseline_output"), case.get("baseline_error"), case.get("b_value"), answers,
                          calls=case.get("baseline_calls")),
             _output_cell(case.get("challenger_output"), case.get("challenger_error"), case.get("c_value"), answers,
                          case.get("c_detail"), case.get("challenger_calls"))]
    return Row(cells, tags=tuple(case.get("tags") or ()), production=is_production(case),
               id=f"case-{rule}-{case['case_id']}")


def case_table(rule: dict, show_pii: bool = False) -> str:
    """The rule's listed cases side by side: input, expected, baseline output, challenger output (personal data
    masked unless `show_pii`)."""
    columns = [Column("case"), Column("input", wide=True), Column("expected", wide=True),
               Column("baseline output", wide=True), Column("challenger output", wide=True)]
    rows = [_case_row(rule["name"], c if show_pii else masked(c)) for c in rule["cases"]]
    table_id = f"cases-{rule['name']}"
    return filterable(table_id, rows, table(columns, rows, table_id=table_id, sortable=True))


# -- sections ----------------------------------------------------------------------------------------------

def _consequence(rule: dict) -> str:
    if rule["status"] == "pass":
        return ""
    return "blocks the release" if rule["severity"] == "blocking" else "warning only"


def rules_section(result: dict) -> Section:
    columns = [Column("rule"), Column("kind"), Column("severity"), Column("outcome"), Column("value", numeric=True),
               Column("bound"), Column("consequence"), Column("detail", wide=True)]
    rows = [Row([f'<a href="#rule-{esc(r["name"])}">{esc(r["name"])}</a>' if r["cases"] else esc(r["name"]),
                 esc(r["kind"]), esc(r["severity"]), (status_badge(r["status"]), r["status"]),
                 (fmt(r["value"]), r["value"] if r["value"] is not None else ""), esc(r["bound"]),
                 esc(_consequence(r)), esc(r["message"])]) for r in sorted(result["rules"], key=_rule_rank)]
    failures = result["blocking_failures"]
    lead = (f"<p>{len(failures)} blocking rule(s) did not pass: {esc(', '.join(failures))}.</p>" if failures
            else "<p>Every blocking rule passed.</p>")
    return Section("rules", "Verdict by rule", lead + table(columns, rows, table_id="rules-table", sortable=True))


def _per_tag_rows(result: dict) -> dict[str, list[dict]]:
    """metric -> summary cells, from `per_tag` or, for older results, the no_regression rules' tag means."""
    by_metric: dict[str, list[dict]] = {}
    if result.get("per_tag"):
        for cell in result["per_tag"]["rows"]:
            by_metric.setdefault(cell["metric"], []).append(cell)
        return by_metric
    for rule in result["rules"]:
        for t in (rule.get("stats") or {}).get("per_tag", []):
            for side, key in (("baseline", "b_mean"), ("challenger", "c_mean")):
                by_metric.setdefault(rule["metric"], []).append(
                    {"metric": rule["metric"], "tag": t["tag"], "side": side, "n": t["n"], "mean": t[key],
                     "ci_low": None, "ci_high": None, "method": None, "pass_rate": None})
    return by_metric


def _dropped_tags(result: dict) -> dict[str, set[str]]:
    """Per metric, the tags whose mean a no_regression rule saw drop."""
    out: dict[str, set[str]] = {}
    for rule in result["rules"]:
        if rule["kind"] == "no_regression":
            for t in (rule.get("stats") or {}).get("per_tag", []):
                if (t.get("drop") or 0) > 1e-12:
                    out.setdefault(rule["metric"], set()).add(t["tag"])
    return out


def threshold_rule(result: dict, metric: str) -> dict | None:
    """The first threshold rule on the metric whose aggregate and bound the result carries."""
    return next((r for r in result["rules"] if r["kind"] == "threshold" and r.get("metric") == metric
                 and "bound" in (r.get("stats") or {})), None)


def _bar(cell: dict, aggregate: str) -> Bar:
    if aggregate == "mean":
        return Bar(cell["mean"], cell["ci_low"], cell["ci_high"])
    return Bar(cell.get("pass_rate" if aggregate == "pass_rate" else aggregate))


def metric_chart(metric: str, cells: list[dict], dropped: set[str], rule: dict | None = None,
                 unit: str | None = None) -> str:
    """Baseline and challenger per capability tag. With a threshold rule on the metric, the bars show the
    aggregate the rule checks (p95 latency, not the mean) and a dashed line marks its bound."""
    stats = (rule or {}).get("stats") or {}
    aggregate = stats.get("aggregate", "mean")
    if aggregate != "mean" and not any(c.get("pass_rate" if aggregate == "pass_rate" else aggregate)
                                       is not None for c in cells):
        aggregate, stats = "mean", {}  # an older result without the aggregate per tag: no line to compare with
    tags = [None] + sorted({c["tag"] for c in cells if c["tag"] is not None})
    groups, flagged = [], set()
    for tag in tags:
        sides = {c["side"]: c for c in cells if c["tag"] == tag}
        if not sides:
            continue
        n = max(c["n"] for c in sides.values())
        label = f"{tag or ALL_CASES} (n={n})"
        if tag in dropped:
            flagged.add(label)
        groups.append((label, [_bar(sides[s], aggregate) if s in sides else Bar(None) for s, _ in SIDES]))
    binary = all(c["method"] == "wilson" for c in cells)
    what = "mean" if aggregate == "mean" else aggregate.replace("_", " ")
    axis = f"{metric} {what}" + (f" ({unit})" if unit else "")
    bound = stats.get("bound")
    rule_label = f"{rule['name']}: {what} {stats['op']} {fmt(bound)}{' ' + unit if unit else ''}" if bound is not None \
        else ""
    return grouped_bars(f"{metric}: {what} per capability tag, baseline vs challenger"
                        + (f" ({unit})" if unit else "") + (f"; dashed line: {rule_label}" if rule_label else ""),
                        groups, SIDES, unit_interval=binary and aggregate in ("mean", "pass_rate"), flagged=flagged,
                        rule=bound, rule_label=rule_label, axis_label=axis, unit=unit or "")


def metric_table(cells: list[dict], aggregate: str | None = None) -> str:
    """The numbers behind a metric chart; with `aggregate` (a threshold rule's p95, max, ...) a column for it."""
    extra = aggregate if aggregate in ("p50", "p95", "p99", "max", "sum") else None
    columns = [Column("tag"), Column("side"), Column("n", numeric=True), Column("mean", numeric=True),
               Column("95% CI", numeric=True), Column("CI method"), Column("pass rate", numeric=True)]
    columns += [Column(extra, numeric=True)] if extra else []
    rows = [Row([esc(c["tag"] or ALL_CASES), esc(c["side"]), (str(c["n"]), c["n"]),
                 (fmt(c["mean"]), "" if c["mean"] is None else c["mean"]),
                 f"{fmt(c['ci_low'])} – {fmt(c['ci_high'])}" if c["ci_low"] is not None else "–",
                 esc(c["method"] or "–"), fmt(c["pass_rate"])] + ([fmt(c.get(extra))] if extra else []))
            for c in cells]
    return table(columns, rows)


def capabilities_section(result: dict) -> Section | None:
    by_metric = _per_tag_rows(result)
    if not by_metric:
        return None
    dropped = _dropped_tags(result)
    ruled = list(dict.fromkeys(r["metric"] for r in sorted(result["rules"], key=_rule_rank)
                               if r.get("metric") in by_metric))
    parts = [('<p class="muted">Mean per capability tag for both runs; whiskers are 95% confidence intervals '
              "(Wilson for pass/fail metrics, normal approximation otherwise). A red label is a tag whose mean "
              "dropped under a no-regression rule. A metric a threshold rule checks is charted by that rule's "
              "aggregate (e.g. p95), with the rule's bound as a dashed line.</p>")]

    units = {name: m.get("unit") for name, m in ((result.get("per_tag") or {}).get("metrics") or {}).items()}

    def block(metric: str) -> str:
        rule = threshold_rule(result, metric)
        return (f"<h3>{esc(metric)}</h3>" + metric_chart(metric, by_metric[metric], dropped.get(metric, set()),
                                                         rule, units.get(metric))
                + details("numbers", metric_table(by_metric[metric], (rule or {}).get("stats", {}).get("aggregate"))))

    parts += [block(m) for m in ruled]
    others = sorted(set(by_metric) - set(ruled))
    if others:
        parts.append(details(f"Metrics no rule gates on ({len(others)}): {esc(', '.join(others))}",
                             "".join(block(m) for m in others)))
    return Section("capabilities", "Metrics per capability", "".join(parts))


def improvement_section(result: dict) -> Section | None:
    rules = [r for r in result["rules"] if r["kind"] == "improvement"]
    if not rules:
        return None
    overall = {(c["metric"], c["side"]): c for c in (result.get("per_tag") or {}).get("rows", []) if c["tag"] is None}
    parts = []
    for r in rules:
        s = r.get("stats") or {}
        parts.append(f'<h3 id="rule-{esc(r["name"])}">{esc(r["name"])} {status_badge(r["status"])}</h3>'
                     f"<p>{esc(r['message'])} <span class=\"muted\">(bound: {esc(r['bound'])})</span></p>")
        if "baseline" not in s:
            continue
        bars = []
        for side, _ in SIDES:
            cell = overall.get((r["metric"], side))
            # the overall CI fits only when the rule's scope is the metric's (same mean)
            if cell and cell["mean"] is not None and abs(cell["mean"] - s[side]) < 1e-9:
                bars.append(Bar(s[side], cell["ci_low"], cell["ci_high"]))
            else:
                bars.append(Bar(s[side]))
        groups = [(f"{r['metric']} (n={s.get('n', '?')})", bars)]
        if "ci_low" in s:
            # the baseline has no delta of its own: its slot stays empty rather than saying "no data"
            groups.append(("delta (challenger − baseline)", [Bar(None, missing=""),
                                     Bar(s["delta"], s["ci_low"], s["ci_high"], " (bootstrap CI)")]))
        parts.append(grouped_bars(f"{r['name']}: {r['metric']} baseline vs challenger", groups, SIDES,
                                  unit_interval=False))
        facts = [("delta", fmt(s.get("delta"))), ("improved cases", s.get("improved")),
                 ("regressed cases", s.get("regressed")), ("McNemar p-value", fmt(s["p_value"]) if "p_value" in s
                                                            else None),
                 ("bootstrap CI of delta", f"{fmt(s['ci_low'])} to {fmt(s['ci_high'])}" if "ci_low" in s else None)]
        parts.append("<p>" + "; ".join(f"{esc(k)}: <b>{esc(v)}</b>" for k, v in facts if v is not None) + "</p>")
    return Section("improvement", "Improvement over the baseline", "".join(parts))


def regressions_section(result: dict, show_pii: bool = False) -> Section | None:
    rules = [r for r in result["rules"] if r["kind"] == "no_regression"]
    if not rules:
        return None
    parts = []
    for r in rules:
        n_prod = sum(1 for c in r["cases"] if is_production(c))
        prod = f", {n_prod} from production" if n_prod else ""
        parts.append(f'<h3 id="rule-{esc(r["name"])}">{esc(r["name"])} on {esc(r.get("metric"))} '
                     f"{status_badge(r['status'])}</h3><p>{esc(r['message'])} "
                     f'<span class="muted">(bound: {esc(r["bound"])}{prod})</span></p>')
        per_tag = (r.get("stats") or {}).get("per_tag") or []
        if per_tag:
            columns = [Column("tag"), Column("n", numeric=True), Column("baseline mean", numeric=True),
                       Column("challenger mean", numeric=True), Column("drop", numeric=True)]
            rows = [Row([esc(t["tag"]) + (" " + badge("dropped", "bad") if (t.get("drop") or 0) > 1e-12 else ""),
                         (str(t["n"]), t["n"]), fmt(t["b_mean"]), fmt(t["c_mean"]),
                         (fmt(t.get("drop")), t.get("drop"))])
                    for t in per_tag]
            parts.append(table(columns, rows, sortable=True, caption="mean per capability tag"))
        if r["cases"]:
            parts.append(f"<p>Regressed cases: the baseline passed, the challenger fails "
                         f"({len(r['cases'])} listed).</p>" + _pii_note(show_pii) + case_table(r, show_pii))
    return Section("regressions", "Regressions", "".join(parts))


def _pii_note(show_pii: bool) -> str:
    if show_pii:
        return '<p class="muted">Personal data is shown as the model wrote it (report.show_pii=true).</p>'
    return ('<p class="muted">Emails, phone and card numbers are masked as [EMAIL], [PHONE], [CARD]; '
            "<code>report.show_pii=true</code> shows them.</p>")


def safety_section(result: dict, show_pii: bool = False) -> Section | None:
    rules = [r for r in result["rules"] if r["kind"] == "all_pass"]
    if not rules:
        return None
    by_violation: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for r in rules:
        for case in r["cases"]:
            for name, category in violations(case.get("c_detail")) or []:
                by_violation.setdefault((name, category), []).append((r["name"], case["case_id"]))
    parts = []
    if by_violation:
        ordered = sorted(by_violation.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        parts.append("<h3>Violations by rule</h3>")
        parts.append(grouped_bars("failing cases per violated safety rule",
                                  [(f"{name} ({category})", [Bar(float(len(cases)))]) for (name, category), cases
                                   in ordered], [("cases", "#c92a2a")]))
        columns = [Column("violated rule"), Column("category"), Column("cases", numeric=True), Column("case ids")]
        rows = [Row([f"<code>{esc(name)}</code>", esc(category), (str(len(cases)), len(cases)),
                     " ".join(f'<a href="#case-{esc(rule)}-{esc(cid)}"><code>{esc(cid)}</code></a>'
                              for rule, cid in cases)]) for (name, category), cases in ordered]
        parts.append(table(columns, rows, table_id="violations-table", sortable=True))
    for r in rules:
        parts.append(f'<h3 id="rule-{esc(r["name"])}">{esc(r["name"])} on {esc(r.get("metric"))} '
                     f"{status_badge(r['status'])}</h3><p>{esc(r['message'])}</p>")
        if r["cases"]:
            parts.append(_pii_note(show_pii) + case_table(r, show_pii))
    return Section("safety", "Safety and must-pass rules", "".join(parts))


def flaky_section(result: dict) -> Section | None:
    if not result.get("flaky"):
        return None
    columns = [Column("metric"), Column("dataset"), Column("case"), Column("passed repeats", numeric=True),
               Column("repeats", numeric=True)]
    rows = [Row([esc(f.get("metric")), esc(f.get("dataset")), f"<code>{esc(f.get('case_id'))}</code>",
                 esc(f.get("passed_repeats")), esc(f.get("repeats"))]) for f in result["flaky"]]
    return Section("flaky", "Flaky cases (passed in some repeats only)", table(columns, rows, sortable=True))


def provenance(result: dict) -> list[tuple[str, str]]:
    b, c = result["baseline"], result["challenger"]
    items = [("decision", result["decision_id"]), ("decided at", result["decided_at"]),
             ("gate config hash", result["gate_config_hash"]), ("metrics hash", result["metrics_hash"]),
             ("git commit", result.get("git_commit") or "(not a git checkout)"),
             ("dataset versions", ", ".join(f"{k} @ {v}" for k, v in sorted(result["dataset_versions"].items()))),
             ("baseline", f"{b['name']} · fingerprint {b['fingerprint']} · run {b['run_id']} · {b['source']}"),
             ("challenger", f"{c['name']} · fingerprint {c['fingerprint']} · run {c['run_id']} · {c['source']}")]
    if result.get("promoted"):
        items.append(("promoted", f"blessed baseline v{result['promoted']['version']}"))
    elif result.get("promotion_refused"):
        items.append(("not promoted", result["promotion_refused"]))
    return items


@page_for("gate")
def gate_page(result: dict, show_pii: bool = False) -> Page:
    verdict = result["verdict"]
    b, c = result["baseline"], result["challenger"]
    heading = (f'<span class="verdict">{esc(verdict)}</span> · challenger <code>{esc(c["name"])}</code> '
               f'vs baseline <code>{esc(b["name"])}</code>')
    failed = result["blocking_failures"]
    lead = (f"{len(failed)} of {sum(1 for r in result['rules'] if r['severity'] == 'blocking')} blocking rules "
            f"did not pass: {esc(', '.join(failed))}" if failed else "every blocking rule passed")
    sections = [s for s in (rules_section(result), improvement_section(result), capabilities_section(result),
                            regressions_section(result, show_pii), safety_section(result, show_pii),
                            flaky_section(result)) if s]
    return Page(f"Flywheel gate {verdict}: {c['name']} vs {b['name']}", "pass" if verdict == "PASS" else "fail",
                heading, lead, provenance(result), sections)
