"""The calibration report as a self-contained HTML page (built with engine/report/html.py's blocks)."""
from __future__ import annotations

from engine.judges.report import kappa_text
from engine.report.html import Column, Page, Row, Section, badge, definition_list, esc, page_for, table


def _num(value, digits: int = 3):
    return ("-", "") if value is None else (f"{value:.{digits}f}", value)


def _confusion(c: dict) -> str:
    rows = [Row(["people: pass", str(c["human_pass"]["judge_pass"]), str(c["human_pass"]["judge_fail"])]),
            Row(["people: fail", str(c["human_fail"]["judge_pass"]), str(c["human_fail"]["judge_fail"])])]
    return table([Column(""), Column("judge: pass", numeric=True), Column("judge: fail", numeric=True)], rows)


def _judge_section(judge: dict, level: float) -> Section:
    j = judge["judge"]
    rows = []
    for s in judge["slices"]:
        rows.append(Row(["all labels" if s["slice"] == "*" else esc(s["slice"]), (str(s["n_labels"]), s["n_labels"]),
                         _num(s["accuracy"]), (esc(kappa_text(s)), s["kappa"] if s["kappa"] is not None else ""),
                         _num(s["spearman"]), _num(s["human_pass_rate"]), _num(s["judge_pass_rate"])]))
    slices = table([Column("slice"), Column("labels", numeric=True), Column("accuracy", numeric=True),
                    Column(f"kappa [{level:.0%} CI]", numeric=True), Column("spearman", numeric=True),
                    Column("people pass", numeric=True), Column("judge pass", numeric=True)],
                   rows, sortable=True)
    overall = judge["slices"][0]
    disagreements = [Row([esc(d["item_id"]), " ".join(badge(t, "tag") for t in d["tags"]), esc(d["input"]),
                          esc(d["output"]), esc(d["human"]), f"{esc(d['judge'])} ({d['judge_score']:.2f})",
                          esc(d["judge_detail"])], tags=tuple(d["tags"]))
                     for d in judge["disagreements"]]
    body = (definition_list([("judge", j["name"]), ("fingerprint", j["fingerprint"]),
                             ("judge model", j["model_fingerprint"]), ("rubric", j["rubric_hash"]),
                             ("parameters", str(j["params"])), ("labelled answers", str(judge["answers"])),
                             ("judge calls", f"{judge['calls']['called']} made, {judge['calls']['cached']} cached")])
            + "<h3>Agreement per slice</h3>" + slices
            + "<h3>Confusion matrix (all labels)</h3>" + _confusion(overall["confusion"])
            + f"<h3>Disagreements ({judge['n_disagreements']}, first {len(disagreements)} listed)</h3>"
            + table([Column("answer"), Column("tags"), Column("question", wide=True), Column("answer text", wide=True),
                     Column("people"), Column("judge"), Column("judge's reason", wide=True)], disagreements))
    return Section(f"judge-{judge['metric']}", judge["metric"], body)


def _history_section(rows: list[dict]) -> Section:
    body = table([Column("calibrated"), Column("metric"), Column("fingerprint"), Column("slice"),
                  Column("labels", numeric=True), Column("kappa", numeric=True), Column("kappa CI")],
                 [Row([esc(r["calibrated_at"][:19]), esc(r["metric"]), esc(r["fingerprint"]),
                       "all" if r["slice"] == "*" else esc(r["slice"]), str(r["n_labels"]), _num(r["kappa"]),
                       f"[{_num(r['kappa_low'])[0]}, {_num(r['kappa_high'])[0]}]"]) for r in rows], sortable=True)
    return Section("history", "History", body)


@page_for("judges_calibrate")
def calibration_page(result: dict, **_context) -> Page:
    level = result["bootstrap"]["level"]
    worst = min((s["kappa"] for j in result["judges"] for s in j["slices"] if s["kappa"] is not None), default=None)
    lead = (f"{len(result['judges'])} judge(s) against human labels; lowest kappa on any slice "
            f"{'-' if worst is None else f'{worst:.3f}'}. The gate's judge_calibrated rule reads these figures.")
    return Page(title=f"Judge calibration {result['calibration_id']}", status=None,
                heading="Judge calibration", lead=esc(lead),
                provenance=[("calibration", result["calibration_id"]), ("calibrated at", result["calibrated_at"]),
                            ("git commit", result.get("git_commit") or "-"),
                            ("bootstrap", f"{result['bootstrap']['resamples']} resamples, seed "
                                          f"{result['bootstrap']['seed']}, level {level:g}"),
                            ("store", result["store"])],
                sections=[_judge_section(j, level) for j in result["judges"]] + [_history_section(result["history"])])
