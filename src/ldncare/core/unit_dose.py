"""A daily dose that a real product can give: whole units of the ordered strength.

A renal dose limit (gabapentin 700 mg a day, once a day, for CrCl 15-30 mL/min) is not an
order by itself: "gabapentin 600 MG Oral Tablet" cannot give 700 mg. The dose suggested is the
largest whole number of units of the ordered strength, taken as often as the label's band says,
whose daily total stays within the band; when even one unit a dose is above the band's maximum
(an 800 mg tablet once a day against 700 mg) or the total falls below the band's minimum, no
dose of that product fits and the caller states the limit in words instead.

Splitting tablets is not assumed: whether a product is scored is not in the evidence data.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from ldncare.errors import InvalidInput


@dataclass(frozen=True)
class UnitDose:
    """``units`` of ``strength_mg`` per dose, ``doses_per_day`` times a day."""

    strength_mg: Decimal
    units: int
    doses_per_day: int

    @property
    def per_dose_mg(self) -> Decimal:
        return self.strength_mg * self.units

    @property
    def daily_mg(self) -> Decimal:
        return self.per_dose_mg * self.doses_per_day


def dose_in_whole_units(
    strength_mg: Decimal, doses_per_day: int, daily_min_mg: Decimal, daily_max_mg: Decimal
) -> UnitDose | None:
    """The largest whole-unit dose of ``strength_mg`` within [daily_min, daily_max] mg a day at
    ``doses_per_day`` doses, or ``None`` when no whole number of units fits."""
    if strength_mg <= 0:
        raise InvalidInput(f"product strength {strength_mg} mg must be above zero")
    if doses_per_day < 1:
        raise InvalidInput(f"doses per day {doses_per_day} must be at least 1")
    if daily_min_mg > daily_max_mg:
        raise InvalidInput(f"daily range {daily_min_mg}-{daily_max_mg} mg is empty")
    per_dose_max = daily_max_mg / doses_per_day
    units = int((per_dose_max / strength_mg).to_integral_value(rounding=ROUND_FLOOR))
    if units < 1:
        return None
    dose = UnitDose(strength_mg, units, doses_per_day)
    return dose if dose.daily_mg >= daily_min_mg else None
