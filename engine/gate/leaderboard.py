"""After a sweep: merge every job's Parquet into the main store (one writer), rank the challengers."""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from rich.table import Table

from engine.console import console
from engine.exit_codes import writing_output
from engine.outputs import output_path, write_text
from engine.redaction import scrub_value
from engine.report.html import report_path, write_html
from engine.report.layout import fit
from engine.schemas import all_errors, validator
from engine.executor import execute
from engine.gate.spec import GateSpec
from engine.journal import running_plan
from engine.sql import Plan, Statement, statement
from engine.store import Store

# A dataset version's agent tasks travel with its cases (engine/agents/cases.py).
AGENT_TABLES = ("agent_cases", "agent_expected_calls", "agent_argument_checks")
# Tables a job exports, in merge order; outputs may replace an earlier errored row, the rest are append-only.
EXPORTED = ("dataset_versions", "cases", *AGENT_TABLES, "runs", "run_cases", "outputs", "trajectory_steps", "scores",
            "gate_decisions")


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


DELTAS = statement("leaderboard:deltas", """
SELECT s.dataset, s.metric,
       avg(s.value) FILTER (WHERE s.run_id = $challenger_run) AS challenger,
       avg(s.value) FILTER (WHERE s.run_id = $baseline_run) AS baseline
FROM scores AS s WHERE s.run_id IN ($baseline_run, $challenger_run)
GROUP BY s.dataset, s.metric ORDER BY s.dataset, s.metric""", "each finished job's metric deltas",
                   "for each finished job")


def _merge_statements() -> dict[str, tuple[Statement, ...]]:
    """Per exported table, what merges one job's Parquet file ($part) into the main store: outputs may replace an
    earlier errored row (and a replaced output's old trajectory, which may have had more steps, goes first); the
    rest is append-only."""
    out = {}
    for table in EXPORTED:
        verb = "INSERT OR REPLACE" if table in ("outputs", "trajectory_steps") else "INSERT OR IGNORE"
        steps = []
        if table == "trajectory_steps":
            steps.append(statement("merge:trajectory_steps:replaced", "DELETE FROM trajectory_steps WHERE "
                                   "(model_fingerprint, output_key, repeat) IN (SELECT (model_fingerprint, output_key, "
                                   "repeat) FROM read_parquet($part))", "the replaced outputs' old steps",
                                   "for each finished job's file"))
        steps.append(statement(f"merge:{table}", f"{verb} INTO {table} SELECT * FROM read_parquet($part)",
                               f"a job's {table}", "for each finished job's file"))
        out[table] = tuple(steps)
    return out


MERGE = _merge_statements()
PLAN = Plan("gate_sweep", (*(st for steps in MERGE.values() for st in steps), DELTAS))


def _job_records(sweep_dir: Path) -> list[tuple[Path, dict]]:
    """Every job of the sweep with its record; a job that left no record (its process was killed) is an error."""
    out = []
    for job_dir in sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()),
                          key=lambda p: int(p.name)):
        result_file = job_dir / "job_result.json"
        if result_file.exists():
            out.append((job_dir, json.loads(result_file.read_text(encoding="utf-8"))))
        else:
            overrides_file = job_dir / ".hydra" / "overrides.yaml"
            overrides = yaml.safe_load(overrides_file.read_text(encoding="utf-8")) if overrides_file.exists() else []
            out.append((job_dir, {"job": int(job_dir.name), "overrides": [o for o in overrides or []
                                                                          if not o.startswith("hydra.")],
                                  "exit_code": 3, "error": "the job ended without a result (its process died)"}))
    return out


def merge_and_rank(sweep_dir: Path, main_store: Path, cfg: dict, project_dir: Path) -> int:
    jobs = _job_records(sweep_dir)
    records = [record for _, record in jobs]
    entries = []
    running_plan(PLAN)
    with Store.open(main_store) as store:
        with store.transaction() as con:
            for job_dir, record in jobs:
                if "result" not in record:
                    continue  # a failed job's Parquet (if any) may be partial: only finished jobs are merged
                for table in EXPORTED:
                    part = job_dir / f"{table}.parquet"
                    if part.exists():
                        for st in MERGE[table]:
                            execute(con, st, {"part": str(part)})
        for record in records:
            entry = {"job": record["job"], "overrides": record["overrides"]}
            if "error" in record:
                entry.update(verdict="ERROR", error=record["error"], challenger=None, deltas={}, failed_rules=[])
            else:
                result = record["result"]
                rows = [tuple(r.values()) for r in execute(store.con, DELTAS, {
                    "baseline_run": result["baseline"]["run_id"], "challenger_run": result["challenger"]["run_id"]})]
                entry.update(verdict=result["verdict"], challenger=result["challenger"]["name"],
                             baseline=result["baseline"]["name"], decision_id=result["decision_id"],
                             failed_rules=result["blocking_failures"],
                             deltas={f"{d}.{m}": (c - b) if c is not None and b is not None else None
                                     for d, m, c, b in rows})
            entries.append(entry)
    varying = _varying_overrides(entries)
    for entry in entries:
        entry["swept"] = [o for o in entry["overrides"] if o in varying]
    exit_code, outcome = sweep_outcome(records)
    leaderboard = {"command": "gate_sweep", "sweep_dir": str(sweep_dir), "main_metric": main_metric(cfg),
                   "entries": rank(entries, main_metric(cfg)), "outcome": outcome, "exit_code": exit_code}
    problems = all_errors(validator("leaderboard"), leaderboard)
    assert not problems, f"leaderboard does not match its schema: {problems[:3]}"
    write_text(sweep_dir / "leaderboard.json", json.dumps(scrub_value(leaderboard), indent=2))
    print_leaderboard(leaderboard, cfg)
    if cfg.get("out"):
        out = output_path(cfg["out"], project_dir)
        with writing_output("out", cfg["out"], out, exit_code):
            write_text(out, json.dumps(scrub_value(leaderboard), indent=2) + "\n")
        console.print(f"result written to {out}")
    if report_path(cfg):
        report = output_path(report_path(cfg), project_dir)
        with writing_output("report", report_path(cfg), report, exit_code):
            report = write_html(report, leaderboard, job_results=records)
        console.print(f"report written to {report}")
    return exit_code


def sweep_outcome(records: list[dict]) -> tuple[int, str]:
    """0 when at least one challenger passes, 1 when none does. When none passes and a job failed, the sweep
    cannot say that none would have: the failure's exit code (3 before 2)."""
    passed = sum(1 for r in records if (r.get("result") or {}).get("verdict") == "PASS")
    failed = [r for r in records if "error" in r]
    n = len(records)
    if passed:
        tail = f"; {len(failed)} job(s) failed" if failed else ""
        return 0, f"{passed} of {n} challenger(s) passed the gate{tail}"
    if failed:
        code = max(int(r.get("exit_code", 3)) for r in failed)
        return code, (f"no challenger passed and {len(failed)} of {n} job(s) failed "
                      f"({'internal error or store busy' if code == 3 else 'config or input error'})")
    return 1, f"no challenger passed the gate ({n} BLOCKED)"


def _varying_overrides(entries: list[dict]) -> set[str]:
    """The overrides that differ between jobs: what the sweep varied (the rest is shared context)."""
    common = set.intersection(*(set(e["overrides"]) for e in entries)) if entries else set()
    return {o for e in entries for o in e["overrides"]} - common


def main_metric(cfg: dict) -> str | None:
    """The metric of the gate's first improvement rule: what the sweep is trying to raise."""
    for rule in GateSpec.of(cfg.get("gate")).rules.values():
        if rule.kind == "improvement":
            return rule.metric
    return next(iter(cfg.get("metrics") or {}), None)


def rank(entries: list[dict], metric: str | None) -> list[dict]:
    """PASS first, then by the main metric's delta (largest first), then by job number."""
    def key(e):
        main = max((v for k, v in e["deltas"].items() if k.split(".", 1)[1] == metric and v is not None),
                   default=float("-inf"))
        return (e["verdict"] != "PASS", -main, e["job"])
    return [dict(e, rank=i + 1) for i, e in enumerate(sorted(entries, key=key))]


def _shown_columns(entries: list[dict], cfg: dict, main: str | None, limit: int = 4) -> list[str]:
    """The deltas worth a column: the main metric first, then the metrics the gate's rules use, on the datasets
    they scope (every delta stays in the JSON and HTML leaderboards)."""
    present = sorted({k for e in entries for k in e["deltas"]})
    wanted: list[str] = []
    rules = list(GateSpec.of(cfg.get("gate")).rules.values())
    rules.sort(key=lambda r: r.metric != main)
    for rule in rules:
        for key in present:
            dataset, metric = key.split(".", 1)
            scoped = not rule.datasets or dataset in rule.datasets
            if metric == rule.metric and scoped and key not in wanted:
                wanted.append(key)
    return (wanted or present)[:limit]


def print_leaderboard(leaderboard: dict, cfg: dict) -> None:
    entries = leaderboard["entries"]
    columns = _shown_columns(entries, cfg, leaderboard.get("main_metric"))
    table = Table(title=f"Sweep leaderboard ({len(entries)} challengers)", title_justify="left")
    for col in ("#", "challenger", "swept", "verdict", *[f"Δ {c}" for c in columns], "failed rules"):
        table.add_column(col, overflow="fold")
    for e in entries:
        style = "green" if e["verdict"] == "PASS" else "red"
        table.add_row(str(e["rank"]), e["challenger"] or "-", " ".join(o.replace("model@", "") for o in e["swept"]), f"[{style}]{e['verdict']}[/]",
                      *[("-" if e["deltas"].get(c) is None else f"{e['deltas'][c]:+.3f}") for c in columns],
                      ", ".join(e["failed_rules"]) or (e.get("error") or ""))
    console.print(fit(table))
    style = "bold green" if leaderboard["exit_code"] == 0 else "bold red"
    console.print(f"[{style}]{leaderboard['outcome']}[/] (exit {leaderboard['exit_code']})")
    console.print(f"leaderboard written to {leaderboard['sweep_dir']}/leaderboard.json")
