"""LDN titration: from options to a dated, bedtime schedule that never exceeds the maximum.

The limits (start range, target range, maximum, review window, formulation resolution) come from
the evidence base (``ldn.yaml``); this module only does arithmetic and refuses options outside
them with a message that names the option, the value and the accepted range.

The review rule (one rule, used everywhere): the trial is counted once the target dose is
reached, so the review date is ``review_weeks`` (within ``trial_weeks``) after the day the
target is reached, and never before the plan's first day (:func:`review_date_for`).
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
    #: LDN already taken (continue or adjust from it, never restart at the start dose); set by
    #: :mod:`ldncare.core.course` from the record, not by the clinician.
    current_dose: Dose | None = None
    #: The day the current dose began, when known (its trial is counted from then).
    current_since: date | None = None


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


def review_date_for(target_reached: date, review_weeks: int, start: date) -> date:
    """The review rule: ``review_weeks`` after the target is reached, not before ``start``."""
    return max(target_reached + timedelta(weeks=review_weeks), start)


def _continuing_doses(current: Dose, target: Dose, step: Dose, maximum: Dose) -> list[Dose]:
    if current.value <= 0 or current > maximum:
        raise InvalidInput(
            f"current LDN dose {current} is outside 0 to {maximum}; a dose above the LDN "
            "maximum is not low-dose naltrexone",
            field="current_dose",
        )
    if current >= target:
        # At the target already (continue), or above a lower target the clinician chose (adjust).
        return [target if current > target else current]
    doses = [current]
    while doses[-1] < target:
        doses.append(Dose(min(doses[-1].value + step.value, target.value), "mg"))
    return doses


def titrate(options: TitrationOptions, dosing: LdnDosing) -> Schedule:
    """Build the dated schedule, or raise :class:`InvalidInput` naming the bad option."""
    d = dosing.defaults
    start_dose = _as_dose(options.start_dose, d.start_dose, "start_dose")
    target = _as_dose(options.target_dose, d.target_dose, "target_dose")
    step_dose = _as_dose(options.step_dose, d.step_dose, "step_dose")
    formulation = _formulation(dosing, options.formulation)
    time_of_day: TimeOfDay = options.time_of_day or dosing.time_of_day
    maximum = dosing.max_daily_dose.to_mg()

    current = options.current_dose.to_mg() if options.current_dose is not None else None
    lo, hi = dosing.start_dose.min.to_mg(), dosing.start_dose.max.to_mg()
    if current is None and not lo <= start_dose <= hi:
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
    if current is None and target < start_dose:
        raise InvalidInput(
            f"target dose {target} is below the start dose {start_dose}; the target must be "
            "at least the start dose",
            field="target_dose",
        )
    if step_dose.value <= 0:
        raise InvalidInput(f"step dose {step_dose} must be greater than 0 mg", field="step_dose")
    checked = [("target_dose", target), ("step_dose", step_dose)]
    if current is None:
        checked.insert(0, ("start_dose", start_dose))
    for name, dose in checked:
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

    if current is not None:
        doses = _continuing_doses(current, target, step_dose, maximum)
    else:
        doses = [start_dose]
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

    starts = [options.start]
    for i in range(1, len(doses)):
        starts.append(starts[-1] + timedelta(days=step_days + options.holds.get(i, 0)))
    target_reached = starts[-1]
    if (
        current is not None
        and len(doses) == 1
        and current <= target
        and options.current_since is not None
        and options.current_since <= options.start
    ):
        target_reached = options.current_since  # at the target since then: the trial runs
    review_date = review_date_for(target_reached, review_weeks, options.start)
    steps: list[TitrationStep] = []
    for i, (dose, day) in enumerate(zip(doses, starts, strict=True), start=1):
        end = review_date if i == len(doses) else starts[i] - timedelta(days=1)
        text = _instruction(dose, formulation, time_of_day)
        if current is not None and i == 1 and dose == current:
            # Already taken: say so, and when the review is due today, that the dose goes on
            # until the review decides (not a one-day course).
            text = f"Continue the current dose: {text}"
            if len(doses) == 1 and review_date == options.start:
                text += "; keep taking it until the review, which is due now"
        steps.append(TitrationStep(i, day, end, dose, time_of_day, text))
    weeks = Decimal((steps[-1].start_date - options.start).days) / 7
    notes: list[str] = []
    wlo, whi = dosing.titration_weeks.min, dosing.titration_weeks.max
    if len(steps) > 1 and not wlo <= weeks <= whi:
        notes.append(
            f"The target is reached after {format_decimal(weeks.quantize(Decimal('0.1')))} weeks, "
            f"outside the usual {wlo} to {whi} weeks."
        )
    if current is not None and target_reached < options.start:
        notes.append(
            f"Already at {steps[-1].dose} since {target_reached}: the trial is counted from then, "
            + (
                "so the review is due now."
                if review_date == options.start
                else f"so the review falls on {review_date}."
            )
        )
    assert all(s.dose <= maximum for s in steps)  # the one invariant that must never break
    assert review_date == review_date_for(target_reached, review_weeks, options.start)
    return Schedule(tuple(steps), review_date, target_reached, formulation, maximum, tuple(notes))
