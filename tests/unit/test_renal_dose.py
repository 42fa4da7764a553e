"""Ordered gabapentinoid doses against the patient's renal band (label bands)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from ldncare.core.patient import LabResult, Patient
from ldncare.core.renal import check_renal_dose
from ldncare.evidence.loader import load_evidence

AS_OF = date(2026, 11, 25)
GABAPENTIN = load_evidence().monographs["gabapentin"]


def patient(egfr: float | None) -> Patient:
    labs = () if egfr is None else (LabResult(kind="egfr", value=egfr, date=AS_OF),)
    return Patient(id="r", birth_date=date(1950, 1, 1), sex="female", labs=labs)


def test_gabapentin_1800_mg_with_egfr_25_is_above_the_band_and_700_mg_is_suggested() -> None:
    excess = check_renal_dose(GABAPENTIN, patient(25), AS_OF, Decimal(1800))
    assert excess is not None
    assert excess.band.daily_max.mg_value == Decimal(700)
    assert excess.suggested_per_dose_mg * excess.band.doses_per_day == Decimal(700)


def test_a_dose_inside_the_band_passes() -> None:
    assert check_renal_dose(GABAPENTIN, patient(25), AS_OF, Decimal(600)) is None


def test_unknown_kidney_function_gives_no_verdict() -> None:
    assert check_renal_dose(GABAPENTIN, patient(None), AS_OF, Decimal(3600)) is None


def test_normal_kidney_function_allows_the_label_maximum() -> None:
    assert check_renal_dose(GABAPENTIN, patient(95), AS_OF, Decimal(3600)) is None
