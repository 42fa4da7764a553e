"""Diary charts as inline SVG, drawn by plain string building: no JavaScript, no CDN, no plotting
library, works offline.

The same SVG goes into the clinician page, the patient page and the PDF handout (WeasyPrint), so
it uses only SVG 1.1 presentation attributes (no ``<style>``, no ``style=``, no script) and a
``viewBox`` with ``width="100%"`` so that it scales to a phone. Two panels share the date axis:
pain (average and worst, 0–10) above, sitting tolerance (minutes) below; dotted lines mark the
titration steps, a solid line the review date.

Colour is never the only cue (WCAG 1.4.1): worst pain is a dashed line with square markers,
average pain a solid line with round ones, sitting has its own panel, the review line is solid
and labelled "review" while step lines are dotted and labelled with their dose. The SVG's
``<desc>`` summarises the data, and ``diary_chart_html`` adds the same data as a table under the
chart (WCAG 1.1.1) for the web pages; the PDF handout takes the SVG alone.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from xml.sax.saxutils import escape, quoteattr

from ldncare.core.diary import DiaryEntry, ScheduledStep
from ldncare.core.plan_contract import PlanLike, ldn_of
from ldncare.core.quantity import format_decimal
from ldncare.web.views import steps_of

PAIN_AVG = "#1f5fbf"
PAIN_WORST = "#c0392b"
SITTING = "#2e7d32"
STEP = "#888888"
REVIEW = "#8e44ad"

TEXT = "#333333"
MUTED = "#555555"
AXIS = "#999999"
GRID = "#e6e6e6"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Arial, sans-serif"

# Geometry in viewBox units. 720 wide: about 1.4x on the clinician page, 0.5x on a phone.
WIDTH = 720
HEIGHT = 432
LEFT = 60  # room for the rotated axis name and the tick labels
RIGHT = 14
INSET = 6  # keeps the first and last markers off the axes
TICK_FONT = 12
LABEL_FONT = 12
LABEL_ROW = 13  # height of one row of step / review labels above the pain panel
PAIN_TOP_MIN = 46  # top of the pain panel with one row of labels
PAIN_BOTTOM = 250
SIT_TOP = 276
SIT_BOTTOM = 386
LEGEND_Y = 422
PAIN_MAX = 10.5  # half a unit of headroom so the markers at 10 are not cut
PAIN_TICKS = (0, 2, 4, 6, 8, 10)
MAX_X_TICKS = 12
MIN_TICK_GAP = 58  # a "30 Sep" label is ~38 units wide at TICK_FONT
MINUTE_STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 90, 120, 180, 240, 360, 720)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
EMPTY_TEXT = "no diary entries yet"

Series = tuple[tuple[date, int], ...]


def diary_chart_svg(
    entries: Sequence[DiaryEntry],
    contract: PlanLike | None,
    *,
    title: str = "Diary",
) -> str:
    """Pain (average and worst, 0–10) and sitting tolerance (minutes) over time, with the
    titration steps and the review date marked. Returns an ``<svg>`` element as text.

    The SVG is a pure function of the plotted values, so it is memoised on exactly those: a
    page view after a diary entry or a plan change draws anew (a few milliseconds for a year),
    the others are a dictionary look-up.
    """
    review, steps = _plan_marks(contract)
    return _chart(
        tuple(e.day for e in entries),
        tuple((e.day, e.pain_avg) for e in entries if e.pain_avg is not None),
        tuple((e.day, e.pain_worst) for e in entries if e.pain_worst is not None),
        tuple((e.day, e.sitting_minutes) for e in entries if e.sitting_minutes is not None),
        steps,
        review,
        title,
    )


def diary_chart_html(
    entries: Sequence[DiaryEntry],
    contract: PlanLike | None,
    *,
    title: str = "Diary",
) -> str:
    """The chart and, folded under it, the same data as a table: the web pages' text
    alternative for people who cannot see the chart."""
    return diary_chart_svg(entries, contract, title=title) + diary_chart_table(
        entries, contract, title=title
    )


def diary_chart_table(
    entries: Sequence[DiaryEntry],
    contract: PlanLike | None,
    *,
    title: str = "Diary",
) -> str:
    """Every plotted day as a row (day, dose of the plan's step, average and worst pain,
    sitting minutes), in date order, inside a ``<details>``; empty for an empty diary."""
    review, steps = _plan_marks(contract)
    rows = tuple(
        sorted(
            (e.day, e.pain_avg, e.pain_worst, e.sitting_minutes)
            for e in entries
            if (e.pain_avg, e.pain_worst, e.sitting_minutes) != (None, None, None)
        )
    )
    return _table(rows, steps, review, title)


def _plan_marks(
    contract: PlanLike | None,
) -> tuple[date | None, tuple[ScheduledStep, ...]]:
    """The review date and the LDN steps a chart marks, read from the plan's typed ``ldn``
    part (the part alone, as the dashboard loads it, or a whole plan)."""
    if contract is None:
        return None, ()
    ldn = ldn_of(contract)
    return ldn.review_date, tuple(steps_of(ldn))


def _cell(value: int | None, unit: str = "") -> str:
    return "<td>not recorded</td>" if value is None else f"<td>{value}{unit}</td>"


@functools.lru_cache(maxsize=64)
def _table(
    rows: tuple[tuple[date, int | None, int | None, int | None], ...],
    steps: tuple[ScheduledStep, ...],
    review: date | None,
    title: str,
) -> str:
    if not rows:
        return ""
    body: list[str] = []
    for day, avg, worst, sit in rows:
        step = next((s for s in reversed(steps) if s.covers(day)), None)
        dose = "—" if step is None else f"{format_decimal(step.dose_mg)} mg"
        mark = " (review)" if day == review else ""
        body.append(
            f'<tr><th scope="row">{_long_date(day)}{mark}</th><td>{dose}</td>'
            f"{_cell(avg)}{_cell(worst)}{_cell(sit, ' min')}</tr>"
        )
    days = "day" if len(rows) == 1 else "days"
    caption = f"{escape(title)}: the chart's data, {len(rows)} {days}"
    if review is not None:
        caption += f"; review on {_long_date(review)}"
    return (
        '<details class="chart-data"><summary>The chart as a table'
        f" ({len(rows)} {days})</summary>"
        f'<div class="scroll" role="region" aria-label="{escape(title)}: data" tabindex="0">'
        f"<table><caption>{caption}</caption><thead><tr>"
        '<th scope="col">Day</th><th scope="col">LDN dose (plan)</th>'
        '<th scope="col">Average pain (0–10)</th><th scope="col">Worst pain (0–10)</th>'
        '<th scope="col">Sitting</th></tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div></details>"
    )


def _trend(name: str, series: Series, unit: str = "") -> str | None:
    """``average pain 6 on 1 Jan 2026, 3 on 10 Jan 2026``: first and latest recorded value."""
    if not series:
        return None
    (d0, v0), (d1, v1) = min(series), max(series)
    if d0 == d1:
        return f"{name} {v0}{unit} on {_long_date(d0)}"
    return f"{name} {v0}{unit} on {_long_date(d0)}, {v1}{unit} on {_long_date(d1)}"


def day_label(day: date) -> str:
    """``1 Feb``: English month abbreviations whatever the server's locale."""
    return f"{day.day} {MONTHS[day.month - 1]}"


def _long_date(day: date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def _num(value: float) -> str:
    """Coordinates with one decimal: sharp enough, and a third of the bytes of repr()."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _text_width(text: str, size: float) -> float:
    """A generous estimate of a label's width in a sans-serif font (no font metrics here)."""
    return len(text) * size * 0.6


def nice_ceiling(maximum: float) -> tuple[int, int]:
    """(top, step) of a 0-based minutes axis that holds ``maximum`` in at most five steps of a
    round number of minutes (…, 10, 15, 20, 30 min, 1 h, 1.5 h, 2 h, …)."""
    if maximum <= 0:
        return 60, 15
    step = next((s for s in MINUTE_STEPS if math.ceil(maximum / s) <= 5), MINUTE_STEPS[-1])
    return step * max(1, math.ceil(maximum / step)), step


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def x_ticks(lo: date, hi: date, width: float) -> list[date]:
    """Date ticks for [lo, hi]: the finest of days, weeks or months whose labels stay at least
    MIN_TICK_GAP apart, and never more than MAX_X_TICKS."""
    span = (hi - lo).days
    if span <= 0:
        return [lo]
    per_day = width / span
    for step in (1, 2, 7, 14):
        if step * per_day >= MIN_TICK_GAP and span // step + 1 <= MAX_X_TICKS:
            return [lo + timedelta(days=k * step) for k in range(span // step + 1)]
    for months in (1, 2, 3, 6, 12, 24, 60):
        if months * 28 * per_day < MIN_TICK_GAP:
            continue
        first = date(lo.year, lo.month, 1)
        if first < lo:
            first = _add_months(first, 1)
        # Align to the calendar: quarters start in Jan/Apr/Jul/Oct, half-years in Jan/Jul.
        while (first.month - 1) % min(months, 12):
            first = _add_months(first, 1)
        ticks = []
        tick = first
        while tick <= hi:
            ticks.append(tick)
            tick = _add_months(tick, months)
        if len(ticks) <= MAX_X_TICKS:
            return ticks
    return [lo, hi]


@dataclass(frozen=True)
class _Label:
    x: float
    text: str
    colour: str
    bold: bool = False


@dataclass(frozen=True)
class _Placed:
    label: _Label
    row: int
    tx: float
    anchor: str


def _place_labels(labels: Sequence[_Label], right: float) -> list[_Placed]:
    """Lay the step and review labels out in rows above the pain panel so that none overlap:
    each goes to the first row where it fits, right of its line (left of it near the right
    edge)."""
    row_ends: list[float] = []
    placed: list[_Placed] = []
    for label in sorted(labels, key=lambda item: item.x):
        width = _text_width(label.text, LABEL_FONT)
        if label.x + 3 + width <= right:
            start, anchor, tx = label.x + 3, "start", label.x + 3
        else:
            start, anchor, tx = label.x - 3 - width, "end", label.x - 3
        row = next((i for i, end in enumerate(row_ends) if start >= end + 4), len(row_ends))
        if row == len(row_ends):
            row_ends.append(start + width)
        else:
            row_ends[row] = start + width
        placed.append(_Placed(label, row, tx, anchor))
    return placed


def _markers(points: Sequence[tuple[float, float]], shape: str, size: float = 2.8) -> str:
    """All markers of a series as one path: far smaller and faster than one element each."""
    r, d = _num(size), _num(2 * size)
    if shape == "square":
        return "".join(f"M{_num(x - size)} {_num(y - size)}h{d}v{d}h-{d}z" for x, y in points)
    return "".join(
        f"M{_num(x - size)} {_num(y)}a{r} {r} 0 1 0 {d} 0a{r} {r} 0 1 0-{d} 0" for x, y in points
    )


def _series(
    name: str,
    points: Sequence[tuple[float, float]],
    colour: str,
    shape: str,
    dashed: bool,
) -> Iterator[str]:
    if not points:
        return
    # A year of daily markers at full size would merge into a band; smaller ones still show
    # which days were recorded.
    size, width = (2.8, 1.6) if len(points) <= 90 else (1.7, 1.2)
    coords = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    yield (
        f'<g class="series" data-series="{name}">'
        f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="{width}"'
        f' stroke-linejoin="round"{dash}/>'
        f'<path d="{_markers(points, shape, size)}" fill="{colour}"/></g>'
    )


@functools.lru_cache(maxsize=64)
def _chart(
    days: tuple[date, ...],
    avg: Series,
    worst: Series,
    sit: Series,
    steps: tuple[ScheduledStep, ...],
    review: date | None,
    title: str,
) -> str:
    lo = min([*days, *(s.start for s in steps)], default=None)
    hi = max([*days, *([review] if review else [])], default=None)
    if lo is not None and hi is None:
        hi = lo
    if lo is not None and hi is not None and hi < lo:
        lo, hi = hi, lo
    if lo is not None and hi is not None and lo == hi:
        lo, hi = lo - timedelta(days=1), hi + timedelta(days=1)

    right = WIDTH - RIGHT
    x0, x1 = LEFT + INSET, right - INSET

    def x_of(day: date) -> float:
        assert lo is not None and hi is not None
        return x0 + (day - lo).days * (x1 - x0) / (hi - lo).days

    shown_steps = [s for s in steps if lo is not None and hi is not None and lo <= s.start <= hi]
    # A review date before the first plotted day (a plan with no schedule) is off the chart.
    show_review = review is not None and lo is not None and hi is not None and lo <= review <= hi
    labels = [_Label(x_of(s.start), f"{format_decimal(s.dose_mg)} mg", MUTED) for s in shown_steps]
    if review is not None and show_review:
        labels.append(_Label(x_of(review), "review", REVIEW, bold=True))
    placed = _place_labels(labels, right)
    rows = max((p.row for p in placed), default=0) + 1
    pain_top = PAIN_TOP_MIN + (rows - 1) * LABEL_ROW

    def y_pain(value: float) -> float:
        return PAIN_BOTTOM - value * (PAIN_BOTTOM - pain_top) / PAIN_MAX

    sit_max, sit_step = nice_ceiling(max((v for _, v in sit), default=0))

    def y_sit(value: float) -> float:
        return SIT_BOTTOM - value * (SIT_BOTTOM - SIT_TOP) / sit_max

    title_id = (
        "diary-chart-"
        + hashlib.blake2s(
            repr((days, avg, worst, sit, steps, review, title)).encode(), digest_size=4
        ).hexdigest()
    )
    if days:
        desc = (
            f"Pain and sitting tolerance from {_long_date(min(days))} to "
            f"{_long_date(max(days))}; {len(set(days))} diary "
            f"{'day' if len(set(days)) == 1 else 'days'}"
        )
    else:
        desc = "No diary entries yet"
    if shown_steps:
        desc += "; dose steps " + ", ".join(
            f"{format_decimal(s.dose_mg)} mg from {_long_date(s.start)}" for s in shown_steps
        )
    if review is not None:
        desc += f"; review on {_long_date(review)}"
    trends = [
        t
        for t in (
            _trend("average pain", avg),
            _trend("worst pain", worst),
            _trend("sitting", sit, " min"),
        )
        if t
    ]
    if trends:
        desc += "; " + "; ".join(trends)
    desc += "."

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%"'
        f' role="img" aria-labelledby="{title_id}-t {title_id}-d" class="diary-chart"'
        f' font-family={quoteattr(FONT)} font-size="{TICK_FONT}" fill="{TEXT}">',
        f'<title id="{title_id}-t">{escape(title)}</title>',
        f'<desc id="{title_id}-d">{escape(desc)}</desc>',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]

    # Legend under the date axis, so a long title (a patient's name) never runs into it.
    lx = float(LEFT)
    parts: list[str] = []
    for series, text, colour, shape, dashed in (
        (avg, "average pain", PAIN_AVG, "circle", False),
        (worst, "worst pain", PAIN_WORST, "square", True),
        (sit, "sitting", SITTING, "circle", False),
    ):
        if not series:
            continue
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        parts.append(
            f'<line x1="{_num(lx)}" y1="{LEGEND_Y - 4}" x2="{_num(lx + 20)}" y2="{LEGEND_Y - 4}"'
            f' stroke="{colour}" stroke-width="1.6"{dash}/>'
            f'<path d="{_markers([(lx + 10, LEGEND_Y - 4)], shape)}" fill="{colour}"/>'
            f'<text x="{_num(lx + 26)}" y="{LEGEND_Y}">{escape(text)}</text>'
        )
        lx += 26 + _text_width(text, LABEL_FONT) + 18
    if parts:
        out.append(f'<g class="legend" font-size="{LABEL_FONT}">' + "".join(parts) + "</g>")

    # Panels: light grid, y ticks, axis names.
    grid: list[str] = []
    ticks: list[str] = []
    for value in PAIN_TICKS:
        y = _num(y_pain(value))
        grid.append(f'<line x1="{LEFT}" y1="{y}" x2="{right}" y2="{y}"/>')
        ticks.append(f'<text x="{LEFT - 6}" y="{y}" dy="0.35em">{value}</text>')
    for value in range(0, sit_max + 1, sit_step):
        y = _num(y_sit(value))
        grid.append(f'<line x1="{LEFT}" y1="{y}" x2="{right}" y2="{y}"/>')
        ticks.append(f'<text x="{LEFT - 6}" y="{y}" dy="0.35em">{value}</text>')
    xticks = x_ticks(lo, hi, x1 - x0) if lo is not None and hi is not None else []
    xlabels: list[str] = []
    for tick in xticks:
        x = _num(x_of(tick))
        for top, bottom in ((pain_top, PAIN_BOTTOM), (SIT_TOP, SIT_BOTTOM)):
            grid.append(f'<line x1="{x}" y1="{_num(top)}" x2="{x}" y2="{bottom}"/>')
        xlabels.append(
            f'<line x1="{x}" y1="{SIT_BOTTOM}" x2="{x}" y2="{SIT_BOTTOM + 4}" stroke="{AXIS}"/>'
            f'<text x="{x}" y="{SIT_BOTTOM + 17}" text-anchor="middle">{day_label(tick)}</text>'
        )
    out.append(f'<g class="grid" stroke="{GRID}" stroke-width="1">' + "".join(grid) + "</g>")
    out.append('<g class="y-ticks" text-anchor="end">' + "".join(ticks) + "</g>")
    out.append('<g class="x-ticks">' + "".join(xlabels) + "</g>")
    axes = "".join(
        f'<path d="M{LEFT} {_num(top)}V{bottom}H{right}" fill="none" stroke="{AXIS}"/>'
        for top, bottom in ((pain_top, PAIN_BOTTOM), (SIT_TOP, SIT_BOTTOM))
    )
    out.append(f'<g class="axes">{axes}</g>')
    for name, top, bottom in (
        ("pain 0–10", pain_top, PAIN_BOTTOM),
        ("sitting (min)", SIT_TOP, SIT_BOTTOM),
    ):
        cy = _num((top + bottom) / 2)
        out.append(
            f'<text x="16" y="{cy}" transform="rotate(-90 16 {cy})" text-anchor="middle"'
            f' font-size="{LABEL_FONT}" fill="{MUTED}">{escape(name)}</text>'
        )

    # Steps (dotted) and review (solid) across both panels, labels in rows above the pain panel.
    marks: list[str] = []
    for step in shown_steps:
        x = _num(x_of(step.start))
        marks.append(
            f'<line class="step" data-date="{step.start.isoformat()}" x1="{x}"'
            f' y1="{_num(pain_top)}" x2="{x}" y2="{SIT_BOTTOM}" stroke="{STEP}" stroke-width="1"'
            ' stroke-dasharray="2 3"/>'
        )
    if review is not None and show_review:
        x = _num(x_of(review))
        marks.append(
            f'<line class="review" data-date="{review.isoformat()}" x1="{x}" y1="{_num(pain_top)}"'
            f' x2="{x}" y2="{SIT_BOTTOM}" stroke="{REVIEW}" stroke-width="1.6"/>'
        )
    out.append('<g class="marks">' + "".join(marks) + "</g>")
    texts = []
    for p in placed:
        y = _num(pain_top - 6 - (rows - 1 - p.row) * LABEL_ROW)
        weight = ' font-weight="bold"' if p.label.bold else ""
        texts.append(
            f'<text x="{_num(p.tx)}" y="{y}" text-anchor="{p.anchor}" fill="{p.label.colour}"'
            f"{weight}>{escape(p.label.text)}</text>"
        )
    out.append(f'<g class="mark-labels" font-size="{LABEL_FONT}">' + "".join(texts) + "</g>")

    # The data: lines join the days that have a value; days without one are not plotted.
    if lo is not None:
        for name, series, y_of, colour, shape, dashed in (
            ("pain-worst", worst, y_pain, PAIN_WORST, "square", True),
            ("pain-avg", avg, y_pain, PAIN_AVG, "circle", False),
            ("sitting", sit, y_sit, SITTING, "circle", False),
        ):
            points = [(x_of(day), y_of(value)) for day, value in sorted(series)]
            out.extend(_series(name, points, colour, shape, dashed))
    if not days:
        cx, cy = _num((LEFT + right) / 2), _num((pain_top + PAIN_BOTTOM) / 2)
        out.append(
            f'<text class="empty" x="{cx}" y="{cy}"'
            f' text-anchor="middle" font-size="14" fill="{MUTED}">{EMPTY_TEXT}</text>'
        )
    out.append("</svg>")
    return "".join(out)
