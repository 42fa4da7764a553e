"""Reading the daily total of a medicine already taken from its record (issue 14, item 7)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ldncare.core.daily_dose import current_dose, doses_per_day, total_daily
from ldncare.core.patient import MedicationUse


@pytest.mark.parametrize(
    ("name", "dose_text", "daily"),
    [
        ("Gabapentin 300 MG Oral Capsule", "300 mg three times a day", "900"),
        ("gabapentin", "300 mg TID", "900"),
        ("gabapentin", "300 mg tds", "900"),
        ("gabapentin", "900 mg/day", "900"),
        ("gabapentin", "900 mg per day", "900"),
        ("pregabalin", "75 mg twice daily", "150"),
        ("pregabalin", "75 mg BID", "150"),
        ("duloxetine", "60 mg 2 times a day", "120"),
        ("duloxetine", "60 mg daily", "60"),
        ("amitriptyline", "10 mg at night", "10"),
        ("tramadol", "50 mg every 6 hours", "200"),
        ("tramadol", "50 mg q6h", "200"),
        ("venlafaxine", "0.075 g once daily", "75"),
    ],
)
def test_daily_total_is_read_from_dose_and_frequency(name: str, dose_text: str, daily: str) -> None:
    assert current_dose(MedicationUse(name=name, dose_text=dose_text)).daily_mg == Decimal(daily)


@pytest.mark.parametrize(
    ("name", "dose_text", "at_least"),
    [("Gabapentin 300 MG Oral Capsule", None, "300"), ("gabapentin", "600 mg", "600")],
)
def test_without_a_frequency_only_one_dose_is_known(
    name: str, dose_text: str | None, at_least: str
) -> None:
    dose = current_dose(MedicationUse(name=name, dose_text=dose_text))
    assert dose.daily_mg is None
    assert dose.at_least_mg == Decimal(at_least)


def test_no_dose_anywhere_gives_nothing() -> None:
    dose = current_dose(MedicationUse(name="duloxetine", dose_text="as directed"))
    assert dose.dose_mg is None and dose.daily_mg is None and dose.at_least_mg is None


def test_two_records_of_one_drug_add_up() -> None:
    meds = [
        MedicationUse(name="gabapentin 300 mg", dose_text="300 mg twice daily"),
        MedicationUse(name="gabapentin 600 mg", dose_text="600 mg at night"),
    ]
    assert total_daily(meds).daily_mg == Decimal(1200)


def test_two_records_one_without_frequency_leave_the_total_unknown() -> None:
    meds = [
        MedicationUse(name="gabapentin", dose_text="300 mg twice daily"),
        MedicationUse(name="gabapentin", dose_text="600 mg"),
    ]
    assert total_daily(meds).daily_mg is None


@pytest.mark.parametrize(
    ("text", "n"), [("every 8 hours", "3"), ("qod", "0.5"), ("as needed", None)]
)
def test_doses_per_day(text: str, n: str | None) -> None:
    assert doses_per_day(text) == (None if n is None else Decimal(n))
