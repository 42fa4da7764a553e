"""The dose schedule as an iCalendar file: one all-day event per dose step, one for the review."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from icalendar import Calendar, Event

from ldncare.core.plan_contract import PlanContract, read_plan
from ldncare.core.quantity import format_decimal
from ldncare.web.views import steps_of


def plan_calendar(
    contract: PlanContract | Mapping[str, Any], *, patient_key: str, version: int
) -> bytes:
    """ICS bytes for a plan contract. UIDs are stable per patient, plan version and step, so a
    re-import updates events instead of duplicating them."""
    plan = read_plan(contract)
    cal = Calendar()
    cal.add("prodid", "-//ldncare//LDN plan//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", "LDN schedule")
    stamp = datetime.now(UTC)
    instructions = {s.start_date: s.instruction for s in plan.ldn.schedule}
    for number, step in enumerate(steps_of(plan), start=1):
        event = Event()
        dose = f"{format_decimal(step.dose_mg)} mg"
        event.add("uid", f"ldncare-{patient_key}-v{version}-step{number}@ldncare")
        event.add("dtstamp", stamp)
        event.add("summary", f"LDN step {number}: {dose} daily")
        event.add("dtstart", step.start)
        # DTEND of an all-day event is exclusive; an open-ended last step lasts one day here.
        end = (step.end or step.start) + timedelta(days=1)
        event.add("dtend", end)
        event.add("description", instructions.get(step.start) or f"{dose} once daily")
        event.add("transp", "TRANSPARENT")
        cal.add_component(event)
    day = plan.ldn.review_date
    if day is not None:
        event = Event()
        event.add("uid", f"ldncare-{patient_key}-v{version}-review@ldncare")
        event.add("dtstamp", stamp)
        event.add("summary", "LDN review with your clinician")
        event.add("dtstart", day)
        event.add("dtend", day + timedelta(days=1))
        event.add(
            "description",
            "Review of the LDN trial: bring your diary (pain and sitting tolerance).",
        )
        cal.add_component(event)
    return bytes(cal.to_ical())
