"""Named vignettes for the second independent pharmacist review of issue 14, section C items
3 (a stale eGFR against a CKD diagnosis), 4 (dangerous combinations already taken) and 8.

Each case is a patient file under ``patients/`` and a FHIR R4 Bundle read by the real reader,
planned end to end by ``make_plan``; each failed before the fix.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.core import renal
from ldncare.core.patient import Patient
from ldncare.evidence.loader import load_evidence
from ldncare.fhir import patient_from_bundle
from ldncare.patient_file import load_patient
from ldncare.planning import make_plan

PATIENTS = Path(__file__).parent / "patients"
AS_OF = date(2026, 12, 4)
LOINC = "http://loinc.org"
STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def contract(patient: Patient) -> dict[str, Any]:
    result: dict[str, Any] = make_plan(patient, as_of=AS_OF).to_contract(load_evidence())
    return result


def from_file(name: str) -> dict[str, Any]:
    return contract(load_patient(PATIENTS / name))


def findings(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["rule"]: f for f in plan["ldn"]["findings"]}


def option(plan: dict[str, Any], drug: str) -> dict[str, Any]:
    return next(o for o in plan["options"] if o["drug"] == drug)


def option_rules(opt: dict[str, Any]) -> set[str]:
    return {r["rule"] for r in opt["reasons"]}


def bundle(
    *,
    birth: str = "1950-01-01",
    sex: str = "male",
    meds: tuple[tuple[str, str], ...] = (),
    conditions: tuple[str, ...] = ("Pudendal neuralgia",),
    egfr: tuple[float, str] | None = None,
) -> dict[str, Any]:
    ref = {"reference": "Patient/p1"}
    entries: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": "p1", "gender": sex, "birthDate": birth}
    ]
    for text, dose in meds:
        entries.append(
            {
                "resourceType": "MedicationStatement",
                "status": "active",
                "subject": ref,
                "medicationCodeableConcept": {"text": text},
                "dosage": [{"text": dose}],
            }
        )
    for text in conditions:
        entries.append(
            {
                "resourceType": "Condition",
                "subject": ref,
                "code": {"text": text},
                "clinicalStatus": {"coding": [{"system": STATUS, "code": "active"}]},
            }
        )
    if egfr is not None:
        entries.append(
            {
                "resourceType": "Observation",
                "status": "final",
                "subject": ref,
                "code": {"coding": [{"system": LOINC, "code": "62238-1"}]},
                "effectiveDateTime": egfr[1],
                "valueQuantity": {"value": egfr[0], "unit": "mL/min/1.73m2"},
            }
        )
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in entries],
    }


def from_bundle(**kwargs: Any) -> dict[str, Any]:
    return contract(patient_from_bundle(bundle(**kwargs)))


# --- C3: a stale eGFR does not beat a CKD stage 4-5 or dialysis diagnosis -----------------


def _assert_ckd4_band_used(plan: dict[str, Any]) -> None:
    gabapentin = option(plan, "gabapentin")
    assert gabapentin["max_daily_dose_mg"] == 700  # label band CrCl 15-29: 200-700 mg/day
    assert "option.renal.diagnosis_over_lab" in option_rules(gabapentin)
    assert option(plan, "pregabalin")["max_daily_dose_mg"] == 150
    assert option(plan, "duloxetine")["suitability"] == "avoid"  # label: avoid below 30
    kidney = findings(plan)["ldn.renal.diagnosis_over_lab"]
    assert kidney["severity"] == "warning"
    assert "Chronic kidney disease stage 4" in kidney["message"]
    assert "eGFR 88 on 2018-03-01" in kidney["message"]
    assert "older than 12 months" in kidney["message"]
    assert plan["ldn"]["eligibility"] == "eligible_with_cautions"


def test_ckd_stage_4_with_an_egfr_of_88_from_2018_gets_the_stage_4_doses() -> None:
    _assert_ckd4_band_used(from_file("pn-ckd-stage-4-egfr-88-from-2018.yaml"))


def test_ckd_stage_4_with_an_egfr_of_88_from_2018_as_fhir_bundle() -> None:
    plan = from_bundle(
        conditions=("Pudendal neuralgia", "Chronic kidney disease stage 4"),
        egfr=(88, "2018-03-01"),
    )
    _assert_ckd4_band_used(plan)


def test_haemodialysis_patient_with_a_recent_normal_egfr_still_gets_the_lowest_band() -> None:
    """A recent but contradictory result is still set aside (the diagnosis is the safer)."""
    plan = from_bundle(
        conditions=("Pudendal neuralgia", "Dependence on hemodialysis"),
        egfr=(70, "2026-11-20"),
    )
    assert option(plan, "gabapentin")["max_daily_dose_mg"] == 300
    message = findings(plan)["ldn.renal.diagnosis_over_lab"]["message"]
    assert "older than 12 months" not in message


def test_normal_egfr_from_2024_without_a_kidney_diagnosis_is_used_but_flagged_stale() -> None:
    plan = from_file("pn-egfr-75-from-2024.yaml")
    stale = findings(plan)["ldn.renal.stale"]
    assert stale["severity"] == "info"
    assert "2024-09-15" in stale["message"] and "ldncare's own limit" in stale["message"]
    gabapentin = option(plan, "gabapentin")
    assert gabapentin["max_daily_dose_mg"] == 3600
    assert "option.renal.stale" in option_rules(gabapentin)


def test_normal_egfr_from_last_month_is_not_flagged() -> None:
    plan = from_bundle(birth="1962-06-01", sex="female", egfr=(75, "2026-11-01"))
    assert "ldn.renal.stale" not in findings(plan)
    assert "option.renal.stale" not in option_rules(option(plan, "gabapentin"))


def test_egfr_25_with_ckd_stage_4_is_no_conflict_and_keeps_the_measured_value() -> None:
    plan = from_bundle(
        conditions=("Pudendal neuralgia", "Chronic kidney disease stage 4"),
        egfr=(25, "2026-11-01"),
    )
    assert "ldn.renal.impairment" in findings(plan)
    assert "ldn.renal.diagnosis_over_lab" not in findings(plan)


@settings(max_examples=200, deadline=None)
@given(
    value=st.floats(min_value=0, max_value=200, allow_nan=False),
    days_old=st.integers(min_value=0, max_value=4000),
    cls=st.sampled_from(["dialysis", "ckd_stage_5", "ckd_stage_4", None]),
)
def test_property_dosing_kidney_function_never_exceeds_a_kidney_failure_diagnosis(
    value: float, days_old: int, cls: str | None
) -> None:
    """Whatever the result and its age, a CKD 4-5/dialysis diagnosis caps the estimate below
    its bound; a result older than the stated limit is always marked stale."""
    measured = date.fromordinal(AS_OF.toordinal() - days_old)
    lab = renal.RenalFunction(value, "egfr", f"eGFR {value}", measured_on=measured)
    names = {cls: ["the diagnosis"]} if cls else {}
    got = renal.reconcile_with_diagnosis(lab, names, AS_OF)
    assert got is not None
    bound = {"dialysis": 15, "ckd_stage_5": 15, "ckd_stage_4": 30}.get(cls or "")
    if bound is not None:
        assert got.crcl_ml_min < bound
    else:
        assert got.crcl_ml_min == value
    assert got.stale == (days_old > renal.STALE_AFTER_DAYS)
