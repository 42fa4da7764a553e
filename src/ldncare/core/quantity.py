"""Doses as quantities with units.

A dose is never a bare float: ``Dose(4.5, "mg")``. Parsing accepts the mass units that appear in
prescriptions (g, mg, mcg/µg/ug) and converts to milligrams on request, so "4.5 g" is read
correctly as 4,500 mg and can then be refused by the caller with a precise message.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from ldncare.errors import InvalidInput

#: Factor to milligrams for each accepted mass unit (UCUM code first).
_MASS_UNITS: dict[str, Decimal] = {
    "g": Decimal("1000"),
    "mg": Decimal("1"),
    "ug": Decimal("0.001"),
    "mcg": Decimal("0.001"),
    "µg": Decimal("0.001"),
    "μg": Decimal("0.001"),
}
ACCEPTED_UNITS = ("mg", "g", "mcg")

_DOSE_RE = re.compile(r"^\s*([-+]?\d+(?:[.,]\d+)?)\s*([a-zA-Zµμ]+)\s*$")


@dataclass(frozen=True, order=True)
class Dose:
    """A mass dose. ``value`` is a Decimal so that 0.5-mg steps add up exactly."""

    value: Decimal
    unit: str = "mg"

    def __post_init__(self) -> None:
        if self.unit not in _MASS_UNITS:
            raise InvalidInput(
                f"unit {self.unit!r} is not a mass unit; accepted: {', '.join(ACCEPTED_UNITS)}"
            )
        if not self.value.is_finite():
            raise InvalidInput(f"dose value {self.value} is not a finite number")

    @classmethod
    def mg(cls, value: float | int | str | Decimal) -> Dose:
        return cls(_to_decimal(value, "dose"), "mg")

    def to_mg(self) -> Dose:
        return Dose((self.value * _MASS_UNITS[self.unit]).normalize() + Decimal("0"), "mg")

    @property
    def mg_value(self) -> Decimal:
        return self.to_mg().value

    def __str__(self) -> str:
        return f"{format_decimal(self.value)} {self.unit}"


def format_decimal(value: Decimal) -> str:
    """``Decimal('1.50')`` -> ``'1.5'``; ``Decimal('3')`` -> ``'3'``."""
    text = format(value.normalize(), "f")
    return text


def _to_decimal(value: float | int | str | Decimal, what: str) -> Decimal:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{what} {value} is not a finite number")
    try:
        result = Decimal(str(value).replace(",", "."))
    except InvalidOperation:
        raise InvalidInput(f"{what} {value!r} is not a number") from None
    if not result.is_finite():
        raise InvalidInput(f"{what} {value!r} is not a finite number")
    return result


def parse_dose(text: str | float | int | Decimal, *, field: str = "dose") -> Dose:
    """Parse ``"4.5 mg"``, ``"500mcg"`` or ``"0.0045 g"`` into a :class:`Dose`.

    A bare number is refused: the unit is what makes a dose safe to read.
    """
    if isinstance(text, (int, float, Decimal)) and not isinstance(text, bool):
        raise InvalidInput(
            f"dose {text!r} has no unit; write it with one, e.g. '{text} mg' "
            f"(accepted units: {', '.join(ACCEPTED_UNITS)})",
            field=field,
        )
    if not isinstance(text, str):
        raise InvalidInput(
            f"dose must be text such as '1.5 mg', got {type(text).__name__}", field=field
        )
    match = _DOSE_RE.match(text)
    if not match:
        if re.fullmatch(r"\s*[-+]?\d+(?:[.,]\d+)?\s*", text):
            raise InvalidInput(
                f"dose {text!r} has no unit; write it with one, e.g. '{text.strip()} mg' "
                f"(accepted units: {', '.join(ACCEPTED_UNITS)})",
                field=field,
            )
        raise InvalidInput(
            f"dose {text!r} is not a number followed by a unit, e.g. '1.5 mg'", field=field
        )
    number, unit = match.groups()
    unit_key = unit.lower() if unit.lower() in _MASS_UNITS else unit
    if unit_key not in _MASS_UNITS:
        raise InvalidInput(
            f"dose {text!r} has unit {unit!r}, which is not a mass unit; "
            f"accepted: {', '.join(ACCEPTED_UNITS)}",
            field=field,
        )
    return Dose(_to_decimal(number, "dose"), unit_key)


#: A mass dose written inside free text ("Naltrexone 1.5 MG capsule", "take 4.5 mg at night").
#: A unit followed by "/" is a concentration or a rate ("1 mg/mL", "25 MCG/HR"), not a dose.
_DOSE_IN_TEXT = re.compile(
    r"(\d+(?:[.,]\d+)?)\s*(mg|mcg|µg|μg|ug|g|milligrams?)\b(?!\s*/)", re.IGNORECASE
)


def find_dose(text: str | None) -> Dose | None:
    """The first dose written in ``text``, in mg, or ``None`` when there is none."""
    match = _DOSE_IN_TEXT.search(text or "")
    if match is None:
        return None
    unit = match.group(2).lower()
    unit = "mg" if unit.startswith("milligram") else unit
    try:
        return Dose(_to_decimal(match.group(1), "dose"), unit).to_mg()
    except InvalidInput:
        return None
