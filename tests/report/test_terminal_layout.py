"""Terminal tables at the width there is: as is when they fit, wrapped on wide terminals, vertical under 100
columns. Every name and number stays whole (rich's own fallback printed `0.…` and `toke…`)."""
from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from engine.report.layout import fit
from engine.report.terminal import _fmt

TAGS = ["account", "billing", "integrations", "policy", "scheduling", "troubleshooting"]
METRICS = {"accuracy": 0.498, "token_f1": 0.2114, "tokens": 144.805, "cost": 0.000288, "groundedness": 0.812}


def metric_table() -> Table:
    table = Table(title="support_qa (ffd0b60b09ca49b8)", title_justify="left")
    for col in ("metric", "aggregate", "all", "pass", *TAGS):
        table.add_column(col, justify="left" if col in ("metric", "aggregate") else "right")
    for name, value in METRICS.items():
        table.add_row(name, "mean", _fmt(value, "mean"), "1.000", *[_fmt(value * 1.01, "mean") for _ in TAGS])
    return table


def render(renderable, width: int) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=width, soft_wrap=True, color_system=None).print(renderable)
    return buffer.getvalue()


def blocks(text: str) -> dict[str, str]:
    """Vertical layout: heading line (no indentation) -> its indented lines."""
    out, current = {}, None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            current = line.strip()
            out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return out


def test_a_table_too_wide_for_80_columns_goes_vertical_with_every_value_whole():
    text = render(fit(metric_table()), 80)
    assert "…" not in text
    assert all(len(line) <= 80 for line in text.splitlines())
    got = blocks(text)
    for name, value in METRICS.items():
        assert name in got, text  # token_f1 and tokens no longer both read `toke…`
        body = " ".join(got[name].split())
        assert f"all: {_fmt(value, 'mean')}" in body and "pass: 1.000" in body
        for tag in TAGS:
            assert f"{tag}: {_fmt(value * 1.01, 'mean')}" in body, body


def test_the_unfitted_table_is_what_the_test_catches():
    """The same table printed by rich as is at 80 columns cuts names and numbers: the check above would fail."""
    text = render(metric_table(), 80)
    assert "…" in text


def test_a_table_that_fits_is_left_alone_and_a_wide_terminal_wraps_instead_of_cutting():
    small = Table("metric", "mean")
    small.add_row("accuracy", "0.498")
    assert render(fit(small), 80) == render(small, 80)
    long_text = Table("rule", "detail")
    long_text.add_row("accuracy_improves", "0.6000 -> 0.8000 (delta +0.2000) over 5 paired cases, " * 3)
    wide = render(fit(long_text), 110)
    assert "┃" in wide or "│" in wide  # still a table
    assert "…" not in wide and "accuracy_improves" in wide
    assert all(len(line) <= 110 for line in wide.splitlines())


def test_inside_a_panel_the_layout_uses_the_panels_width():
    text = render(Panel(fit(metric_table()), title="PASS"), 80)
    assert "…" not in text and all(len(line) <= 80 for line in text.splitlines())
    assert re.search(r"token_f1\s*│", text) and re.search(r"tokens\s*│", text)


@pytest.mark.parametrize("value,aggregate,shown", [(0.000288, "mean", "0.000288"), (0.4981, "mean", "0.498"),
                                                   (0.0130, "p95", "0.013"), (812.34, "p95", "812.3"),
                                                   (12345.6, "p95", "12,345.6"), (0.0, "mean", "0.000")])
def test_numbers_keep_their_digits(value, aggregate, shown):
    assert _fmt(value, aggregate) == shown


def test_evaluate_at_80_columns_prints_every_metric_and_value_of_the_bundled_suite(cli, tmp_path):
    r = cli("evaluate", "dataset=[support_qa]", "out=result.json", cwd=tmp_path, env={"COLUMNS": "80"})
    assert r.code == 0, r
    result = r.json
    assert "…" not in r.stdout
    got = blocks(r.stdout)
    names = {row["metric"] for row in result["summary"]}
    assert {"token_f1", "tokens", "cost"} <= names
    for row in result["summary"]:
        aggregate = result["aggregates"][row["metric"]]
        body = " ".join(got[row["metric"]].split())
        label = "all" if row["tag"] is None else row["tag"]
        assert f"{label}: {_fmt(row[aggregate], aggregate)}" in body, (row, body)
        if row["tag"] is None:
            assert f"pass: {row['pass_rate']:.3f}" in body
    cost = next(row for row in result["summary"] if row["metric"] == "cost" and row["tag"] is None)
    assert 0 < cost["mean"] < 0.001 and _fmt(cost["mean"], "mean") != "0.000"
