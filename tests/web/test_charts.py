"""The diary chart: well-formed SVG whose marks sit where the diary and the plan say."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.core.diary import DiaryEntry, parse_entry
from ldncare.core.plan_contract import Ldn
from ldncare.web.charts import (
    diary_chart_html,
    diary_chart_svg,
    diary_chart_table,
    nice_ceiling,
    x_ticks,
)
from tests.plan_parts import ldn_part

NS = {"svg": "http://www.w3.org/2000/svg"}
TODAY = date(2027, 6, 1)
START = date(2026, 1, 5)


def entry(
    day: date, avg: int | None = 5, worst: int | None = 7, sit: int | None = 30
) -> DiaryEntry:
    return parse_entry(
        {"day": day.isoformat(), "pain_avg": avg, "pain_worst": worst, "sitting_minutes": sit},
        today=TODAY,
    )


def plan(steps: list[tuple[date, str]], review: date | None, *, step_days: int = 14) -> Ldn:
    """A plan's LDN part: ``step_days``-day bedtime steps at the given doses (mg), and the
    review date."""
    return ldn_part(
        [(start, start + timedelta(days=step_days - 1), float(dose)) for start, dose in steps],
        review,
    )


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def polyline(root: ET.Element, series: str) -> list[tuple[float, float]]:
    (group,) = [g for g in root.iter(f"{{{NS['svg']}}}g") if g.get("data-series") == series]
    line = group.find("svg:polyline", NS)
    assert line is not None
    return [
        (float(x), float(y))
        for x, y in (pair.split(",") for pair in (line.get("points") or "").split())
    ]


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{{{NS['svg']}}}text")]


def plot_area(root: ET.Element) -> tuple[float, float, float, float]:
    """(left, right, top, bottom) of the whole plotted region, from the axis paths."""
    xs: list[float] = []
    ys: list[float] = []
    axes = root.find("svg:g[@class='axes']", NS)
    assert axes is not None
    for path in axes.findall("svg:path", NS):
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path.get("d") or "")]
        # M left top V bottom H right
        xs += [numbers[0], numbers[3]]
        ys += [numbers[1], numbers[2]]
    return min(xs), max(xs), min(ys), max(ys)


def test_a_year_of_diary_plots_every_value_inside_the_plot_in_date_order() -> None:
    entries = [
        entry(
            START + timedelta(days=d), avg=d % 11, worst=min(10, d % 11 + d % 3), sit=10 + d % 200
        )
        for d in range(365)
    ]
    root = parse(diary_chart_svg(entries, None, title="Pain"))
    left, right, top, bottom = plot_area(root)
    for series in ("pain-avg", "pain-worst", "sitting"):
        points = polyline(root, series)
        assert len(points) == 365
        assert all(left <= x <= right and top <= y <= bottom for x, y in points), series
        xs = [x for x, _ in points]
        assert xs == sorted(xs) and len(set(xs)) == 365
    pain = polyline(root, "pain-avg")
    assert pain[0][0] < pain[-1][0]


def test_entries_out_of_order_are_drawn_in_date_order() -> None:
    days = [START + timedelta(days=d) for d in (3, 0, 2, 1)]
    root = parse(diary_chart_svg([entry(d, avg=i) for i, d in enumerate(days)], None))
    points = polyline(root, "pain-avg")
    assert [x for x, _ in points] == sorted(x for x, _ in points)
    # Day 0 had pain 1, day 1 pain 3, day 2 pain 2, day 3 pain 0: lower y is higher pain.
    ys = [y for _, y in points]
    assert ys[1] < ys[2] < ys[0] < ys[3]


def test_worse_pain_is_drawn_higher_and_longer_sitting_higher() -> None:
    entries = [
        entry(START, avg=2, sit=20),
        entry(START + timedelta(days=1), avg=8, worst=9, sit=90),
    ]
    root = parse(diary_chart_svg(entries, None))
    (_, y_mild), (_, y_severe) = polyline(root, "pain-avg")
    assert y_severe < y_mild
    (_, y_short), (_, y_long) = polyline(root, "sitting")
    assert y_long < y_short


def test_days_without_a_value_are_left_out_and_the_line_joins_the_rest() -> None:
    entries = [
        entry(START, avg=4),
        entry(START + timedelta(days=1), avg=None),
        entry(START + timedelta(days=2), avg=6),
    ]
    root = parse(diary_chart_svg(entries, None))
    assert len(polyline(root, "pain-avg")) == 2
    assert len(polyline(root, "pain-worst")) == 3


def test_each_titration_step_gets_a_line_at_its_date_and_a_dose_label() -> None:
    steps = [(START + timedelta(days=14 * i), dose) for i, dose in enumerate(("1.5", "3", "4.5"))]
    contract = plan(steps, START + timedelta(days=84))
    entries = [entry(START + timedelta(days=d)) for d in range(60)]
    root = parse(diary_chart_svg(entries, contract))
    lines = {
        line.get("data-date"): float(line.get("x1") or "nan")
        for line in root.iter(f"{{{NS['svg']}}}line")
        if line.get("class") == "step"
    }
    assert list(lines) == [start.isoformat() for start, _ in steps]
    # A diary day on the step's start date is plotted at the step line's x.
    points = dict(zip(range(60), (x for x, _ in polyline(root, "pain-avg")), strict=True))
    for start, _ in steps:
        assert abs(lines[start.isoformat()] - points[(start - START).days]) < 0.11
    labels = texts(root)
    assert "1.5 mg" in labels and "3 mg" in labels and "4.5 mg" in labels


def test_the_review_date_has_a_solid_line_and_a_label() -> None:
    review = START + timedelta(days=84)
    contract = plan([(START, "1.5")], review)
    root = parse(diary_chart_svg([entry(START), entry(START + timedelta(days=5))], contract))
    (line,) = [li for li in root.iter(f"{{{NS['svg']}}}line") if li.get("class") == "review"]
    assert line.get("data-date") == review.isoformat()
    assert line.get("stroke-dasharray") is None
    assert "review" in texts(root)
    # The x axis runs to the review date, so the review line is the rightmost mark.
    left, right, _, _ = plot_area(root)
    assert left < float(line.get("x1") or "nan") <= right
    assert max(x for x, _ in polyline(root, "pain-avg")) < float(line.get("x1") or "nan")


def test_step_and_review_labels_never_overlap_on_a_year() -> None:
    steps = [(START + timedelta(days=14 * i), f"{i + 1}.5") for i in range(5)]
    contract = plan(steps, START + timedelta(days=84))
    entries = [entry(START + timedelta(days=d)) for d in range(365)]
    root = parse(diary_chart_svg(entries, contract))
    group = root.find("svg:g[@class='mark-labels']", NS)
    assert group is not None
    boxes = []
    for text in group.findall("svg:text", NS):
        x, y, width = float(text.get("x") or 0), float(text.get("y") or 0), len(text.text or "")
        start = x if text.get("text-anchor") == "start" else x - width * 7.2
        boxes.append((y, start, start + width * 7.2))
    assert len(boxes) == 6
    for i, (y1, a1, b1) in enumerate(boxes):
        for y2, a2, b2 in boxes[i + 1 :]:
            assert y1 != y2 or b1 <= a2 or b2 <= a1, (boxes[i], (y2, a2, b2))


def test_a_title_with_markup_is_escaped() -> None:
    title = "Anna <script>alert('x')</script> & Co"
    svg = diary_chart_svg([entry(START)], None, title=title)
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&amp; Co" in svg
    root = parse(svg)
    assert title in texts(root)
    assert root.find("svg:script", NS) is None


def test_the_chart_is_an_accessible_scalable_image() -> None:
    entries = [entry(date(2026, 1, 1) + timedelta(days=d)) for d in range(10)]
    root = parse(diary_chart_svg(entries, None, title="My pain"))
    assert root.get("role") == "img"
    assert root.get("width") == "100%" and root.get("viewBox")
    title, desc = root.find("svg:title", NS), root.find("svg:desc", NS)
    assert title is not None and title.text == "My pain"
    assert desc is not None and desc.text is not None
    assert "from 1 Jan 2026 to 10 Jan 2026; 10 diary days" in desc.text
    labelled = (root.get("aria-labelledby") or "").split()
    assert labelled == [title.get("id"), desc.get("id")]


def test_a_year_has_at_most_twelve_date_labels_spaced_apart() -> None:
    entries = [entry(START + timedelta(days=d)) for d in range(365)]
    root = parse(diary_chart_svg(entries, None))
    group = root.find("svg:g[@class='x-ticks']", NS)
    assert group is not None
    labels = group.findall("svg:text", NS)
    assert 4 <= len(labels) <= 12
    xs = [float(t.get("x") or 0) for t in labels]
    assert all(b - a >= 50 for a, b in itertools.pairwise(xs))
    assert all(re.fullmatch(r"\d{1,2} [A-Z][a-z]{2}", t.text or "") for t in labels)


def test_date_ticks_go_from_days_to_months() -> None:
    assert x_ticks(START, START + timedelta(days=3), 700) == [
        START + timedelta(days=d) for d in range(4)
    ]
    month = x_ticks(START, START + timedelta(days=30), 700)
    assert 3 <= len(month) <= 12 and (month[1] - month[0]).days in (2, 7)
    year = x_ticks(START, START + timedelta(days=365), 700)
    assert all(t.day == 1 for t in year) and len(year) <= 12
    five_years = x_ticks(START, START + timedelta(days=5 * 365), 700)
    assert 2 <= len(five_years) <= 12


def test_an_empty_diary_says_so() -> None:
    root = parse(diary_chart_svg([], None, title="Diary"))
    assert "no diary entries yet" in texts(root)
    assert not [g for g in root.iter(f"{{{NS['svg']}}}g") if g.get("data-series")]
    with_plan = parse(diary_chart_svg([], plan([(START, "1.5")], START + timedelta(days=84))))
    assert "no diary entries yet" in texts(with_plan) and "1.5 mg" in texts(with_plan)


def test_long_sitting_tolerance_scales_the_axis() -> None:
    short = parse(diary_chart_svg([entry(START, sit=40)], None))
    long = parse(diary_chart_svg([entry(START, sit=400), entry(START, sit=None)], None))

    def top_tick(root: ET.Element) -> int:
        group = root.find("svg:g[@class='y-ticks']", NS)
        assert group is not None
        return max(int(t.text or 0) for t in group.findall("svg:text", NS))

    assert 40 <= top_tick(short) < 100
    assert 400 <= top_tick(long) < 1000
    assert nice_ceiling(0) == (60, 15)
    assert nice_ceiling(120) == (120, 30)
    assert nice_ceiling(7) == (8, 2)
    assert nice_ceiling(400) == (450, 90)
    assert nice_ceiling(1440) == (1440, 360)


def test_one_day_of_diary_draws_without_dividing_by_zero() -> None:
    root = parse(diary_chart_svg([entry(START)], None))
    ((x, _),) = polyline(root, "pain-avg")
    left, right, _, _ = plot_area(root)
    assert left < x < right


def test_a_review_date_before_the_diary_is_not_drawn_off_the_chart() -> None:
    contract = ldn_part([], START)
    later = [entry(START + timedelta(days=30 + d)) for d in range(5)]
    root = parse(diary_chart_svg(later, contract))
    assert not [li for li in root.iter(f"{{{NS['svg']}}}line") if li.get("class") == "review"]
    left, _, _, _ = plot_area(root)
    assert all(float(li.get("x1") or 0) >= left for li in root.iter(f"{{{NS['svg']}}}line"))


# --- text alternative and colour-independence (issue 23) ---------------------------------------


def table_rows(html: str) -> list[list[str]]:
    """The data rows of the chart's table as text cells (the row header first)."""
    root = ET.fromstring(html)
    assert root.tag == "details"
    table = root.find(".//table")
    assert table is not None and table.find("caption") is not None
    return [
        ["".join(c.itertext()) for c in tr] for tr in table.iter("tr") if tr.find("td") is not None
    ]


def test_a_titrating_patients_chart_table_gives_each_days_dose_pain_and_sitting() -> None:
    plan_ = plan([(START, "1.5"), (START + timedelta(days=14), "3")], START + timedelta(days=40))
    entries = [
        entry(START, avg=6, worst=8, sit=20),
        entry(START + timedelta(days=13), avg=5, worst=None, sit=25),
        entry(START + timedelta(days=14), avg=4, worst=6, sit=None),
    ]
    rows = table_rows(diary_chart_table(entries, plan_, title="My pain"))
    assert rows == [
        ["5 Jan 2026", "1.5 mg", "6", "8", "20 min"],
        ["18 Jan 2026", "1.5 mg", "5", "not recorded", "25 min"],
        ["19 Jan 2026", "3 mg", "4", "6", "not recorded"],
    ]


def test_a_diary_before_any_plan_has_no_dose_in_its_table() -> None:
    rows = table_rows(diary_chart_table([entry(START, avg=7)], None, title="Diary"))
    assert rows == [["5 Jan 2026", "—", "7", "7", "30 min"]]


def test_an_empty_diary_has_no_table_and_the_page_shows_only_the_chart() -> None:
    assert diary_chart_table([], None) == ""
    assert diary_chart_html([], None) == diary_chart_svg([], None)


def test_the_page_chart_is_the_svg_followed_by_its_table() -> None:
    entries = [entry(START + timedelta(days=d), avg=d % 10) for d in range(5)]
    html = diary_chart_html(entries, None, title="x")
    svg = diary_chart_svg(entries, None, title="x")
    assert html.startswith(svg)
    assert len(table_rows(html[len(svg) :])) == 5


def test_the_chart_description_summarises_first_and_latest_values() -> None:
    entries = [
        entry(date(2026, 1, 1), avg=6, worst=8, sit=20),
        entry(date(2026, 1, 10), avg=3, worst=5, sit=45),
    ]
    desc = parse(diary_chart_svg(entries, None)).find("svg:desc", NS)
    assert desc is not None and desc.text is not None
    assert "average pain 6 on 1 Jan 2026, 3 on 10 Jan 2026" in desc.text
    assert "worst pain 8 on 1 Jan 2026, 5 on 10 Jan 2026" in desc.text
    assert "sitting 20 min on 1 Jan 2026, 45 min on 10 Jan 2026" in desc.text


def test_the_series_differ_by_line_and_marker_shape_not_only_by_colour() -> None:
    entries = [entry(START + timedelta(days=d), avg=4, worst=7) for d in range(6)]
    root = parse(diary_chart_svg(entries, None))
    looks = {}
    for g in root.iter(f"{{{NS['svg']}}}g"):
        name = g.get("data-series")
        if name is None:
            continue
        line, markers = g.find("svg:polyline", NS), g.find("svg:path", NS)
        assert line is not None and markers is not None
        square = "h" in (markers.get("d") or "")  # squares are drawn with h/v, circles with arcs
        looks[name] = (line.get("stroke-dasharray"), square)
    # The two pain series share a panel: dash and marker shape tell them apart in grey too.
    assert looks["pain-avg"] != looks["pain-worst"]
    assert looks["pain-avg"][0] is None and looks["pain-worst"][0] is not None
    assert looks["pain-avg"][1] is False and looks["pain-worst"][1] is True
    # The legend repeats each series' dash and shape next to its name.
    legend = root.find("svg:g[@class='legend']", NS)
    assert legend is not None
    dashes = [ln.get("stroke-dasharray") for ln in legend.findall("svg:line", NS)]
    assert dashes == [None, "5 3", None]


def test_the_review_line_is_labelled_in_words_not_only_purple() -> None:
    review = START + timedelta(days=20)
    root = parse(diary_chart_svg([entry(START)], plan([(START, "1.5")], review)))
    assert "review" in texts(root)
    line = root.find(".//svg:line[@class='review']", NS)
    step = root.find(".//svg:line[@class='step']", NS)
    assert line is not None and step is not None
    assert line.get("stroke-dasharray") is None and step.get("stroke-dasharray") is not None


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.integers(0, 400),
        st.tuples(
            st.one_of(st.none(), st.integers(0, 10)),
            st.one_of(st.none(), st.integers(0, 10)),
            st.one_of(st.none(), st.integers(0, 1440)),
        ).filter(lambda v: v[0] is None or v[1] is None or v[1] >= v[0]),  # worst >= average
        max_size=40,
    )
)
def test_the_table_holds_exactly_the_plotted_values_of_every_day(
    days: dict[int, tuple[int | None, int | None, int | None]],
) -> None:
    entries = [entry(START + timedelta(days=d), *values) for d, values in days.items()]
    rows = table_rows(html) if (html := diary_chart_table(entries, None)) else []
    expected = [
        (START + timedelta(days=d), values)
        for d, values in sorted(days.items())
        if values != (None, None, None)
    ]
    assert len(rows) == len(expected)
    for row, (day, (avg, worst, sit)) in zip(rows, expected, strict=True):
        assert row[0] == f"{day.day} {day.strftime('%b')} {day.year}"
        assert row[2] == ("not recorded" if avg is None else str(avg))
        assert row[3] == ("not recorded" if worst is None else str(worst))
        assert row[4] == ("not recorded" if sit is None else f"{sit} min")
