"""Hand-written inline SVG charts for the HTML reports: no JavaScript, no fonts or files to fetch.

Each chart is a pure function from plain numbers to an `<svg>` string with a `<title>` and an aria-label, so a
report opens offline and a screen reader can name it. Text is escaped here; callers pass raw strings.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

BASELINE_COLOUR = "#9aa5b1"
CHALLENGER_COLOUR = "#2f6fde"
PALETTE = ("#2f6fde", "#d9480f", "#2b8a3e", "#7048e8", "#c2255c", "#0b7285", "#e67700", "#495057")
VERDICT_COLOUR = {"PASS": "#2b8a3e", "BLOCKED": "#c92a2a", "ERROR": "#868e96"}
ALERT_COLOUR = "#c92a2a"
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


@dataclass(frozen=True)
class Bar:
    """One bar: a value with an optional confidence interval and a note shown after the value."""

    value: float | None
    low: float | None = None
    high: float | None = None
    note: str = ""
    missing: str = "no data"  # shown where a value is None; "" leaves the slot empty (nothing to compare)


@dataclass(frozen=True)
class Point:
    x: float | str
    y: float
    low: float | None = None
    high: float | None = None
    colour: str | None = None
    label: str = ""


def fmt(value: float | None) -> str:
    """Four significant digits; small numbers keep theirs (costs are fractions of a cent)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value == 0:
        return "0"
    return f"{value:.4g}" if abs(value) >= 1e-4 else f"{value:.2e}"


def signed(value: float | None) -> str:
    """A difference, always with its sign."""
    if value is None:
        return "–"
    return ("+" if value >= 0 else "") + fmt(value)


def nice_domain(values: list[float], unit_interval: bool = False) -> tuple[float, float]:
    """A zero-based axis range covering the values, rounded up to a readable number; [0, 1] for rates."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if unit_interval and all(0.0 <= v <= 1.0 for v in finite):
        return 0.0, 1.0
    lo, hi = min([0.0, *finite]), max([0.0, *finite])
    if hi == lo:
        return lo, lo + 1.0

    def nice(v: float) -> float:
        if v == 0:
            return 0.0
        magnitude = 10 ** math.floor(math.log10(abs(v)))
        step = next(s for s in (1, 2, 2.5, 5, 10) if s * magnitude >= abs(v))
        return math.copysign(step * magnitude, v)

    return nice(lo), nice(hi)


def ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    step = (hi - lo) / (count - 1)
    return [lo + i * step for i in range(count)]


def _svg(width: int, height: int, title: str, body: list[str], cls: str) -> str:
    return (f'<svg class="chart {cls}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" {FONT}>'
            f"<title>{escape(title)}</title>" + "".join(body) + "</svg>")


def _whisker(x1: float, x2: float, y: float, colour: str, vertical: bool = False) -> str:
    """A confidence-interval line with end caps (horizontal between x1 and x2 at y, or vertical)."""
    if vertical:
        return (f'<path d="M{y:.1f} {x1:.1f}V{x2:.1f}M{y - 4:.1f} {x1:.1f}H{y + 4:.1f}M{y - 4:.1f} {x2:.1f}'
                f'H{y + 4:.1f}" stroke="{colour}" stroke-width="1.5" fill="none"/>')
    return (f'<path d="M{x1:.1f} {y:.1f}H{x2:.1f}M{x1:.1f} {y - 4:.1f}V{y + 4:.1f}M{x2:.1f} {y - 4:.1f}'
            f'V{y + 4:.1f}" stroke="{colour}" stroke-width="1.5" fill="none"/>')


def grouped_bars(title: str, groups: list[tuple[str, list[Bar]]], series: list[tuple[str, str]],
                 unit_interval: bool = False, width: int = 860, label_width: int | None = None,
                 flagged: set[str] = frozenset(), rule: float | None = None, rule_label: str = "",
                 axis_label: str = "", unit: str = "") -> str:
    """Horizontal bars, one group per label (e.g. a capability tag), one bar per series (baseline,
    challenger), each with its confidence interval as a whisker. Labels in `flagged` are drawn in red; `rule`
    draws a dashed vertical line at that value (a tolerance, a gate rule's bound) labelled above the plot.
    `axis_label` names the value axis (with its unit); `unit` follows each printed value."""
    bar_h, gap, axis_h = 14, 10, 24 + (16 if axis_label else 0)
    top = 28 + (16 if rule is not None and rule_label else 0)
    if label_width is None:  # about 7 px per character at 12 px, within reason
        label_width = min(max([90, *(7 * len(label) + 16 for label, _ in groups)]), 340)
    value_w = 150
    plot_w = width - label_width - value_w
    group_h = len(series) * bar_h + gap
    height = top + len(groups) * group_h + axis_h
    values = [v for _, bars in groups for b in bars for v in (b.value, b.low, b.high) if v is not None]
    lo, hi = nice_domain(values + ([rule] if rule is not None else []), unit_interval)

    def x(v: float) -> float:
        return label_width + (min(max(v, lo), hi) - lo) / (hi - lo) * plot_w

    body = []
    # legend
    lx = label_width
    for name, colour in series:
        body.append(f'<rect x="{lx}" y="6" width="12" height="12" fill="{colour}"/>'
                    f'<text x="{lx + 16}" y="16">{escape(name)}</text>')
        lx += 24 + 7 * len(name)
    if any(b.low is not None for _, bars in groups for b in bars):
        body.append(f'<text x="{lx + 10}" y="16" fill="#555">whiskers: 95% CI</text>')
    # grid and axis
    axis_y = top + len(groups) * group_h
    for t in ticks(lo, hi):
        body.append(f'<line x1="{x(t):.1f}" y1="{top - 4}" x2="{x(t):.1f}" y2="{axis_y}" stroke="#e3e6ea"/>'
                    f'<text x="{x(t):.1f}" y="{axis_y + 14}" text-anchor="middle" fill="#555">{fmt(t)}</text>')
    if lo < 0 < hi:
        body.append(f'<line x1="{x(0):.1f}" y1="{top - 4}" x2="{x(0):.1f}" y2="{axis_y}" stroke="#333"/>')
    if axis_label:
        body.append(f'<text class="axis-label" x="{label_width + plot_w / 2:.1f}" y="{axis_y + 30}" '
                    f'text-anchor="middle" fill="#333">{escape(axis_label)}</text>')
    if rule is not None:
        # the label sits in its own row above the bars, so no bar or value text can cover it
        label = rule_label if rule_label and fmt(rule) in rule_label else f"{rule_label} {fmt(rule)}".strip()
        anchor = "end" if x(rule) > label_width + plot_w / 2 else "start"
        body.append(f'<line class="rule" x1="{x(rule):.1f}" y1="{top - 6}" x2="{x(rule):.1f}" y2="{axis_y}" '
                    f'stroke="{ALERT_COLOUR}" stroke-width="1.5" stroke-dasharray="5 4"/>'
                    f'<text class="rule-label" x="{x(rule) + (-4 if anchor == "end" else 4):.1f}" y="{top - 10}" '
                    f'text-anchor="{anchor}" fill="{ALERT_COLOUR}">{escape(label)}</text>')
    suffix = escape(f" {unit}") if unit else ""
    for gi, (label, bars) in enumerate(groups):
        gy = top + gi * group_h
        colour = "#c92a2a" if label in flagged else "#222"
        # centred on the slots that are drawn (an empty slot, `missing=""`, is not part of the group's row)
        shown = [si for si, bar in enumerate(bars) if bar.value is not None or bar.missing] or [0]
        label_y = gy + (min(shown) + max(shown) + 1) * bar_h / 2 + 4
        body.append(f'<text x="{label_width - 8}" y="{label_y:.1f}" text-anchor="end" '
                    f'fill="{colour}">{escape(label)}</text>')
        for si, (bar, (name, fill)) in enumerate(zip(bars, series)):
            y = gy + si * bar_h
            if bar.value is None:
                if bar.missing:
                    body.append(f'<text class="missing" x="{label_width + plot_w + 8}" y="{y + 11}" fill="#888">'
                                f"{escape(bar.missing)}</text>")
                continue
            x0, x1 = sorted((x(0.0), x(bar.value)))  # the domain always contains 0
            body.append(f'<rect x="{x0:.1f}" y="{y + 1}" width="{max(x1 - x0, 1):.1f}" height="{bar_h - 2}" '
                        f'fill="{fill}"><title>{escape(name)} {escape(label)}: {fmt(bar.value)}{suffix}'
                        + (f" (95% CI {fmt(bar.low)} to {fmt(bar.high)})" if bar.low is not None else "")
                        + f"{escape(bar.note)}</title></rect>")
            if bar.low is not None and bar.high is not None:
                body.append(_whisker(x(bar.low), x(bar.high), y + bar_h / 2, "#222"))
            body.append(f'<text x="{label_width + plot_w + 8}" y="{y + 11}" fill="#333">{fmt(bar.value)}'
                        f'{suffix}{escape(bar.note)}</text>')
    return _svg(width, height, title, body, "bars")


def scatter(title: str, points: list[Point], x_label: str, y_label: str, reference: float | None = None,
            reference_label: str = "", connect: bool = True, width: int = 720, height: int = 320) -> str:
    """Points (with optional vertical CI whiskers) against a numeric or categorical x axis. Points sharing a
    colour are joined in x order when x is numeric (one line per series)."""
    left, right, top, bottom = 70, 20, 20, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    categorical = any(isinstance(p.x, str) for p in points)
    categories = list(dict.fromkeys(str(p.x) for p in points)) if categorical else []
    xs = [float(p.x) for p in points] if not categorical else []
    if categorical:
        def px(v) -> float:
            return left + (categories.index(str(v)) + 0.5) / max(len(categories), 1) * plot_w
    else:
        x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
        if x_lo == x_hi:
            x_lo, x_hi = x_lo - 1, x_hi + 1
        pad = (x_hi - x_lo) * 0.05

        def px(v) -> float:
            return left + (float(v) - x_lo + pad) / (x_hi - x_lo + 2 * pad) * plot_w
    ys = [v for p in points for v in (p.y, p.low, p.high) if v is not None]
    if reference is not None:
        ys.append(reference)
    y_lo, y_hi = nice_domain(ys) if ys else (0.0, 1.0)

    def py(v: float) -> float:
        return top + plot_h - (v - y_lo) / (y_hi - y_lo) * plot_h

    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccd"/>']
    for t in ticks(y_lo, y_hi):
        body.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{left + plot_w}" y2="{py(t):.1f}" stroke="#e3e6ea"/>'
                    f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end" fill="#555">{fmt(t)}</text>')
    x_ticks = categories if categorical else sorted(set(xs))
    for t in x_ticks[:20]:
        body.append(f'<text x="{px(t):.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="#555">'
                    f"{escape(t if isinstance(t, str) else fmt(t))}</text>")
    body.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle">{escape(x_label)}</text>'
                f'<text transform="translate(14 {top + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle">'
                f"{escape(y_label)}</text>")
    if y_lo < 0 < y_hi:
        body.append(f'<line x1="{left}" y1="{py(0):.1f}" x2="{left + plot_w}" y2="{py(0):.1f}" stroke="#333"/>')
    if reference is not None:
        body.append(f'<line x1="{left}" y1="{py(reference):.1f}" x2="{left + plot_w}" y2="{py(reference):.1f}" '
                    f'stroke="{BASELINE_COLOUR}" stroke-width="2" stroke-dasharray="6 4"/>'
                    f'<text x="{left + plot_w - 4}" y="{py(reference) - 5:.1f}" text-anchor="end" fill="#555">'
                    f"{escape(reference_label)} {fmt(reference)}</text>")
    if connect and not categorical:
        by_colour: dict[str, list[Point]] = {}
        for p in points:
            by_colour.setdefault(p.colour or PALETTE[0], []).append(p)
        for colour, series in by_colour.items():
            if len(series) > 1:
                path = "M" + "L".join(f"{px(p.x):.1f} {py(p.y):.1f}" for p in sorted(series, key=lambda p: float(p.x)))
                body.append(f'<path d="{path}" stroke="{colour}" stroke-width="1.5" fill="none" opacity="0.6"/>')
    # Series side by side around each x (a few pixels apart), so equal values do not hide one another.
    colours = list(dict.fromkeys(p.colour or PALETTE[0] for p in points))
    for p in points:
        colour = p.colour or PALETTE[0]
        cx = px(p.x) + (colours.index(colour) - (len(colours) - 1) / 2) * 12
        if p.low is not None and p.high is not None:
            body.append(_whisker(py(p.low), py(p.high), cx, colour, vertical=True))
        body.append(f'<circle cx="{cx:.1f}" cy="{py(p.y):.1f}" r="5" fill="{colour}" stroke="#fff">'
                    f"<title>{escape(p.label)}: {fmt(p.y)}</title></circle>")
    return _svg(width, height, title, body, "scatter")


def line_chart(title: str, categories: list[str], points: list[Point], y_label: str, line: float | None = None,
               line_label: str = "", marker: str | None = None, marker_label: str = "",
               tick_labels: list[str] | None = None, unit_interval: bool = False, width: int = 720,
               height: int = 260) -> str:
    """A series over ordered categories (time windows): points joined in order, broken where a category has no
    point, with optional vertical whiskers; `line` is a dashed horizontal line (a threshold, a target, a lab
    rate) and `marker` a vertical line at one category (the first alert). An infinite value is drawn at the top
    of the axis and labelled so."""
    # the line's label sits right of the plot, where no point can hide it
    left, right, top, bottom = 62, (16 + 7 * len(line_label) if line is not None else 16), 22, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / max(len(categories), 1)
    index = {c: i for i, c in enumerate(categories)}
    finite = [v for p in points for v in (p.y, p.low, p.high) if v is not None and math.isfinite(v)]
    lo, hi = nice_domain(finite + ([line] if line is not None else []), unit_interval)

    def px(category: str) -> float:
        return left + (index[category] + 0.5) * slot

    def py(v: float) -> float:
        v = min(max(v, lo), hi) if math.isfinite(v) else (hi if v > 0 else lo)
        return top + plot_h - (v - lo) / (hi - lo) * plot_h

    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccd"/>']
    for t in ticks(lo, hi):
        body.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{left + plot_w}" y2="{py(t):.1f}" stroke="#e3e6ea"/>'
                    f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end" fill="#555">{fmt(t)}</text>')
    labels = tick_labels or categories
    every = max(1, math.ceil(len(categories) / max(plot_w // 64, 1)))
    for i, (category, label) in enumerate(zip(categories, labels)):
        if i % every == 0:
            body.append(f'<text x="{px(category):.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="#555">'
                        f"{escape(label)}</text>")
    body.append(f'<text transform="translate(13 {top + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle">'
                f"{escape(y_label)}</text>")
    if lo < 0 < hi:
        body.append(f'<line x1="{left}" y1="{py(0):.1f}" x2="{left + plot_w}" y2="{py(0):.1f}" stroke="#333"/>')
    if marker is not None and marker in index:
        x = px(marker)
        body.append(f'<g class="marker" data-category="{escape(marker)}"><title>{escape(marker_label)}: '
                    f'{escape(marker)}</title><line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" '
                    f'stroke="{ALERT_COLOUR}" stroke-width="1.5" stroke-dasharray="2 3"/>'
                    f'<text x="{x + 4:.1f}" y="{top - 6}" fill="{ALERT_COLOUR}">{escape(marker_label)}</text></g>')
    if line is not None:
        body.append(f'<line class="rule" x1="{left}" y1="{py(line):.1f}" x2="{left + plot_w}" y2="{py(line):.1f}" '
                    f'stroke="#495057" stroke-width="1.5" stroke-dasharray="6 4"/>'
                    f'<text x="{left + plot_w + 6}" y="{py(line) + 4:.1f}" fill="#333">{escape(line_label)}</text>')
    ordered = sorted((p for p in points if p.y is not None and str(p.x) in index), key=lambda p: index[str(p.x)])
    runs: list[list[Point]] = []
    for p in ordered:  # a run of consecutive categories is one stroke
        if runs and index[str(p.x)] == index[str(runs[-1][-1].x)] + 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    for run in (r for r in runs if len(r) > 1):
        path = "M" + "L".join(f"{px(str(p.x)):.1f} {py(p.y):.1f}" for p in run)
        body.append(f'<path d="{path}" stroke="{PALETTE[0]}" stroke-width="1.5" fill="none" opacity="0.7"/>')
    radius = 5 if len(categories) <= 40 else 3
    for p in ordered:
        colour, x = p.colour or PALETTE[0], px(str(p.x))
        if p.low is not None and p.high is not None:
            body.append(_whisker(py(p.low), py(p.high), x, colour, vertical=True))
        shown = fmt(p.y) if math.isfinite(p.y) else "∞"
        body.append(f'<circle cx="{x:.1f}" cy="{py(p.y):.1f}" r="{radius}" fill="{colour}" stroke="#fff">'
                    f"<title>{escape(p.label)}: {shown}</title></circle>")
        if not math.isfinite(p.y):
            body.append(f'<text x="{x + 7:.1f}" y="{py(p.y) + 4:.1f}" fill="{colour}">∞</text>')
    return _svg(width, height, title, body, "line")


def histogram(title: str, labels: list[str], series: list[tuple[str, str, list[float | None]]],
              y_label: str = "share", width: int = 720, height: int = 260) -> str:
    """Vertical bars per bin (or category), one bar per series side by side: (name, colour, heights)."""
    long_labels = max((len(label) for label in labels), default=0) * 7 > width / max(len(labels), 1) - 6
    left, right, top = 62, 16, 30
    bottom = 30 + (min(max((len(label) for label in labels), default=0), 24) * 4.2 if long_labels else 0)
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, _, heights in series for v in heights if v is not None]
    lo, hi = nice_domain(values, unit_interval=False)
    slot = plot_w / max(len(labels), 1)
    bar_w = slot * 0.8 / max(len(series), 1)

    def py(v: float) -> float:
        return top + plot_h - (v - lo) / (hi - lo) * plot_h

    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccd"/>']
    lx = left
    for name, colour, _ in series:
        body.append(f'<rect x="{lx}" y="6" width="12" height="12" fill="{colour}"/>'
                    f'<text x="{lx + 16}" y="16">{escape(name)}</text>')
        lx += 30 + 7 * len(name)
    for t in ticks(lo, hi):
        body.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{left + plot_w}" y2="{py(t):.1f}" stroke="#e3e6ea"/>'
                    f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end" fill="#555">{fmt(t)}</text>')
    body.append(f'<text transform="translate(13 {top + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle">'
                f"{escape(y_label)}</text>")
    for i, label in enumerate(labels):
        cx = left + (i + 0.5) * slot
        if long_labels:
            body.append(f'<text transform="translate({cx:.1f} {top + plot_h + 12}) rotate(-35)" text-anchor="end" '
                        f'fill="#555">{escape(label)}</text>')
        else:
            body.append(f'<text x="{cx:.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="#555">'
                        f"{escape(label)}</text>")
        for si, (name, colour, heights) in enumerate(series):
            v = heights[i] if i < len(heights) else None
            if v is None:
                continue
            x = cx - slot * 0.4 + si * bar_w
            body.append(f'<rect x="{x:.1f}" y="{py(v):.1f}" width="{max(bar_w - 1, 1):.1f}" '
                        f'height="{max(py(lo) - py(v), 0.5):.1f}" fill="{colour}"><title>{escape(name)} '
                        f"{escape(label)}: {fmt(v)}</title></rect>")
    return _svg(width, height, title, body, "histogram")
