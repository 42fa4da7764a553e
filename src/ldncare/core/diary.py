"""The patient's daily diary while trying LDN, and how one day compares with the plan.

One entry per day. Every scale is fixed and documented here so that a stored diary means the same
thing years later:

- ``pain_avg`` / ``pain_worst``: 0–10 numeric rating scale (NRS) of pain over the day, whole
  numbers; 0 = no pain, 10 = worst pain imaginable (the scale IMMPACT recommends, dworkin2008).
- ``sitting_minutes``: how long the patient could sit before pain forced them to stand, in
  minutes (0–1440). Sitting tolerance is the everyday function that pudendal neuralgia limits
  (pain worsened by sitting is a Nantes criterion, labat2008).
- ``sleep_quality``: 0–10, **higher is better** (0 = worst possible night, 10 = best possible
  night), so that it reads in the same direction as a good day.
- ``pgic``: Patient Global Impression of Change, 1–7: 1 very much improved, 2 much improved,
  3 minimally improved, 4 no change, 5 minimally worse, 6 much worse, 7 very much worse.
- ``dose_mg``: the LDN dose actually taken, in milligrams. Text input must carry its unit
  ("1.5 mg", "1500 mcg"); a bare number in text is refused because the unit is what makes a dose
  safe to read. Programmatic numbers are read as milligrams (the field name says so).

The core is pure: the caller passes ``today`` (future dates are refused relative to it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ldncare.core.plan_contract import PlanLike, ldn_of
from ldncare.core.quantity import Dose, _to_decimal, format_decimal, parse_dose
from ldncare.errors import InvalidInput

SideEffectKind = Literal["vivid_dreams", "sleep_disturbance", "headache", "nausea_gi", "other"]
SideEffectSeverity = Literal["mild", "moderate", "severe"]
TimeOfDay = Literal["bedtime", "morning"]

SIDE_EFFECT_KINDS: tuple[str, ...] = (
    "vivid_dreams",
    "sleep_disturbance",
    "headache",
    "nausea_gi",
    "other",
)
SEVERITIES: tuple[str, ...] = ("mild", "moderate", "severe")

#: PGIC wording, 1..7 (Guy's 7-point global impression of change, as used by IMMPACT).
PGIC_LABELS: dict[int, str] = {
    1: "very much improved",
    2: "much improved",
    3: "minimally improved",
    4: "no change",
    5: "minimally worse",
    6: "much worse",
    7: "very much worse",
}

MAX_NOTES = 2000


class SideEffect(BaseModel):
    """One side effect on one day, from the fixed list, with its severity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    effect: SideEffectKind
    severity: SideEffectSeverity
    note: str | None = Field(default=None, max_length=500)

    @field_validator("effect", mode="before")
    @classmethod
    def _effect(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() not in SIDE_EFFECT_KINDS:
            accepted = ", ".join(SIDE_EFFECT_KINDS)
            raise ValueError(f"side effect {value!r} is not on the list; accepted: {accepted}")
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() not in SEVERITIES:
            raise ValueError(
                f"severity {value!r} is not accepted; use one of: {', '.join(SEVERITIES)}"
            )
        return value.strip().lower() if isinstance(value, str) else value


def _int_in_range(value: Any, low: int, high: int, meaning: str) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, bool):
        raise ValueError(f"must be a whole number {low}–{high}, not {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value} is not a whole number; accepted: {low}–{high} ({meaning})")
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if not text.lstrip("-").isdigit():
            raise ValueError(f"{value!r} is not a whole number; accepted: {low}–{high}")
        value = int(text)
    if not isinstance(value, int):
        raise ValueError(f"must be a whole number {low}–{high}")
    if not low <= value <= high:
        raise ValueError(f"{value} is out of range; accepted: {low}–{high} ({meaning})")
    return value


class DiaryEntry(BaseModel):
    """One day of the diary. Build it with :func:`parse_entry` to get precise error messages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: date
    pain_avg: int | None = None
    pain_worst: int | None = None
    sitting_minutes: int | None = None
    sleep_quality: int | None = None
    side_effects: tuple[SideEffect, ...] = ()
    dose_taken: bool | None = None
    dose_mg: Decimal | None = None
    dose_time: time | None = None
    pgic: int | None = None
    notes: str | None = Field(default=None, max_length=MAX_NOTES)

    @field_validator("pain_avg", "pain_worst", mode="before")
    @classmethod
    def _pain(cls, value: Any, info: Any) -> int | None:
        return _int_in_range(value, 0, 10, "0 = no pain, 10 = worst imaginable")

    @field_validator("sitting_minutes", mode="before")
    @classmethod
    def _sitting(cls, value: Any) -> int | None:
        return _int_in_range(value, 0, 1440, "minutes in one day")

    @field_validator("sleep_quality", mode="before")
    @classmethod
    def _sleep(cls, value: Any) -> int | None:
        return _int_in_range(value, 0, 10, "0 = worst night, 10 = best night")

    @field_validator("pgic", mode="before")
    @classmethod
    def _pgic(cls, value: Any) -> int | None:
        return _int_in_range(
            value, 1, 7, "1 = very much improved … 4 = no change … 7 = very much worse"
        )

    @field_validator("dose_mg", mode="before")
    @classmethod
    def _dose(cls, value: Any) -> Decimal | None:
        if value is None or (isinstance(value, str) and value.strip() == ""):
            return None
        if isinstance(value, bool):
            raise ValueError(f"dose must be a quantity such as '1.5 mg', not {value!r}")
        if isinstance(value, Dose):
            mg = value.mg_value
        elif isinstance(value, str):
            try:
                mg = parse_dose(value, field="dose_mg").mg_value
            except InvalidInput as exc:
                raise ValueError(exc.message) from None
        elif isinstance(value, (int, float, Decimal)):
            try:
                mg = _to_decimal(value, "dose")
            except InvalidInput as exc:
                raise ValueError(exc.message) from None
        else:
            raise ValueError(
                f"dose must be a quantity such as '1.5 mg', got {type(value).__name__}"
            )
        if mg <= 0:
            raise ValueError(f"dose {format_decimal(mg)} mg must be greater than 0")
        return mg

    @field_validator("notes", mode="before")
    @classmethod
    def _notes(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip() or None
            if value is not None and len(value) > MAX_NOTES:
                raise ValueError(f"notes are {len(value)} characters long; at most {MAX_NOTES}")
        return value

    @field_validator("side_effects", mode="before")
    @classmethod
    def _side_effects(cls, value: Any) -> Any:
        if value is None:
            return ()
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DiaryEntry:
        if (
            self.pain_avg is not None
            and self.pain_worst is not None
            and self.pain_worst < self.pain_avg
        ):
            raise ValueError(
                f"pain_worst {self.pain_worst} is below pain_avg {self.pain_avg}; the worst pain "
                "of a day cannot be lower than its average"
            )
        if self.dose_taken is False and self.dose_mg is not None:
            raise ValueError(
                f"a dose of {format_decimal(self.dose_mg)} mg is given but dose_taken is no"
            )
        kinds = [s.effect for s in self.side_effects if s.effect != "other"]
        duplicates = sorted({k for k in kinds if kinds.count(k) > 1})
        if duplicates:
            raise ValueError(f"side effect listed twice on one day: {', '.join(duplicates)}")
        return self

    @property
    def dose(self) -> Dose | None:
        return None if self.dose_mg is None else Dose(self.dose_mg, "mg")

    @property
    def took_dose(self) -> bool:
        """True when the entry says a dose was taken (explicitly or by recording one)."""
        return self.dose_taken is True or (self.dose_taken is None and self.dose_mg is not None)


def _describe(exc: ValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or None
    msg = str(first["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if first["type"] == "extra_forbidden":
        msg = "unknown field"
    elif first["type"] in ("date_from_datetime_parsing", "date_parsing", "date_type"):
        msg = f"{first.get('input')!r} is not a date; write it as YYYY-MM-DD"
    elif first["type"] in ("time_parsing", "time_type"):
        msg = f"{first.get('input')!r} is not a time of day; write it as HH:MM"
    elif first["type"] == "literal_error":
        msg = f"{first.get('input')!r} is not accepted; {msg[0].lower()}{msg[1:]}"
    return msg, where


def parse_entry(data: Mapping[str, Any] | DiaryEntry, *, today: date) -> DiaryEntry:
    """Validate one diary day, refusing a day after ``today`` (the patient's local date).

    Raises :class:`InvalidInput` naming the field and what is accepted.
    """
    if isinstance(data, DiaryEntry):
        entry = data
    else:
        try:
            entry = DiaryEntry.model_validate(dict(data))
        except ValidationError as exc:
            msg, where = _describe(exc)
            raise InvalidInput(msg, field=where) from None
    if entry.day > today:
        raise InvalidInput(
            f"{entry.day.isoformat()} is in the future (today is {today.isoformat()}); "
            "a diary records days that have happened",
            field="day",
        )
    return entry


def merge_day(stored: DiaryEntry, update: DiaryEntry) -> DiaryEntry:
    """A second diary save for the same day, added to the first.

    A patient may note a side effect in the morning and the pain in the evening: values the
    update gives replace the stored ones, values it leaves out are kept, side effects add up
    (the newer severity when the same one is given again), and a new note goes below the
    earlier one. "Given" means set in the update (``model_fields_set``), so an empty form field
    never erases what was stored.
    """
    if stored.day != update.day:
        raise ValueError(f"cannot merge {update.day} into {stored.day}")
    values = stored.model_dump()
    for name in update.model_fields_set - {"side_effects", "notes"}:
        values[name] = getattr(update, name)
    effects = {e.effect: e for e in stored.side_effects}
    effects.update({e.effect: e for e in update.side_effects})
    values["side_effects"] = tuple(effects.values())
    # Only a repeat of the last note is not added again (a form sent twice); a note that merely
    # appears inside an earlier one ("ok" after "not ok") is new.
    last_note = (stored.notes or "").rsplit("\n", 1)[-1]
    if update.notes and update.notes != last_note:
        notes = f"{stored.notes}\n{update.notes}" if stored.notes else update.notes
        if len(notes) > MAX_NOTES:
            raise InvalidInput(
                f"the notes of {stored.day.isoformat()} would be {len(notes)} characters long "
                f"with this one added; at most {MAX_NOTES}: shorten it, or save the day with "
                "'replace what was saved' ticked",
                field="notes",
            )
        values["notes"] = notes
    try:
        return DiaryEntry.model_validate(values)
    except ValidationError as exc:  # e.g. the evening's average above the morning's worst
        msg, where = _describe(exc)
        raise InvalidInput(
            f"{msg} (together with what was saved earlier for {stored.day.isoformat()}; tick "
            "'replace what was saved' to start the day afresh)",
            field=where,
        ) from None


# --- the plan contract, read as data ------------------------------------------------------------


@dataclass(frozen=True)
class ScheduledStep:
    """One step of the plan's LDN schedule (``Ldn.schedule``); ``end`` None means open-ended."""

    start: date
    end: date | None
    dose_mg: Decimal
    time_of_day: str | None

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


def scheduled_steps(plan: PlanLike, *, allow_empty: bool = False) -> list[ScheduledStep]:
    """The LDN schedule of a plan (its typed ``ldn`` part, a parsed plan or a stored plan
    dict), sorted by start date.

    A plan that does not recommend LDN has an empty schedule; only callers that can handle
    that (``allow_empty``) get an empty list instead of an error.
    """
    steps = [
        ScheduledStep(
            start=s.start_date,
            end=s.end_date,
            dose_mg=Decimal(str(s.dose_mg)),
            time_of_day=s.time_of_day,
        )
        for s in ldn_of(plan).schedule
    ]
    if not steps and not allow_empty:
        raise InvalidInput("the plan's LDN schedule is empty", field="ldn.schedule")
    return sorted(steps, key=lambda s: s.start)


def review_date(plan: PlanLike) -> date:
    review = ldn_of(plan).review_date
    if review is None:
        raise InvalidInput("the plan has no review date", field="ldn.review_date")
    return review


def step_on(steps: list[ScheduledStep], day: date) -> ScheduledStep | None:
    """The step in force on ``day`` (the latest-starting one if steps overlap)."""
    found = [s for s in steps if s.covers(day)]
    return found[-1] if found else None


def check_against_schedule(entry: DiaryEntry, plan: PlanLike) -> list[str]:
    """Flags (never rejections) where the recorded day differs from the plan's schedule.

    The entry is stored either way: a patient who took a different dose must be able to say so.
    """
    steps = scheduled_steps(plan, allow_empty=True)
    day = entry.day.isoformat()
    flags: list[str] = []
    if not steps:
        if entry.took_dose:
            flags.append(f"{day}: a dose was recorded but the current plan does not recommend LDN")
        return flags
    step = step_on(steps, entry.day)
    if step is None:
        if entry.took_dose:
            dose = "" if entry.dose_mg is None else f" of {format_decimal(entry.dose_mg)} mg"
            flags.append(f"{day}: a dose{dose} was recorded but the plan schedules no LDN that day")
        return flags
    scheduled = f"{format_decimal(step.dose_mg)} mg"
    if entry.dose_taken is False:
        flags.append(f"{day}: no dose taken; {scheduled} was scheduled")
    elif entry.dose_mg is not None and entry.dose_mg != step.dose_mg:
        flags.append(
            f"{day}: dose taken {format_decimal(entry.dose_mg)} mg differs from the scheduled "
            f"{scheduled}"
        )
    return flags
