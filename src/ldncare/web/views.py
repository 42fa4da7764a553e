"""View models shared by the pages, the JSON API and the handout: one code path for each fact.

Nothing here writes HTML; templates and API models read these dataclasses and dicts.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date
from decimal import Decimal
from typing import Any

from ldncare.core.diary import DiaryEntry, ScheduledStep, scheduled_steps, step_on
from ldncare.core.plan_contract import PlanContract, PlanLike, ldn_of, read_ldn, read_plan
from ldncare.core.quantity import format_decimal
from ldncare.core.response import ResponseAssessment, assess_response
from ldncare.core.status import Status, plan_facts, status_from_facts
from ldncare.evidence.models import Evidence
from ldncare.store import repository
from ldncare.store.models import ReviewNoteRow
from ldncare.store.summaries import PatientSummary


def steps_of(contract: PlanLike | None) -> list[ScheduledStep]:
    """The LDN steps, sorted by start; none without a plan or for a plan without LDN. Takes
    the typed ``ldn`` part (what the dashboard and the charts load), a parsed plan or a stored
    plan dict."""
    if contract is None:
        return []
    return scheduled_steps(contract, allow_empty=True)


def judge(
    entries: Sequence[DiaryEntry],
    contract: PlanLike | None,
    today: date,
    evidence: Evidence,
) -> ResponseAssessment | None:
    """The response judgement, or None when the plan has no LDN schedule to judge."""
    if contract is None:
        return None
    # Parsed once: assess_response takes the typed part as it is.
    ldn = ldn_of(contract)
    if not ldn.schedule or ldn.review_date is None:
        return None
    return assess_response(entries, ldn, today=today, evidence=evidence)


def patient_status(
    contract: PlanLike | None,
    entries: Sequence[DiaryEntry],
    today: date,
    evidence: Evidence,
    last_review: ReviewNoteRow | None = None,
    alerts: Sequence[str] = (),
) -> Status:
    """Where the patient stands and what needs the clinician's attention (``alerts``: the
    critical screening hits of the patient's current state, see ``status_from_facts``)."""
    return status_from_facts(
        None if contract is None else plan_facts(contract),
        entries,
        today,
        _reviewed_on(last_review),
        lambda: judge(entries, contract, today, evidence) if contract is not None else None,
        alerts,
    )


def summary_status(summary: PatientSummary, today: date, evidence: Evidence) -> Status:
    """The dashboard's status of one patient, from the plan summary and the diary it loaded."""
    if summary.as_of is not None and summary.as_of != today:
        raise ValueError(f"the summary was read for {summary.as_of}, not {today}")
    entries = [repository.entry_from_row(r) for r in summary.diary]
    # Only the ``ldn`` part was loaded (when a verdict needs it): parsed alone, once.
    contract = None if summary.contract is None or summary.ldn is None else read_ldn(summary.ldn)

    def assess() -> ResponseAssessment | None:
        if contract is None:
            raise AssertionError("patient_summaries loads the contract a verdict needs")
        return judge(entries, contract, today, evidence)

    reviewed = _reviewed_on(summary.last_review)
    return status_from_facts(summary.facts, entries, today, reviewed, assess, summary.alerts)


def _reviewed_on(note: ReviewNoteRow | None) -> date | None:
    """The local day the note was written: "today" is the local date (the app's clock), while
    notes are stored in UTC, so a note written early in a day east of UTC (or late in one west
    of it) has a different UTC date."""
    if note is None:
        return None
    at = note.created_at
    if at.tzinfo is None:  # SQLite gives the stored UTC time back without its zone
        at = at.replace(tzinfo=UTC)
    return at.astimezone().date()


# --- tonight's dose and the calendar -------------------------------------------------------------


@dataclass(frozen=True)
class Tonight:
    day: date
    dose_mg: Decimal | None
    instruction: str | None
    step: int | None
    steps: int
    next_change: date | None
    next_dose_mg: Decimal | None

    @property
    def dose_text(self) -> str:
        return "no LDN scheduled" if self.dose_mg is None else f"{format_decimal(self.dose_mg)} mg"

    def to_contract(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "dose_mg": None if self.dose_mg is None else float(self.dose_mg),
            "instruction": self.instruction,
            "step": self.step,
            "steps": self.steps,
            "next_change": None if self.next_change is None else self.next_change.isoformat(),
            "next_dose_mg": None if self.next_dose_mg is None else float(self.next_dose_mg),
        }


def tonight(contract: PlanContract | Mapping[str, Any] | None, today: date) -> Tonight:
    plan = None if contract is None else read_plan(contract)
    steps = steps_of(plan)
    step = step_on(steps, today)
    number = None
    instruction = None
    if step is not None and plan is not None:
        for item in plan.ldn.schedule:
            if item.start_date == step.start:
                number = item.step
                instruction = item.instruction
    later = [s for s in steps if s.start > today]
    return Tonight(
        day=today,
        dose_mg=None if step is None else step.dose_mg,
        instruction=instruction,
        step=number,
        steps=len(steps),
        next_change=later[0].start if later else None,
        next_dose_mg=later[0].dose_mg if later else None,
    )


@dataclass(frozen=True)
class CalendarDay:
    day: date | None
    dose: str = ""
    step_start: bool = False
    review: bool = False
    today: bool = False
    step: int = 0


@dataclass(frozen=True)
class CalendarMonth:
    title: str
    weeks: list[list[CalendarDay]] = field(default_factory=list)


def schedule_calendar(
    contract: PlanContract | Mapping[str, Any] | None, today: date
) -> list[CalendarMonth]:
    """Month grids (Monday first) from the first dose to the review date."""
    plan = None if contract is None else read_plan(contract)
    steps = steps_of(plan)
    if not steps or plan is None:
        return []
    review_day = plan.ldn.review_date
    last = max(review_day or steps[-1].start, steps[-1].end or steps[-1].start)
    numbers = {s.start: i + 1 for i, s in enumerate(steps)}
    months: list[CalendarMonth] = []
    year, month = steps[0].start.year, steps[0].start.month
    while (year, month) <= (last.year, last.month):
        weeks: list[list[CalendarDay]] = []
        for week in calendar.Calendar(firstweekday=0).monthdatescalendar(year, month):
            row: list[CalendarDay] = []
            for d in week:
                if d.month != month:
                    row.append(CalendarDay(None))
                    continue
                step = step_on(steps, d)
                row.append(
                    CalendarDay(
                        day=d,
                        dose="" if step is None else f"{format_decimal(step.dose_mg)} mg",
                        step_start=d in numbers,
                        review=d == review_day,
                        today=d == today,
                        step=0 if step is None else numbers[step.start],
                    )
                )
            weeks.append(row)
        months.append(CalendarMonth(f"{calendar.month_name[month]} {year}", weeks))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


# --- patient guidance (the handout and the patient pages) ---------------------------------------

#: Evidence statements shown to patients, by heading; each keeps its citations.
GUIDE_STATEMENTS: dict[str, tuple[str, ...]] = {
    "how": ("ldn.dose.timing", "ldn.titration.start"),
    "expect": ("ldn.response.delayed", "ldn.trial.length"),
    "side_effects": ("ldn.side_effects.common", "ldn.side_effects.transient"),
    "seek_help": (
        "ldn_safety.opioids.blockade",
        "ldn_safety.opioids.contraindicated",
        "ldn_safety.surgery.hold",
    ),
}
#: Care items shown under each heading.
GUIDE_CARE: dict[str, tuple[str, ...]] = {
    "expect": ("care.expectations",),
    "side_effects": ("care.monitoring",),
    "non_drug": ("care.physical_therapy", "care.lifestyle", "care.nerve_block", "care.referral"),
}


@dataclass(frozen=True)
class GuideItem:
    text: str
    numbers: tuple[int, ...]
    title: str = ""
    basis: str = ""


@dataclass(frozen=True)
class Guide:
    sections: dict[str, tuple[GuideItem, ...]]
    references: tuple[tuple[int, str, str], ...]


def source_link(source: Any) -> str:
    if getattr(source, "pmid", None):
        return f"https://pubmed.ncbi.nlm.nih.gov/{source.pmid}/"
    if getattr(source, "doi", None):
        return f"https://doi.org/{source.doi}"
    return str(getattr(source, "url", None) or "")


def patient_guide(evidence: Evidence) -> Guide:
    """The patient-facing texts, each from the evidence base with its numbered references."""
    numbers: dict[str, int] = {}

    def nums(ids: Sequence[str]) -> tuple[int, ...]:
        for cid in ids:
            numbers.setdefault(cid, len(numbers) + 1)
        return tuple(sorted(numbers[c] for c in ids))

    care = {c.id: c for c in evidence.care}
    sections: dict[str, tuple[GuideItem, ...]] = {}
    for key in ("how", "expect", "side_effects", "non_drug", "seek_help"):
        items: list[GuideItem] = []
        for sid in GUIDE_STATEMENTS.get(key, ()):
            st = evidence.statements.get(sid)
            if st is not None:
                items.append(GuideItem(st.text, nums(st.citations), basis=st.id))
        for cid in GUIDE_CARE.get(key, ()):
            item = care.get(cid)
            if item is not None:
                items.append(GuideItem(item.text, nums(item.citations), item.title, item.id))
        sections[key] = tuple(items)
    # Each reference with its population, design, size and year (issue 22 item 4).
    refs = tuple(
        (
            n,
            f"{evidence.sources[cid].reference_text()} [{evidence.sources[cid].fit_text()}]",
            source_link(evidence.sources[cid]),
        )
        for cid, n in sorted(numbers.items(), key=lambda kv: kv[1])
        if cid in evidence.sources
    )
    return Guide(sections, refs)
