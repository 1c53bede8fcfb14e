"""Rich terminal rendering of command results. Tables go through `layout.fit`: readable at any width."""
from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from engine.console import console
from engine.report.layout import fit

ERROR_MESSAGES_SHOWN = 5


def _fmt(value: float | None, aggregate: str) -> str:
    """Three decimals for means and rates; four significant digits for other aggregates (a p95 latency of
    0.013 ms or 1,234.5 ms). A tiny non-zero mean (a cost per case of 0.00029) keeps three significant digits
    instead of printing as 0.000."""
    if value is None:
        return "-"
    if aggregate in ("mean", "pass_rate"):
        return f"{value:.3g}" if value != 0 and abs(value) < 0.001 else f"{value:.3f}"
    return f"{value:,.1f}" if abs(value) >= 1000 else f"{value:.4g}"


def print_model_errors(model: str, messages: list[dict], shown: int = ERROR_MESSAGES_SHOWN) -> None:
    """The distinct error messages of a model's errored calls, most frequent first, with a few case ids each."""
    if not messages:
        return
    total = sum(m["count"] for m in messages)
    console.print(f"[bold red]{model}: {total} errored case(s)[/], {len(messages)} distinct error message(s)"
                  + (f", the {shown} most frequent:" if len(messages) > shown else ":"), highlight=False)
    for m in messages[:shown]:
        more = ", ..." if m["count"] > len(m["case_ids"]) else ""
        message = " ".join(m["message"].split())
        message = message if len(message) <= 300 else message[:299] + "…"
        console.print(f"  {m['count']} x {escape(message)}  [dim](case {', '.join(m['case_ids'])}{more})[/]",
                      highlight=False)
    if len(messages) > shown:
        console.print(f"  ... {len(messages) - shown} more message(s) in the JSON result (out=PATH, "
                      "`error_messages`)", highlight=False)


def print_evaluation(run) -> None:
    calls = run.calls
    console.print(f"[bold]{run.model_name}[/] (fingerprint {run.model_fingerprint}) run {run.run_id}: "
                  f"{calls.needed} outputs needed, {calls.cached} cached, {calls.called} model calls, "
                  f"{calls.errors} errors")
    print_model_errors(run.model_name, getattr(run, "error_messages", []))
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
        console.print(fit(table))
    for metric, reports in getattr(run, "reports", {}).get("classification", {}).items():
        for report in reports:
            print_classification(metric, report)
    for metric, reports in getattr(run, "reports", {}).get("regression", {}).items():
        for r in reports:
            console.print(f"[bold]{metric}[/] on {r['dataset']}: n {r['n']} ({r['n_predicted']} with a number), "
                          f"MAE {_fmt(r['mae'], 'mean')}, RMSE {_fmt(r['rmse'], 'mean')}, "
                          f"bias {_fmt(r['bias'], 'mean')}")


def print_classification(metric: str, report: dict) -> None:
    """Per-class precision/recall/F1 and the confusion matrix of one dataset (a `classification` metric)."""
    table = Table(title=f"{metric} on {report['dataset']}: accuracy {_fmt(report['accuracy'], 'mean')}, "
                        f"macro-F1 {_fmt(report['macro_f1'], 'mean')} (n {report['n']})", title_justify="left")
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for c in report.get("per_class") or []:
        table.add_row(escape(c["label"]), _fmt(c["precision"], "mean"), _fmt(c["recall"], "mean"), _fmt(c["f1"], "mean"),
                      str(c["support"]))
    console.print(fit(table))
    cells = report.get("confusion") or []
    predicted = sorted({c["predicted"] for c in cells})
    matrix = Table(title=f"{metric} on {report['dataset']}: confusion (rows expected, columns predicted)",
                   title_justify="left")
    matrix.add_column("expected \\ predicted")
    for label in predicted:
        matrix.add_column(escape(label), justify="right")
    for expected in sorted({c["expected"] for c in cells}):
        counts = {c["predicted"]: c["n"] for c in cells if c["expected"] == expected}
        matrix.add_row(escape(expected), *[str(counts.get(label, 0)) for label in predicted])
    console.print(fit(matrix))
