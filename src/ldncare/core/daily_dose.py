"""The daily dose of a medicine the patient already takes, read from what is recorded.

A recorded medicine carries a dose text ("300 mg three times a day", "900 mg/day", "75 mg
BID") or only a product strength in its name ("Gabapentin 300 MG Oral Capsule"). A current dose
is checked against the patient's maximum (renal band, hepatic halving), so it must be read
without guessing: the daily total is known only when the text says how often; otherwise only a
lower bound (one dose a day) is known, and the caller says that the total could not be read.
Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from ldncare.core.patient import MedicationUse
from ldncare.core.quantity import find_dose

_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_UNIT = r"(?:mg|mcg|µg|μg|ug|g|milligrams?)"
#: "900 mg/day", "900 mg a day", "900 mg per day", "900 mg daily total", "900 mg/24 h".
_PER_DAY = re.compile(
    rf"(\d+(?:[.,]\d+)?\s*{_UNIT})\s*(?:/\s*(?:day|d|24\s*h(?:ours?)?)\b|(?:a|per|each)\s+day\b"
    rf"|total daily|daily total)",
    re.IGNORECASE,
)
#: "three times a day", "3 times daily", "3x/day", "2 x daily".
_TIMES = re.compile(
    r"\b(one|two|three|four|five|six|\d+)\s*(?:times?|x)\s*(?:a|per|each|/)?\s*(?:day|daily|d)\b",
    re.IGNORECASE,
)
_EVERY_HOURS = re.compile(r"\b(?:every|q)\s*(\d+)\s*(?:h|hrs?|hours?)\b", re.IGNORECASE)
#: Abbreviations and words for a number of doses a day (FHIR timing abbreviations; UK bd/tds/
#: qds; "nocte", "at night" once).
_WORDS: tuple[tuple[re.Pattern[str], Decimal], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), Decimal(n))
    for pattern, n in (
        (r"\b(?:qid|qds|four times)\b", "4"),
        (r"\b(?:tid|tds|thrice)\b", "3"),
        (r"\b(?:bid|bd|twice)\b", "2"),
        (r"\b(?:qod|every other day|alternate days)\b", "0.5"),
        (r"\b(?:once|qd|od|daily|qhs|qam|qpm|nocte|mane|at night|at bedtime|every day)\b", "1"),
    )
)


@dataclass(frozen=True)
class CurrentDose:
    """What the record says about how much of a medicine is taken each day."""

    #: The dose of one administration in mg (from the dose text, else the name's strength).
    dose_mg: Decimal | None
    #: Total mg a day, when the record says how often; ``None`` when it does not.
    daily_mg: Decimal | None

    @property
    def at_least_mg(self) -> Decimal | None:
        """The smallest daily total the record allows: the daily dose, else one dose."""
        return self.daily_mg if self.daily_mg is not None else self.dose_mg


def doses_per_day(text: str) -> Decimal | None:
    """How many doses a day ``text`` states, or ``None`` when it does not say."""
    match = _TIMES.search(text)
    if match:
        word = match.group(1).lower()
        return Decimal(_NUMBER_WORDS.get(word) or int(word))
    match = _EVERY_HOURS.search(text)
    if match and int(match.group(1)) > 0:
        return Decimal(24) / Decimal(int(match.group(1)))
    for pattern, n in _WORDS:
        if pattern.search(text):
            return n
    return None


def current_dose(med: MedicationUse) -> CurrentDose:
    """The recorded dose of ``med`` and, when the record says how often, its daily total."""
    text = med.dose_text or ""
    per_day = _PER_DAY.search(text)
    if per_day:
        # "900 mg/day": the whole text before "/day" is the daily total ("mg/" is not read
        # as a dose by find_dose, which takes "mg/mL" for a concentration).
        daily = find_dose(per_day.group(1))
        if daily is not None:
            return CurrentDose(daily.mg_value, daily.mg_value)
    dose = med.stated_dose()
    dose_mg = None if dose is None else dose.mg_value
    times = doses_per_day(text) if text else None
    if times is None:
        # The frequency written in the medicine's name ("Gabapentin 600 mg three times
        # daily", "Tramadol 50 mg BID") goes with the strength in the name.
        named = _from_name(med.name)
        if named is not None:
            return named
    if dose_mg is None or times is None:
        return CurrentDose(dose_mg, None)
    return CurrentDose(dose_mg, (dose_mg * times).normalize() + Decimal(0))


def _from_name(name: str) -> CurrentDose | None:
    """Strength and frequency both written in the name, else ``None``."""
    per_day = _PER_DAY.search(name)
    if per_day:
        daily = find_dose(per_day.group(1))
        if daily is not None:
            return CurrentDose(daily.mg_value, daily.mg_value)
    times = doses_per_day(name)
    strength = find_dose(name)
    if times is None or strength is None:
        return None
    return CurrentDose(strength.mg_value, (strength.mg_value * times).normalize() + Decimal(0))


def total_daily(meds: list[MedicationUse]) -> CurrentDose:
    """Sum over several records of the same drug (two strengths taken together)."""
    doses = [current_dose(m) for m in meds]
    known = [d.dose_mg for d in doses if d.dose_mg is not None]
    dose_mg = sum(known, Decimal(0)) if known else None
    if doses and all(d.daily_mg is not None for d in doses):
        return CurrentDose(dose_mg, sum((d.daily_mg or Decimal(0) for d in doses), Decimal(0)))
    return CurrentDose(dose_mg, None)


__all__ = ["CurrentDose", "current_dose", "doses_per_day", "total_daily"]
