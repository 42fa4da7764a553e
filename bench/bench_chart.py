"""In-process benchmark of the diary chart: a year of diary with the plan's steps and review.

"Cold" is the first view after a diary entry or a plan change (the memo is cleared before every
run); "warm" is a repeated view of the same diary, served from the memo.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from common import Result, at_most, info, median, timings_ms

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "src" / "ldncare" / "examples" / "pn-example.yaml"
START = date(2026, 1, 5)


def year_of_diary(days: int = 365) -> tuple[list[Any], dict[str, Any]]:
    """``days`` diary days from START (a few days missing, as in real diaries) and a plan
    starting the same day, so its titration steps and review date fall on the chart."""
    from ldncare.core.diary import parse_entry
    from ldncare.patient_file import load_patient
    from ldncare.web.service import plan_contract

    today = START + timedelta(days=days)
    contract = plan_contract(load_patient(EXAMPLE), start=START, today=START, nantes=None)
    entries = []
    for d in range(days):
        if d % 17 == 16:
            continue
        entries.append(
            parse_entry(
                {
                    "day": (START + timedelta(days=d)).isoformat(),
                    "pain_avg": max(1, 7 - d // 60 + (d * 7919) % 3 - 1),
                    "pain_worst": min(10, max(2, 9 - d // 70 + (d * 104729) % 3 - 1)),
                    "sitting_minutes": 20 + d // 4 + (d * 31) % 11,
                    "dose_taken": True,
                },
                today=today,
            )
        )
    return entries, contract


def bench_chart(quick: bool) -> list[Result]:
    from ldncare.web import charts

    entries, contract = year_of_diary()
    title = "Pain and sitting tolerance"

    def cold() -> str:
        charts._chart.cache_clear()
        return charts.diary_chart_svg(entries, contract, title=title)

    def warm() -> str:
        return charts.diary_chart_svg(entries, contract, title=title)

    t_cold = timings_ms(cold, repeat=20 if quick else 100)
    svg = cold()
    t_warm = timings_ms(warm, repeat=200 if quick else 2000)
    return [
        at_most("chart", "diary chart, 365 days, cold (median)", median(t_cold), "ms", 100.0),
        info("chart", "diary chart, 365 days, warm (median)", median(t_warm), "ms"),
        info("chart", "diary chart, 365 days, SVG size", len(svg) / 1024, "KiB"),
    ]
