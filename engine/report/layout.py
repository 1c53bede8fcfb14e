"""Terminal tables laid out for the width there is.

`fit(table)` wraps a rich Table so that it renders one of three ways, decided at render time from the width
available (so it also works inside a Panel):

* **as is**, when its natural width fits;
* **wrapped**, on a wide terminal (>= WIDE columns) when every column can keep its longest word whole: long
  cells wrap at word boundaries, nothing is cut to `…`;
* **vertical** otherwise (CI logs, pipes, 80-column terminals): one block per row, its first cell as a heading
  and the other cells as `column: value` pairs flowed over as many lines as they need. A value is never split.

Rich's own fallback (shrinking every column and cutting cells to `0.…`) made `token_f1` and `tokens` both read
`toke…`; this keeps every name and number readable in full.
"""
from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

WIDE = 100  # below this many columns a table that does not fit is printed vertically
INDENT = 2
SEPARATOR = "   "


class Fitted:
    """A table that picks its layout from the width it is rendered at (see the module docstring)."""

    def __init__(self, table: Table):
        self.table = table

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        unbounded = Measurement.get(console, options.update_width(100_000), self.table)
        if unbounded.maximum <= width:
            yield self.table
        elif console.width >= WIDE and unbounded.minimum <= width:
            for column in self.table.columns:
                column.overflow = "fold"
                column.no_wrap = False
            yield self.table
        else:
            yield from vertical(console, self.table, width)


def fit(table: Table) -> Fitted:
    return Fitted(table)


def _text(console: Console, cell) -> Text:
    if isinstance(cell, Text):
        return cell.copy()
    if isinstance(cell, str):
        return console.render_str(cell)
    return Text(str(cell))


def _header(column) -> str:
    header = column.header
    return header.plain if isinstance(header, Text) else str(header)


def vertical(console: Console, table: Table, width: int) -> list[Text]:
    """One block per row: the first cell on its own line, then `header: value` pairs packed into lines of
    `width` (a pair longer than a line gets lines of its own, wrapped at word boundaries)."""
    lines: list[Text] = []
    if table.title:
        title = _text(console, table.title)
        title.stylize("bold")
        lines.append(title)
    columns = table.columns
    cells = [list(c.cells) for c in columns]
    headers = [_header(c) for c in columns]
    for row in range(table.row_count):
        heading = _text(console, cells[0][row])
        if headers[0] and heading.plain.strip() and len(columns) > 1 and not _is_label(headers[0]):
            heading = Text.assemble((f"{headers[0]}: ", "dim"), heading)
        heading.stylize("bold")
        lines.append(heading)
        pairs = []
        for col in range(1, len(columns)):
            value = _text(console, cells[col][row])
            if not value.plain.strip():
                continue
            pairs.append(Text.assemble((f"{headers[col]}: ", "dim"), value))
        lines.extend(_pack(console, pairs, width))
    if table.caption:
        lines.append(_text(console, table.caption))
    return lines


def _is_label(header: str) -> bool:
    """Headers whose first-column values name themselves (a metric, a rule): shown without `header:`."""
    return header.lower() in {"metric", "rule", "kpi", "policy", "class", "file", "#", "name", "case"}


def _pack(console: Console, pairs: list[Text], width: int) -> list[Text]:
    room = max(width - INDENT, 20)
    out: list[Text] = []
    line = Text()
    for pair in pairs:
        size = cell_len(pair.plain)
        if size > room:  # a long value (a message): its own lines, wrapped between words
            if line.plain:
                out.append(Text(" " * INDENT) + line)
                line = Text()
            for wrapped in pair.wrap(console, room, overflow="fold"):
                out.append(Text(" " * INDENT) + wrapped)
            continue
        if line.plain and cell_len(line.plain) + len(SEPARATOR) + size > room:
            out.append(Text(" " * INDENT) + line)
            line = Text()
        if line.plain:
            line.append(SEPARATOR)
        line.append_text(pair)
    if line.plain:
        out.append(Text(" " * INDENT) + line)
    return out
