"""A renal dose limit turned into a dose the ordered product can give (issue #18, item 4)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldncare.core.unit_dose import dose_in_whole_units
from ldncare.errors import InvalidInput
from ldncare.evidence.loader import load_evidence

GABAPENTIN = load_evidence().monographs["gabapentin"]


def band_for(crcl: float) -> tuple[int, Decimal, Decimal]:
    band = GABAPENTIN.renal_band(crcl)
    assert band is not None
    return band.doses_per_day, band.daily_min.mg_value, band.daily_max.mg_value


def test_gabapentin_600_mg_tablet_at_crcl_25_gives_600_mg_once_a_day_not_700() -> None:
    dose = dose_in_whole_units(Decimal(600), *band_for(25))
    assert dose is not None
    assert (dose.units, dose.per_dose_mg, dose.daily_mg) == (1, 600, 600)


def test_gabapentin_100_mg_capsules_at_crcl_25_reach_the_700_mg_maximum() -> None:
    dose = dose_in_whole_units(Decimal(100), *band_for(25))
    assert dose is not None and (dose.units, dose.daily_mg) == (7, 700)


def test_gabapentin_800_mg_tablet_at_crcl_25_has_no_dose_that_fits() -> None:
    assert dose_in_whole_units(Decimal(800), *band_for(25)) is None


def test_gabapentin_600_mg_tablet_below_crcl_15_has_no_dose_that_fits() -> None:
    assert dose_in_whole_units(Decimal(600), *band_for(10)) is None


def test_gabapentin_400_mg_capsule_at_crcl_45_is_400_mg_twice_a_day() -> None:
    dose = dose_in_whole_units(Decimal(400), *band_for(45))
    assert dose is not None and (dose.per_dose_mg, dose.doses_per_day, dose.daily_mg) == (
        400,
        2,
        800,
    )


def test_a_strength_of_zero_is_refused_with_a_message() -> None:
    with pytest.raises(InvalidInput, match="strength 0 mg"):
        dose_in_whole_units(Decimal(0), 1, Decimal(100), Decimal(300))


@given(
    strength=st.integers(min_value=1, max_value=2000).map(Decimal),
    doses_per_day=st.integers(min_value=1, max_value=4),
    low=st.integers(min_value=0, max_value=3000),
    width=st.integers(min_value=0, max_value=3000),
)
def test_a_suggested_dose_is_whole_units_within_the_band_and_the_largest_such(
    strength: Decimal, doses_per_day: int, low: int, width: int
) -> None:
    daily_min, daily_max = Decimal(low), Decimal(low + width)
    dose = dose_in_whole_units(strength, doses_per_day, daily_min, daily_max)
    if dose is None:
        # Nothing fits: one unit more than the maximum, or the most that fits below the minimum.
        fits = int(daily_max / doses_per_day // strength)
        assert fits == 0 or fits * strength * doses_per_day < daily_min
        return
    assert dose.units >= 1 and dose.per_dose_mg == dose.units * strength
    assert daily_min <= dose.daily_mg <= daily_max
    assert (dose.units + 1) * strength * doses_per_day > daily_max
