"""Typed LDN parts of a plan for tests that read nothing else (the diary checks, the charts,
the ask engine's patient context): an ``Ldn`` built from just what the test is about.

The fields the test does not name get neutral values (no findings, no notes, no citations, the
largest scheduled dose as the daily maximum); the model still checks every field.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from ldncare.core.plan_contract import Finding, Ldn

#: One schedule step: first day, last day, mg a day (and the time of day, bedtime if left out).
Step = tuple[date | str, date | str, float] | tuple[date | str, date | str, float, str]


def finding(
    rule: str,
    message: str,
    *,
    severity: str = "warning",
    citations: Sequence[str] = (),
    rationale: str = "",
) -> Finding:
    return Finding.model_validate(
        {
            "rule": rule,
            "severity": severity,
            "message": message,
            "rationale": rationale,
            "citations": list(citations),
        }
    )


def ldn_part(
    schedule: Sequence[Step] = (),
    review_date: date | str | None = None,
    *,
    eligibility: str = "eligible",
    findings: Sequence[Finding] = (),
    target_reached: date | str | None = None,
) -> Ldn:
    steps: list[dict[str, Any]] = []
    for number, (start, end, dose_mg, *time) in enumerate(schedule, start=1):
        time_of_day = time[0] if time else "bedtime"
        steps.append(
            {
                "step": number,
                "start_date": start,
                "end_date": end,
                "dose_mg": dose_mg,
                "dose": {"value": dose_mg, "unit": "mg"},
                "time_of_day": time_of_day,
                "instruction": f"{dose_mg:g} mg at {time_of_day}",
            }
        )
    return Ldn.model_validate(
        {
            "eligibility": eligibility,
            "findings": list(findings),
            "schedule": steps,
            "review_date": review_date,
            "target_reached": target_reached,
            "max_daily_dose_mg": max((s["dose_mg"] for s in steps), default=0.0),
            "formulation": None,
            "notes": [],
            "citations": [],
        }
    )
