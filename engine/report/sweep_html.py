"""The HTML page of a gate sweep: the leaderboard (schemas/leaderboard.schema.json), plus what the jobs' gate
results add (fingerprints, provenance, the main metric's value with its confidence interval)."""
from __future__ import annotations

from engine.report.html import Column, Page, Row, Section, badge, esc, page_for, table
from engine.report.svg import PALETTE, VERDICT_COLOUR, Point, scatter, signed

VERDICT_BADGE = {"PASS": "ok", "BLOCKED": "bad", "ERROR": "warn"}


def parse_override(override: str) -> tuple[str, str]:
    """`model@challenger=bm25_fast` -> (`challenger`, `bm25_fast`); `+a.b=3` -> (`a.b`, `3`)."""
    key, _, value = override.partition("=")
    key = key.lstrip("+~")
    return key.split("@", 1)[1] if key.startswith("model@") else key, value


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def main_delta_key(leaderboard: dict) -> str | None:
    metric = leaderboard.get("main_metric")
    keys = sorted({k for e in leaderboard["entries"] for k in e["deltas"]})
    return next((k for k in keys if k.split(".", 1)[-1] == metric), None)


def _overall(result: dict | None, metric: str | None, side: str) -> dict | None:
    for cell in ((result or {}).get("per_tag") or {}).get("rows", []):
        if cell["metric"] == metric and cell["tag"] is None and cell["side"] == side:
            return cell
    return None


def leaderboard_section(leaderboard: dict, results: dict[int, dict]) -> Section:
    main_key = main_delta_key(leaderboard)
    keys = sorted({k for e in leaderboard["entries"] for k in e["deltas"]}, key=lambda k: (k != main_key, k))
    # What decides first (verdict, the rules that failed), then who, then the deltas: with many metrics the
    # delta columns scroll off to the right, never the verdict.
    columns = [Column("rank", numeric=True), Column("verdict"), Column("failed rules / error"), Column("challenger"),
               Column("swept"), *[Column(f"Δ {k}" + (" (main)" if k == main_key else ""), numeric=True) for k in keys],
               Column("job", numeric=True)]
    rows = []
    for e in leaderboard["entries"]:
        fingerprint = ((results.get(e["job"]) or {}).get("challenger") or {}).get("fingerprint")
        challenger = f"<code>{esc(e['challenger'] or '-')}</code>" + (
            f'<br><span class="muted">{esc(fingerprint)}</span>' if fingerprint else "")
        deltas = []
        for k in keys:
            v = e["deltas"].get(k)
            cls = "" if v is None or v == 0 else ("pos" if v > 0 else "neg")
            deltas.append((f'<span class="{cls}">{signed(v)}</span>',
                           "" if v is None else v))
        failed = ", ".join(e["failed_rules"]) or e.get("error") or ""
        rows.append(Row([(str(e["rank"]), e["rank"]), (badge(e["verdict"], VERDICT_BADGE[e["verdict"]]), e["verdict"]),
                         esc(failed) if failed else '<span class="muted">none</span>', challenger,
                         " ".join(f"<code>{esc(o)}</code>" for o in e["swept"]) or '<span class="muted">-</span>',
                         *deltas, (str(e["job"]), e["job"])]))
    lead = (f"<p>{len(rows)} challengers, ranked PASS first, then by the change in the main metric "
            f"(<code>{esc(leaderboard.get('main_metric'))}</code>). Δ is challenger minus baseline mean. "
            "Click a column header to sort.</p>")
    return Section("leaderboard", "Leaderboard",
                   lead + table(columns, rows, table_id="leaderboard-table", sortable=True))


def parameter_charts(leaderboard: dict, results: dict[int, dict]) -> Section | None:
    """One chart per swept parameter: its value against the main metric (the challenger's mean with its 95% CI
    when the jobs' results carry it, else the leaderboard's delta)."""
    entries = [e for e in leaderboard["entries"] if e["verdict"] != "ERROR"]
    metric, main_key = leaderboard.get("main_metric"), main_delta_key(leaderboard)
    swept = [dict(parse_override(o) for o in e["swept"]) for e in entries]
    params = sorted({k for s in swept for k in s if len({x.get(k) for x in swept}) > 1})
    if not entries or not params or metric is None:
        return None
    absolute = all(_overall(results.get(e["job"]), metric, "challenger") for e in entries)
    reference = _overall(results.get(entries[0]["job"]), metric, "baseline") if absolute else None
    parts = []
    for param in params:
        numeric = all(_number(s.get(param, "")) is not None for s in swept)
        others = [k for k in params if k != param]
        series = {tuple(s.get(k) for k in others) for s in swept}
        colours = {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(sorted(series, key=str))}
        points = []
        for e, s in zip(entries, swept):
            x = _number(s[param]) if numeric and param in s else s.get(param, "(default)")
            colour = colours[tuple(s.get(k) for k in others)] if others else VERDICT_COLOUR[e["verdict"]]
            label = f"#{e['rank']} {e['challenger']} {' '.join(e['swept'])} ({e['verdict']})"
            if absolute:
                cell = _overall(results[e["job"]], metric, "challenger")
                points.append(Point(x, cell["mean"], cell["ci_low"], cell["ci_high"], colour, label))
            elif e["deltas"].get(main_key) is not None:
                points.append(Point(x, e["deltas"][main_key], colour=colour, label=label))
        if not points:
            continue
        y_label = f"{metric} (challenger mean, 95% CI)" if absolute else f"Δ {main_key}"
        parts.append(f"<h3>{esc(param)}</h3>" + scatter(
            f"{param} against {metric}", points, param, y_label,
            reference=reference["mean"] if reference else None, reference_label="baseline"))
        if others:
            legend = " ".join(f'<span style="color:{c}">●</span> '
                              + esc(", ".join(f"{k}={v}" for k, v in zip(others, key))) for key, c in colours.items())
        else:
            legend = " ".join(f'<span style="color:{VERDICT_COLOUR[v]}">●</span> {v}' for v in ("PASS", "BLOCKED"))
        parts.append(f'<p class="muted">{legend}</p>')
    if not parts:
        return None
    return Section("parameters", "Swept parameters against the main metric", "".join(parts))


def provenance(leaderboard: dict, results: dict[int, dict]) -> list[tuple[str, str]]:
    def distinct(values) -> str:
        seen = sorted({str(v) for v in values if v})
        return ", ".join(seen) if seen else "(unknown)"

    gates = list(results.values())
    counts = {v: sum(1 for e in leaderboard["entries"] if e["verdict"] == v) for v in ("PASS", "BLOCKED", "ERROR")}
    items = [("sweep", leaderboard["sweep_dir"]), ("main metric", leaderboard.get("main_metric") or "(none)"),
             ("jobs", ", ".join(f"{n} {v}" for v, n in counts.items() if n))]
    if gates:
        times = sorted(g["decided_at"] for g in gates)
        items += [("gate config hash", distinct(g["gate_config_hash"] for g in gates)),
                  ("metrics hash", distinct(g["metrics_hash"] for g in gates)),
                  ("git commit", distinct(g.get("git_commit") for g in gates)
                   if any(g.get("git_commit") for g in gates) else "(not a git checkout)"),
                  ("dataset versions", distinct(f"{k} @ {v}" for g in gates for k, v in g["dataset_versions"].items())),
                  ("baseline", distinct(f"{g['baseline']['name']} · fingerprint {g['baseline']['fingerprint']} · "
                                        f"{g['baseline']['source']}" for g in gates)),
                  ("decided", f"{times[0]} to {times[-1]}")]
    return items


@page_for("gate_sweep")
def sweep_page(leaderboard: dict, job_results: list[dict] | None = None) -> Page:
    """`job_results`: the jobs' job_result.json records ({"job", "overrides", "result" | "error"}), optional."""
    results = {r["job"]: r["result"] for r in job_results or [] if "result" in r}
    entries = leaderboard["entries"]
    passing = [e for e in entries if e["verdict"] == "PASS"]
    best = passing[0] if passing else None
    heading = (f'Sweep · <span class="verdict">{len(passing)} of {len(entries)} PASS</span>' +
               (f" · best: <code>{esc(' '.join(best['swept']) or best['challenger'])}</code>" if best else ""))
    lead = "every challenger gated against the baseline; the leaderboard is plain HTML (sortable with JavaScript)"
    sections = [s for s in (leaderboard_section(leaderboard, results), parameter_charts(leaderboard, results)) if s]
    return Page(f"Flywheel sweep: {len(passing)} of {len(entries)} PASS", "pass" if passing else "fail", heading,
                lead, provenance(leaderboard, results), sections)
