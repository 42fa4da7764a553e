"""Did LDN help? The diary judged against published benchmarks, with the days it rests on.

Method (rules ``followup.baseline_window`` and ``followup.response_immpact``):

- **Baseline**: mean daily average pain (0–10 NRS) over the 14 days before the first scheduled
  dose, as in the LDN fibromyalgia trial's 2-week baseline (younger2013). At least
  ``MIN_DAYS`` (7) recorded days are required — ldncare's own threshold, so that one or two
  unusual days cannot decide the figure.
- **Current**: mean daily average pain over the latest 14 days up to ``today`` (on treatment
  only), again with at least 7 recorded days. Missing days are simply left out; the result says
  how many days each mean rests on.
- **Change**: ``(baseline − current) / baseline × 100`` (younger2013's percent change).
- **Category** (IMMPACT, dworkin2008): ≥ 50 % substantial, ≥ 30 % moderate, 10–< 30 % minimal
  (IMMPACT names 10–20 % minimally important; 20–30 % lies below the moderate benchmark and is
  graded minimal here), < 10 % (or worse) non-response. PGIC "much improved" or better (1–2)
  counts as a responder by IMMPACT and is reported next to the pain figure.
- **Timing**: no verdict before the plan's review date (``Ldn.review_date``); until
  then the status is ``too_early`` with the date the verdict is due.

Arithmetic is exact (fractions) so that a reduction of exactly 30 % is graded moderate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

from ldncare.core.advice import Advice, RuleBook, response_advice, side_effect_advice
from ldncare.core.diary import PGIC_LABELS, DiaryEntry, review_date, scheduled_steps
from ldncare.core.plan_contract import PlanLike, ResponseStatus, ldn_of

WINDOW_DAYS = 14
MIN_DAYS = 7

SUBSTANTIAL = Fraction(50)
MODERATE = Fraction(30)
MINIMAL = Fraction(10)


@dataclass(frozen=True)
class Window:
    """The days a mean rests on."""

    start: date
    end: date
    days: int
    mean: Fraction | None

    def to_contract(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "days_recorded": self.days,
            "days_in_window": (self.end - self.start).days + 1,
            "mean": None if self.mean is None else round(float(self.mean), 2),
        }


@dataclass(frozen=True)
class SittingChange:
    baseline: Window
    current: Window

    @property
    def change_minutes(self) -> Fraction | None:
        if self.baseline.mean is None or self.current.mean is None:
            return None
        return self.current.mean - self.baseline.mean

    def to_contract(self) -> dict[str, Any]:
        change = self.change_minutes
        pct: float | None = None
        if change is not None and self.baseline.mean:
            pct = round(float(change / self.baseline.mean * 100), 1)
        return {
            "baseline": self.baseline.to_contract(),
            "current": self.current.to_contract(),
            "change_minutes": None if change is None else round(float(change), 1),
            "percent_change": pct,
        }


@dataclass(frozen=True)
class ResponseAssessment:
    status: ResponseStatus
    today: date
    first_dose: date
    due_date: date
    baseline: Window
    current: Window
    percent_reduction: Fraction | None
    pgic: int | None
    pgic_day: date | None
    sitting: SittingChange
    reason: str | None
    advice: tuple[Advice, ...] = field(default=())
    citations: tuple[str, ...] = field(default=())

    @property
    def percent(self) -> float | None:
        """Percent reduction rounded to one decimal for display."""
        return None if self.percent_reduction is None else round(float(self.percent_reduction), 1)

    def citation_ids(self) -> tuple[str, ...]:
        return self.citations

    def to_contract(self) -> dict[str, Any]:
        """The ``response`` object added to the plan JSON."""
        pgic: dict[str, Any] | None = None
        if self.pgic is not None:
            pgic = {
                "value": self.pgic,
                "label": PGIC_LABELS[self.pgic],
                "day": None if self.pgic_day is None else self.pgic_day.isoformat(),
                "responder": self.pgic <= 2,
            }
        return {
            "status": self.status,
            "as_of": self.today.isoformat(),
            "first_dose": self.first_dose.isoformat(),
            "baseline": self.baseline.to_contract(),
            "current": self.current.to_contract(),
            "percent_reduction": self.percent,
            "due_date": self.due_date.isoformat(),
            "reason": self.reason,
            "pgic": pgic,
            "sitting_tolerance": self.sitting.to_contract(),
            "advice": [a.to_contract() for a in self.advice],
            "citations": list(self.citations),
        }


def _window(entries: Sequence[DiaryEntry], start: date, end: date, attr: str) -> Window:
    values = [
        getattr(e, attr) for e in entries if start <= e.day <= end and getattr(e, attr) is not None
    ]
    mean = Fraction(sum(values), len(values)) if values else None
    return Window(start=start, end=end, days=len(values), mean=mean)


def categorize(percent: Fraction) -> ResponseStatus:
    if percent >= SUBSTANTIAL:
        return "responder_substantial"
    if percent >= MODERATE:
        return "responder_moderate"
    if percent >= MINIMAL:
        return "minimal"
    return "non_responder"


def _dedupe(entries: Sequence[DiaryEntry]) -> list[DiaryEntry]:
    """One entry per day (the last given wins), sorted by day."""
    by_day: dict[date, DiaryEntry] = {}
    for e in entries:
        by_day[e.day] = e
    return [by_day[d] for d in sorted(by_day)]


def assess_response(
    entries: Sequence[DiaryEntry],
    plan: PlanLike,
    *,
    today: date,
    evidence: RuleBook,
) -> ResponseAssessment:
    """Judge the response to LDN from the diary, against the plan's LDN part (the typed part,
    a parsed plan or a stored plan dict; parsed once here)."""
    ldn = ldn_of(plan)
    diary = [e for e in _dedupe(entries) if e.day <= today]
    steps = scheduled_steps(ldn)
    first_dose = steps[0].start
    due = review_date(ldn)

    baseline = _window(
        diary, first_dose - timedelta(days=WINDOW_DAYS), first_dose - timedelta(1), "pain_avg"
    )
    cur_start = max(today - timedelta(days=WINDOW_DAYS - 1), first_dose)
    cur_end = max(today, cur_start)
    current = (
        _window(diary, cur_start, cur_end, "pain_avg")
        if today >= first_dose
        else Window(start=first_dose, end=first_dose, days=0, mean=None)
    )
    sitting = SittingChange(
        baseline=_window(diary, baseline.start, baseline.end, "sitting_minutes"),
        current=_window(diary, current.start, current.end, "sitting_minutes")
        if today >= first_dose
        else Window(start=first_dose, end=first_dose, days=0, mean=None),
    )
    on_treatment = [e for e in diary if e.day >= first_dose and e.pgic is not None]
    pgic_entry = on_treatment[-1] if on_treatment else None

    percent: Fraction | None = None
    if baseline.mean is not None and baseline.mean > 0 and current.mean is not None:
        percent = (baseline.mean - current.mean) / baseline.mean * 100

    reason: str | None = None
    status: ResponseStatus
    if baseline.days < MIN_DAYS:
        reason = (
            f"baseline rests on {baseline.days} recorded day(s) between "
            f"{baseline.start.isoformat()} and {baseline.end.isoformat()}; at least {MIN_DAYS} "
            "are needed"
        )
    elif baseline.mean == 0:
        reason = "baseline pain was 0, so a percentage reduction cannot be computed"
    elif today >= due and current.days < MIN_DAYS:
        reason = (
            f"the latest window ({current.start.isoformat()} to {current.end.isoformat()}) has "
            f"{current.days} recorded day(s); at least {MIN_DAYS} are needed"
        )

    if today < due:
        status = "too_early"
    elif reason is not None or percent is None:
        status = "insufficient_data"
        reason = reason or "no pain scores recorded"
    else:
        status = categorize(percent)

    advice: list[Advice] = []
    if today >= first_dose:
        advice += side_effect_advice(diary, today=today, book=evidence)
    advice += response_advice(
        status,
        diary,
        ldn,
        today=today,
        book=evidence,
        percent=None if percent is None else round(float(percent), 1),
        due_date=due,
        pgic=pgic_entry.pgic if pgic_entry else None,
        insufficient_reason=reason,
    )
    if status == "too_early" and reason is not None:
        # Say now, not at the review, that the baseline will not support a verdict.
        advice += response_advice(
            "insufficient_data",
            diary,
            ldn,
            today=today,
            book=evidence,
            percent=None,
            due_date=due,
            pgic=None,
            insufficient_reason=reason,
        )
    basis = ("followup.baseline_window", "followup.response_immpact")
    citations: list[str] = []
    for cid in [c for rid in basis for c in evidence.rule(rid).citations] + [
        c for a in advice for c in a.citations
    ]:
        if cid not in citations:
            citations.append(cid)
    return ResponseAssessment(
        status=status,
        today=today,
        first_dose=first_dose,
        due_date=due,
        baseline=baseline,
        current=current,
        percent_reduction=percent,
        pgic=pgic_entry.pgic if pgic_entry else None,
        pgic_day=pgic_entry.day if pgic_entry else None,
        sitting=sitting,
        reason=reason,
        advice=tuple(advice),
        citations=tuple(citations),
    )
