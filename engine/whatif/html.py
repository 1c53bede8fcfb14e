"""HTML pages of what-if results (engine/report/html.py builds the document around them)."""
from __future__ import annotations

from engine.report.html import Column, Page, Row, Section, badge, details, esc, page_for, table

STATUS_BADGE = {"flipped": "bad", "changed": "warn", "refused": "bad", "unchanged": "ok",
                "added": "warn", "removed": "warn", "refused_rule": "bad"}


def _policy(p: dict) -> str:
    return p["label"] + (f" [{p['config_hash']}]" if p.get("config_hash") else "")


def _verdict(rec: dict) -> str:
    v = rec["verdict"]
    if v["after"] in (None, v["before"]):
        return esc(v["before"])
    return f"{esc(v['before'])} &rarr; <strong>{esc(v['after'])}</strong>"


def _new_cases(change: dict) -> str:
    if not change["new_cases"]:
        return ""
    rows = [Row([f"<code>{esc(c.get('case_id'))}</code>", esc(c.get("input_text")),
                 esc(c.get("challenger_output") or c.get("challenger_error")), esc(c.get("c_detail"))])
            for c in change["new_cases"]]
    return details(f"{len(rows)} newly offending case(s) of {esc(change['rule'])}",
                   table([Column("case"), Column("input", wide=True), Column("challenger output", wide=True),
                          Column("detail", wide=True)], rows))


@page_for("whatif_gate")
def whatif_gate_page(result: dict) -> Page:
    s = result["summary"]
    sections = []
    shown = [r for r in result["decisions"] if r["status"] in ("flipped", "changed")]
    if shown:
        rows = []
        for rec in shown:
            changes = "".join(f"<p>{esc(c['explanation'])}</p>{_new_cases(c)}" for c in rec["changes"]
                              if c["outcome_changed"])
            if rec["rescored"]:
                changes += f'<p class="muted">re-scored from stored outputs: {esc(", ".join(rec["rescored"]))}</p>'
            rows.append(Row([f"<code>{esc(rec['decision_id'])}</code>", esc(rec["decided_at"][:19]),
                             f"{esc(rec['challenger']['name'])} vs {esc(rec['baseline']['name'])}",
                             badge(rec["status"], STATUS_BADGE[rec["status"]]) + " " + _verdict(rec), changes]))
        sections.append(Section("changed", "What flips", table(
            [Column("decision"), Column("decided"), Column("challenger vs baseline"), Column("verdict"),
             Column("which rule, by how much", wide=True)], rows, table_id="flips", sortable=True)))
    refused = [r for r in result["decisions"] if r["status"] == "refused"]
    if refused:
        sections.append(Section("refused", f"Not replayed ({len(refused)})", table(
            [Column("decision"), Column("decided"), Column("reason", wide=True)],
            [Row([f"<code>{esc(r['decision_id'])}</code>", esc(r["decided_at"][:19]), esc(r["reason"])])
             for r in refused])))
    rows = []
    for rec in result["decisions"]:
        versions = "<br>".join(f"{esc(k)}@<code>{esc(v)}</code>" for k, v in rec["dataset_versions"].items())
        metrics = "<br>".join(f"{esc(m)} <code>{esc(u['hash'])}</code>"
                              + (" (re-scored)" if m in rec["rescored"] else "") for m, u in rec["metrics"].items())
        rows.append(Row([f"<code>{esc(rec['decision_id'])}</code>", esc(rec["decided_at"][:19]),
                         f"{esc(rec['challenger']['name'])} vs {esc(rec['baseline']['name'])}",
                         badge(rec["status"], STATUS_BADGE[rec["status"]]), _verdict(rec), versions, metrics]))
    sections.append(Section("decisions", "Every selected decision", table(
        [Column("decision"), Column("decided"), Column("challenger vs baseline"), Column("status"),
         Column("verdict"), Column("dataset versions"), Column("metric definitions")], rows, table_id="all",
        sortable=True)))
    provenance = [("policy", _policy(result["policy"])), ("compared with", _policy(result["against"])),
                  ("selection", ", ".join(f"{k}={v}" for k, v in result["selection"].items())),
                  ("metric definitions", ", ".join(f"{m} {h}" for m, h in result["metric_hashes"].items())),
                  ("model calls", str(result["model_calls"])), ("store", result["store"])]
    return Page(f"What-if gate: {s['flipped']} of {s['decisions']} flip",
                "pass" if s["unchanged"] == s["decisions"] else "fail",
                f'What-if gate: <span class="verdict">{s["flipped"]} of {s["decisions"]}</span> decisions flip',
                esc(result["summary_line"]), provenance, sections)


@page_for("whatif_monitor")
def whatif_monitor_page(result: dict) -> Page:
    s = result["summary"]
    sections = []
    rows = []
    for rule in result["rules"]:
        status = rule["status"]
        rows.append(Row([esc(rule["section"]), esc(rule["name"]),
                         badge(status, STATUS_BADGE.get(status, "warn" if status == "changed" else "ok")),
                         esc(rule["bound"]["before"]), esc(rule["bound"]["after"]),
                         (str(rule["alerts"]["before"]), rule["alerts"]["before"]),
                         (str(rule["alerts"]["after"]), rule["alerts"]["after"]),
                         (str(len(rule["appear"])), len(rule["appear"])),
                         (str(len(rule["disappear"])), len(rule["disappear"])), esc(rule["reason"] or "")]))
    sections.append(Section("rules", "Alerts per rule", table(
        [Column("section"), Column("rule"), Column("status"), Column("bound before"), Column("bound after"),
         Column("alerts before", numeric=True), Column("alerts after", numeric=True), Column("appear", numeric=True),
         Column("disappear", numeric=True), Column("note", wide=True)], rows, table_id="rules", sortable=True)))
    weeks = [Row([esc(w["week"]), (str(w["before"]), w["before"]), (str(w["after"]), w["after"]),
                  (f"{w['after'] - w['before']:+d}", w["after"] - w["before"])]) for w in result["weeks"]]
    sections.append(Section("weeks", "Alerts per week", table(
        [Column("week"), Column("before", numeric=True), Column("after", numeric=True),
         Column("change", numeric=True)], weeks)))
    moved = []
    for rule in result["rules"]:
        for kind in ("appear", "disappear"):
            for w in rule[kind]:
                moved.append(Row([esc(rule["section"]), esc(rule["name"]), esc(kind), esc(w["window"]),
                                  esc(w.get("model") or ""), esc(_fmt(w.get("value"))), esc(_fmt(w.get("p_value")))]))
    if moved:
        sections.append(Section("windows", "Alerts that appear or disappear", table(
            [Column("section"), Column("rule"), Column(""), Column("window"), Column("model"),
             Column("statistic", numeric=True), Column("p-value", numeric=True)], moved, table_id="moved",
            sortable=True)))
    provenance = [("policy", _policy(result["policy"])), ("compared with", _policy(result["against"])),
                  ("history", f"{result['history']['runs']} monitor run(s), windows "
                              f"{result['history']['first_window'] or '-'} .. {result['history']['last_window'] or '-'}"),
                  ("store", result["store"])]
    changed = s["appear"] + s["disappear"]
    quiet = not s["changed_rules"] and not s["refused_rules"]
    return Page(f"What-if monitor: {changed} alert(s) change", "pass" if quiet else "fail",
                f'What-if monitor: <span class="verdict">{s["appear"]} appear, {s["disappear"]} disappear</span>',
                esc(result["summary_line"]), provenance, sections)


def _fmt(v) -> str:
    return "" if v is None else f"{v:.4g}"
