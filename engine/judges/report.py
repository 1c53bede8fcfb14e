"""`flywheel judges` in the terminal: per judge, one row per slice (all labels, then each tag)."""
from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from engine.console import console


def _num(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def kappa_text(s: dict) -> str:
    ci = s["kappa_ci"]
    interval = f" [{_num(ci['low'])}, {_num(ci['high'])}]" if ci["low"] is not None else ""
    return _num(s["kappa"]) + interval


def print_calibration(result: dict) -> None:
    for imp in result.get("imports") or []:
        print_import(imp)
    level = result["bootstrap"]["level"]
    for judge in result["judges"]:
        j = judge["judge"]
        calls = judge["calls"]
        t = Table(title=f"{judge['metric']}: judge {j['name']} (fingerprint {j['fingerprint']}: model "
                        f"{j['model_fingerprint']}, rubric {j['rubric_hash']})", title_justify="left",
                  caption="P/F: people's verdict, then the judge's (PF: people pass, judge fails)",
                  caption_justify="left")
        t.add_column("slice", overflow="fold")
        for column in ("n", "acc", "kappa", f"{level:.0%} CI", "rho", "PP", "PF", "FP", "FF"):
            t.add_column(column, justify="right", no_wrap=True)
        for s in judge["slices"]:
            c = s["confusion"]
            ci = s["kappa_ci"]
            t.add_row("all" if s["slice"] == "*" else escape(s["slice"]), str(s["n_labels"]), _num(s["accuracy"], 2),
                      _num(s["kappa"], 2), f"{_num(ci['low'], 2)}..{_num(ci['high'], 2)}", _num(s["spearman"], 2),
                      str(c["human_pass"]["judge_pass"]), str(c["human_pass"]["judge_fail"]),
                      str(c["human_fail"]["judge_pass"]), str(c["human_fail"]["judge_fail"]))
        console.print(t)
        console.print(f"{judge['answers']} labelled answers ({judge['labels']} labels); judge calls: "
                      f"{calls['called']} made, {calls['cached']} from the cache, {calls['errors']} errors; "
                      f"{judge['judge_unparseable']} answers unparseable (counted as fail); "
                      f"{judge['n_disagreements']} disagreements with people")
        for d in judge["disagreements"][:5]:
            console.print(f"  [dim]{escape(d['item_id'])} ({', '.join(d['tags'])}): people {d['human']}, judge "
                          f"{d['judge']} ({_num(d['judge_score'], 2)}): {escape(str(d['output'])[:90])}[/]")
    if result.get("unlabelled_metrics"):
        console.print(f"no labels yet for: {', '.join(result['unlabelled_metrics'])}")
    console.print(f"calibration {result['calibration_id']} stored; bootstrap {result['bootstrap']['resamples']} "
                  f"resamples, seed {result['bootstrap']['seed']}")


def print_import(imp: dict) -> None:
    console.print(f"labels {imp['path']}: {imp['read']} read = {imp['inserted']} new + {imp['updated']} changed + "
                  f"{imp['unchanged']} unchanged + {imp['pending']} pending (batch {imp['batch_id']})")


def print_history(rows: list[dict]) -> None:
    if not rows:
        console.print("no calibrations stored yet: run `flywheel judges calibrate`")
        return
    t = Table(title="Judge calibrations (newest first)", title_justify="left")
    for column in ("calibrated", "metric", "fingerprint", "slice", "n", "acc", "kappa", "CI", "rho"):
        t.add_column(column, overflow="fold")
    for r in rows:
        t.add_row(r["calibrated_at"][:16].replace("T", " "), r["metric"], r["fingerprint"],
                  "all" if r["slice"] == "*" else r["slice"], str(r["n_labels"]), _num(r["accuracy"], 2),
                  _num(r["kappa"], 2), f"{_num(r['kappa_low'], 2)}..{_num(r['kappa_high'], 2)}", _num(r["spearman"], 2))
    console.print(t)


def print_score(result: dict) -> None:
    console.print(f"{result['sampled']} production traces sampled (rate {result['rate']:g})")
    for j in result["judges"]:
        console.print(f"  {j['metric']} (judge {j['fingerprint']}): {j['graded']} graded, {j['passed']} pass; "
                      f"{j['calls']['called']} judge calls, {j['calls']['cached']} cached")
