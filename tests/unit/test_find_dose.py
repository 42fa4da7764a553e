"""Doses written inside free text (prescription names and dosage instructions)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ldncare.core.patient import MedicationUse
from ldncare.core.quantity import find_dose


@pytest.mark.parametrize(
    ("text", "mg"),
    [
        ("Naltrexone 1.5 MG oral capsule", "1.5"),
        ("take 4,5 mg at night", "4.5"),
        ("Naltrexone hydrochloride 50 MG Oral Tablet", "50"),
        ("Levothyroxine 100 mcg", "0.1"),
        ("2 milligrams at bedtime", "2"),
    ],
)
def test_dose_in_text_is_read_in_mg(text: str, mg: str) -> None:
    dose = find_dose(text)
    assert dose is not None and dose.mg_value == Decimal(mg)


@pytest.mark.parametrize(
    "text", ["naltrexone 1 mg/mL oral liquid", "Fentanyl 25 MCG/HR patch", "LDN", "", None]
)
def test_concentrations_rates_and_missing_doses_are_not_doses(text: str | None) -> None:
    assert find_dose(text) is None


def test_the_dosage_text_outranks_the_product_strength() -> None:
    med = MedicationUse(name="Naltrexone 50 MG Oral Tablet", dose_text="1.5 mg at bedtime")
    stated = med.stated_dose()
    assert stated is not None and stated.mg_value == Decimal("1.5")
