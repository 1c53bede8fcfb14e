"""Rich terminal rendering of command results."""
from __future__ import annotations

from rich.table import Table

from engine.console import console


def _fmt(value: float | None, aggregate: str) -> str:
    if value is None:
        return "-"
    if aggregate in ("mean", "pass_rate"):
        return f"{value:.3f}"
    return f"{value:,.1f}"


def print_evaluation(run) -> None:
    calls = run.calls
    console.print(f"[bold]{run.model_name}[/] (fingerprint {run.model_fingerprint}) run {run.run_id}: "
                  f"{calls.needed} outputs needed, {calls.cached} cached, {calls.called} model calls, "
                  f"{calls.errors} errors")
    by_dataset: dict[str, list[dict]] = {}
    for row in run.summary:
        by_dataset.setdefault(row["dataset"], []).append(row)
    for dataset, rows in by_dataset.items():
        tags = sorted({r["tag"] for r in rows if r["tag"] is not None})
        table = Table(title=f"{dataset} ({run.dataset_versions.get(dataset, '?')})", title_justify="left")
        table.add_column("metric")
        table.add_column("aggregate")
        table.add_column("all", justify="right")
        table.add_column("pass", justify="right")
        for tag in tags:
            table.add_column(tag, justify="right")
        for metric in sorted({r["metric"] for r in rows}):
            agg = run.aggregates.get(metric, "mean")
            overall = next(r for r in rows if r["metric"] == metric and r["tag"] is None)
            per_tag = {r["tag"]: r for r in rows if r["metric"] == metric and r["tag"] is not None}
            table.add_row(metric, agg, _fmt(overall[agg], agg), f"{overall['pass_rate']:.3f}",
                          *[_fmt(per_tag[t][agg], agg) if t in per_tag else "" for t in tags])
        console.print(table)
