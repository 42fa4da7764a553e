"""LDN titration: from options to a dated, bedtime schedule that never exceeds the maximum.

The limits (start range, target range, maximum, review window, formulation resolution) come from
the evidence base (``ldn.yaml``); this module only does arithmetic and refuses options outside
them with a message that names the option, the value and the accepted range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from ldncare.core.quantity import Dose, format_decimal, parse_dose
from ldncare.errors import InvalidInput
from ldncare.evidence.models import Formulation, LdnDosing

TimeOfDay = Literal["bedtime", "morning"]

#: Hard limits on option values that are not clinical facts but sanity bounds on input.
MAX_STEP_DAYS = 56
MAX_HOLD_DAYS = 84


@dataclass(frozen=True)
class TitrationOptions:
    """What a clinician may choose. ``None`` means "use the evidence base default"."""

    start: date
    start_dose: Dose | None = None
    target_dose: Dose | None = None
    step_dose: Dose | None = None
    step_days: int | None = None
    review_weeks: int | None = None
    formulation: str | None = None
    time_of_day: TimeOfDay | None = None
    #: Slow titration: every step lasts twice as long.
    slow: bool = False
    #: Extra days to hold at a step, keyed by step number (1 = the start dose).
    holds: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TitrationStep:
    number: int
    start_date: date
    end_date: date
    dose: Dose
    time_of_day: TimeOfDay
    instruction: str

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1


@dataclass(frozen=True)
class Schedule:
    steps: tuple[TitrationStep, ...]
    review_date: date
    target_reached: date
    formulation: Formulation
    max_daily_dose: Dose
    notes: tuple[str, ...] = ()

    @property
    def start(self) -> date:
        return self.steps[0].start_date

    def rows(self) -> list[dict[str, object]]:
        """The steps as the ``ldn.schedule`` rows of the plan contract."""
        return [
            {
                "step": s.number,
                "start_date": s.start_date.isoformat(),
                "end_date": s.end_date.isoformat(),
                "dose_mg": float(s.dose.mg_value),
                "dose": {"value": float(s.dose.mg_value), "unit": "mg"},
                "time_of_day": s.time_of_day,
                "instruction": s.instruction,
            }
            for s in self.steps
        ]

    def dose_on(self, day: date) -> Dose | None:
        for step in self.steps:
            if step.start_date <= day <= step.end_date:
                return step.dose
        return None


def _as_dose(value: Dose | str | None, default: Dose, name: str) -> Dose:
    if value is None:
        return default.to_mg()
    dose = value if isinstance(value, Dose) else parse_dose(value, field=name)
    return dose.to_mg()


def _range_text(low: Dose, high: Dose) -> str:
    return f"{low.to_mg()} to {high.to_mg()}"


def _check_resolution(dose: Dose, formulation: Formulation, name: str) -> None:
    step = formulation.resolution.mg_value
    if dose.mg_value % step != 0:
        raise InvalidInput(
            f"{dose} cannot be measured with {formulation.label}; use a multiple of "
            f"{formulation.resolution}",
            field=name,
        )


def _formulation(dosing: LdnDosing, wanted: str | None) -> Formulation:
    if wanted is None:
        return dosing.formulations[0]
    # Accept the full id or a word of it ("liquid", "capsule"), as long as it is unambiguous.
    exact = [f for f in dosing.formulations if f.id == wanted]
    word = wanted.lower()
    partial = [f for f in dosing.formulations if any(t.startswith(word) for t in f.id.split("_"))]
    if exact or len(partial) == 1:
        return (exact or partial)[0]
    accepted = ", ".join(f.id for f in dosing.formulations)
    raise InvalidInput(f"unknown formulation {wanted!r}; accepted: {accepted}", field="formulation")


def _instruction(dose: Dose, formulation: Formulation, time_of_day: TimeOfDay) -> str:
    when = "at bedtime" if time_of_day == "bedtime" else "in the morning"
    if "liquid" in formulation.id:
        # Liquid strength is 1 mg/mL by construction of the shipped formulation list.
        return f"{dose} ({format_decimal(dose.mg_value)} mL of 1 mg/mL liquid) once daily {when}"
    return f"{dose} once daily {when}"


def titrate(options: TitrationOptions, dosing: LdnDosing) -> Schedule:
    """Build the dated schedule, or raise :class:`InvalidInput` naming the bad option."""
    d = dosing.defaults
    start_dose = _as_dose(options.start_dose, d.start_dose, "start_dose")
    target = _as_dose(options.target_dose, d.target_dose, "target_dose")
    step_dose = _as_dose(options.step_dose, d.step_dose, "step_dose")
    formulation = _formulation(dosing, options.formulation)
    time_of_day: TimeOfDay = options.time_of_day or dosing.time_of_day
    maximum = dosing.max_daily_dose.to_mg()

    lo, hi = dosing.start_dose.min.to_mg(), dosing.start_dose.max.to_mg()
    if not lo <= start_dose <= hi:
        raise InvalidInput(
            f"start dose {start_dose} is outside the LDN start range {_range_text(lo, hi)}",
            field="start_dose",
        )
    tlo, thi = dosing.target_dose.min.to_mg(), dosing.target_dose.max.to_mg()
    if target > maximum:
        raise InvalidInput(
            f"target dose {target} is above the LDN maximum of {maximum} a day "
            f"(accepted targets: {_range_text(tlo, thi)})",
            field="target_dose",
        )
    if not tlo <= target <= thi:
        raise InvalidInput(
            f"target dose {target} is outside the LDN target range {_range_text(tlo, thi)}",
            field="target_dose",
        )
    if target < start_dose:
        raise InvalidInput(
            f"target dose {target} is below the start dose {start_dose}; the target must be "
            "at least the start dose",
            field="target_dose",
        )
    if step_dose.value <= 0:
        raise InvalidInput(f"step dose {step_dose} must be greater than 0 mg", field="step_dose")
    for name, dose in (
        ("start_dose", start_dose),
        ("target_dose", target),
        ("step_dose", step_dose),
    ):
        _check_resolution(dose, formulation, name)

    step_days = d.step_days if options.step_days is None else options.step_days
    if not 1 <= step_days <= MAX_STEP_DAYS:
        raise InvalidInput(
            f"step length {step_days} days is outside 1 to {MAX_STEP_DAYS} days",
            field="step_days",
        )
    if options.slow:
        step_days *= 2
    review_weeks = d.review_weeks if options.review_weeks is None else options.review_weeks
    rlo, rhi = dosing.trial_weeks.min, dosing.trial_weeks.max
    if not rlo <= review_weeks <= rhi:
        raise InvalidInput(
            f"review after {review_weeks} weeks is outside the {rlo} to {rhi} week trial window",
            field="review_weeks",
        )

    doses: list[Dose] = [start_dose]
    while doses[-1] < target:
        doses.append(Dose(min(doses[-1].value + step_dose.value, target.value), "mg"))
    for number, extra in options.holds.items():
        if not 1 <= number <= len(doses):
            raise InvalidInput(
                f"cannot hold step {number}: this schedule has steps 1 to {len(doses)}",
                field="holds",
            )
        if not 0 <= extra <= MAX_HOLD_DAYS:
            raise InvalidInput(
                f"hold of {extra} days at step {number} is outside 0 to {MAX_HOLD_DAYS} days",
                field="holds",
            )

    review_date = options.start + timedelta(weeks=review_weeks)
    steps: list[TitrationStep] = []
    day = options.start
    for i, dose in enumerate(doses, start=1):
        last = i == len(doses)
        hold = options.holds.get(i, 0)
        end = review_date if last else day + timedelta(days=step_days + hold - 1)
        if day > review_date or (not last and end >= review_date):
            raise InvalidInput(
                f"this titration reaches {dose} only after the review date {review_date}; "
                f"use shorter steps or fewer holds, or review later (up to {rhi} weeks)",
                field="step_days",
            )
        steps.append(
            TitrationStep(
                i, day, end, dose, time_of_day, _instruction(dose, formulation, time_of_day)
            )
        )
        day = end + timedelta(days=1)

    target_reached = steps[-1].start_date
    weeks = Decimal((target_reached - options.start).days) / 7
    notes: list[str] = []
    wlo, whi = dosing.titration_weeks.min, dosing.titration_weeks.max
    if len(steps) > 1 and not wlo <= weeks <= whi:
        notes.append(
            f"The target is reached after {format_decimal(weeks.quantize(Decimal('0.1')))} weeks, "
            f"outside the usual {wlo} to {whi} weeks."
        )
    assert all(s.dose <= maximum for s in steps)  # the one invariant that must never break
    return Schedule(tuple(steps), review_date, target_reached, formulation, maximum, tuple(notes))
