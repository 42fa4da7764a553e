"""Vignettes for the LDN screening and schedule findings of the independent pharmacist review
of the issue 14 fixes (items 1, 4, 6, 8, 9 and 10's LDN part).

Each case is told as a patient file under ``patients/`` and as a FHIR R4 Bundle (helpers shared
with the issue 14 screening vignettes), so both readers are held to the same clinical answer.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from ldncare.evidence.loader import load_evidence
from ldncare.fhir import patient_from_bundle
from ldncare.patient_file import load_patient
from ldncare.planning import make_plan
from tests.vignettes.test_screening_safety_vignettes import (
    HERE,
    bundle,
    med_request,
    med_statement,
    message,
    rules,
)

AS_OF = date(2026, 12, 4)


def contract(patient: Any, as_of: date = AS_OF) -> dict[str, Any]:
    result: dict[str, Any] = make_plan(patient, as_of=as_of).to_contract(load_evidence())
    return result


def from_file(name: str) -> dict[str, Any]:
    return contract(load_patient(HERE / name))


def from_bundle(*resources: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return contract(patient_from_bundle(bundle(*resources, **kwargs)))


def assert_no_schedule(plan: dict[str, Any]) -> None:
    ldn = plan["ldn"]
    assert ldn["eligibility"] == "not_recommended"
    assert ldn["schedule"] == []
    assert ldn["notes"] == []
    assert ldn["course"]["start"] is None


# -- item 1: opioid-acting substances under other names --------------------------------------
def test_ketum_leaf_tea_is_kratom_and_stops_ldn_file() -> None:
    plan = from_file("pn-ketum-leaf-tea.yaml")
    assert_no_schedule(plan)
    assert "ldn.opioid.active" in rules(plan, "contraindication")
    assert "ldn.opioid_acting.ask" in rules(plan, "warning")


@pytest.mark.parametrize(
    "resource",
    [
        med_statement("Ketum", dose="leaf tea twice daily"),
        med_statement("Biak leaves", dose="chewed daily"),
        med_statement("Thom powder"),
        med_statement("Herbal supplement", dose="ketum 3 g daily"),
    ],
    ids=["ketum", "biak", "thom", "ketum-in-dose-text"],
)
def test_other_names_of_kratom_stop_ldn_fhir(resource: dict[str, Any]) -> None:
    plan = from_bundle(resource)
    assert_no_schedule(plan)
    assert "ldn.opioid.active" in rules(plan)
    assert "ldn.opioid_acting.ask" in rules(plan)


def test_ketum_use_on_the_problem_list_stops_ldn_fhir() -> None:
    cond = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/p1"},
        "code": {"text": "Daily ketum use"},
        "clinicalStatus": {"coding": [{"code": "active"}]},
    }
    plan = from_bundle(cond)
    assert_no_schedule(plan)
    assert "ldn.opioid_acting.condition" in rules(plan, "contraindication")


def test_zaza_tianeptine_from_a_petrol_station_stops_ldn_file() -> None:
    plan = from_file("pn-tianeptine-zaza.yaml")
    assert_no_schedule(plan)
    assert "ldn.opioid.active" in rules(plan, "contraindication")
    assert "mu-opioid" in message(plan, "ldn.opioid_acting.tianeptine")
    assert "ldn.opioid_acting.ask" not in rules(plan)  # not called kratom


@pytest.mark.parametrize(
    "resource",
    [
        med_statement("Tianeptine sodium 25 mg", dose="75 mg three times daily"),
        med_statement("Tianaa red"),
        med_statement("Tianna capsules"),
        med_statement("Za Za red", status="unknown"),
    ],
    ids=["generic", "tianaa", "tianna", "za-za"],
)
def test_tianeptine_under_its_shop_names_stops_ldn_fhir(resource: dict[str, Any]) -> None:
    plan = from_bundle(resource)
    assert_no_schedule(plan)
    assert "ldn.opioid.active" in rules(plan)
    assert "ldn.opioid_acting.tianeptine" in rules(plan)


def test_tianeptine_stopped_five_days_ago_waits_for_the_washout() -> None:
    plan = from_bundle(med_request("Tianeptine 12.5 mg", status="stopped", authored="2026-11-29"))
    assert plan["ldn"]["eligibility"] == "not_recommended"
    assert {"ldn.opioid.washout_assumed"} <= rules(plan)


def test_viberzi_for_ibs_d_keeps_ldn_with_a_blunting_note_file() -> None:
    plan = from_file("pn-viberzi-ibs-d.yaml")
    assert plan["ldn"]["eligibility"] == "eligible"
    assert plan["ldn"]["schedule"]
    assert "ldn.opioid_antidiarrheal" in rules(plan, "info")
    assert "ldn.opioid.active" not in rules(plan)
    finding = next(f for f in plan["ldn"]["findings"] if f["rule"] == "ldn.opioid_antidiarrheal")
    assert "label_viberzi" in finding["citations"]


@pytest.mark.parametrize("text", ["Eluxadoline 75 mg tablet", "Viberzi"])
def test_eluxadoline_keeps_ldn_with_a_blunting_note_fhir(text: str) -> None:
    plan = from_bundle(med_request(text, dose="1 tablet twice daily"))
    assert plan["ldn"]["eligibility"] == "eligible"
    assert "ldn.opioid_antidiarrheal" in rules(plan)


def test_thompson_in_a_medicine_name_is_not_kratom() -> None:
    plan = from_bundle(med_statement("Thompson's multivitamin"))
    assert "ldn.opioid.active" not in rules(plan)


# -- item 4: LDN written as "LDN" or "low dose naltrexone" -----------------------------------
def test_ldn_abbreviation_continues_the_current_dose_file() -> None:
    plan = from_file("pn-ldn-abbreviation-current.yaml")
    assert plan["ldn"]["course"]["kind"] == "continue"
    assert plan["ldn"]["course"]["current_dose"] == {"value": 4.5, "unit": "mg"}
    assert "ldn.naltrexone.ldn_current" in rules(plan)
    assert all(row["dose_mg"] == 4.5 for row in plan["ldn"]["schedule"])


@pytest.mark.parametrize(
    "text",
    ["LDN 4.5 mg", "LDN", "Low dose naltrexone 3 mg capsule", "low-dose naltrexone 1.5 mg"],
)
def test_ldn_names_are_naltrexone_fhir(text: str) -> None:
    plan = from_bundle(med_request(text, authored="2026-09-01", dose="3 mg at bedtime"))
    assert plan["ldn"]["course"]["kind"] == "continue"
    assert plan["ldn"]["schedule"][0]["dose_mg"] == 3.0  # never a restart at 1.5 mg


def test_ldn_name_without_a_dose_is_withheld_until_confirmed() -> None:
    plan = from_bundle(med_statement("LDN compounded capsules"))
    assert plan["ldn"]["course"]["kind"] == "withheld"
    assert plan["ldn"]["schedule"] == []
    assert "ldn.naltrexone.dose_unknown" in rules(plan)


# -- item 6: the naltrexone part of a combination product ------------------------------------
def test_contrave_naltrexone_dose_is_8_mg_not_the_bupropion_90_mg_file() -> None:
    plan = from_file("pn-contrave.yaml")
    assert_no_schedule(plan)
    text = message(plan, "ldn.naltrexone.full_dose")
    assert "at 8 mg" in text and "90 mg" not in text.replace("8 mg/90 mg", "")


@pytest.mark.parametrize(
    ("text", "dose"),
    [
        ("Contrave 8 mg/90 mg extended-release tablet", "at 8 mg"),
        ("naltrexone HCl 8 MG / bupropion HCl 90 MG Extended Release Oral Tablet", "at 8 mg"),
    ],
)
def test_contrave_naltrexone_dose_fhir(text: str, dose: str) -> None:
    plan = from_bundle(med_request(text, dose="2 tablets twice daily"))
    assert_no_schedule(plan)
    assert dose in message(plan, "ldn.naltrexone.full_dose")


def test_unknown_combination_with_naltrexone_asks_for_the_dose() -> None:
    plan = from_bundle(med_request("Naltrexone/other 2 mg/10 mg tablet"))
    assert plan["ldn"]["course"]["kind"] == "withheld"
    assert "ldn.naltrexone.dose_unknown" in rules(plan)


# -- item 8: a plan that says no has no schedule, no start day and no schedule notes ------------
@pytest.mark.parametrize(
    "name",
    ["pn-age-88-on-hydrocodone-cough.yaml", "pn-tianeptine-zaza.yaml", "pn-age-15.yaml"],
)
def test_not_recommended_plan_has_no_start_and_no_schedule_notes(name: str) -> None:
    plan = from_file(name)
    assert_no_schedule(plan)
    assert plan["ldn"]["course"]["kind"] == "not_started"
    assert not {"schedule.start_low", "schedule.surgery_deferred"} & rules(plan)


def test_88_year_old_on_hydrocodone_fhir_gets_no_start_low_note() -> None:
    plan = from_bundle(
        med_request("Tussionex Pennkinetic extended-release suspension"), birth="1938-05-05"
    )
    assert_no_schedule(plan)
    assert "ldn.age.older" in rules(plan)
    assert "schedule.start_low" not in rules(plan)


def test_ldn_taken_with_a_current_opioid_is_withheld_not_continued() -> None:
    plan = from_bundle(
        med_request("LDN 3 mg", authored="2026-09-01"), med_request("Oxycodone 5 mg tablet")
    )
    assert_no_schedule(plan)
    assert plan["ldn"]["course"]["kind"] == "withheld"


# -- item 9: wording for 6 mg and for the monthly injection ----------------------------------
def test_naltrexone_6_mg_is_above_the_ceiling_not_called_receptor_blocking_file() -> None:
    plan = from_file("pn-naltrexone-6mg.yaml")
    assert_no_schedule(plan)
    finding = next(f for f in plan["ldn"]["findings"] if f["rule"] == "ldn.naltrexone.full_dose")
    assert "ceiling" in finding["message"]
    assert "not low-dose" not in finding["message"]
    assert "already blocks" not in finding["message"]
    assert "bruun2024" in finding["citations"]


def test_vivitrol_is_a_monthly_injection_not_compared_with_a_daily_dose_file() -> None:
    plan = from_file("pn-vivitrol-alcohol.yaml")
    assert_no_schedule(plan)
    text = message(plan, "ldn.naltrexone.injection")
    assert "every 4 weeks" in text and "a day" not in text
    assert "ldn.naltrexone.full_dose" not in rules(plan)


def test_vivitrol_injection_fhir() -> None:
    plan = from_bundle(
        med_request("naltrexone 380 MG Injectable Suspension", dose="380 mg IM every 4 weeks")
    )
    assert_no_schedule(plan)
    assert "ldn.naltrexone.injection" in rules(plan)


# -- item 10 (LDN part): missing liver and kidney tests are said, creatinine is used ----------
CREATININE = "2160-0"
EGFR = "33914-3"
ALT = "1742-6"


def lab(loinc: str, value: float, unit: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "effectiveDateTime": "2026-11-10",
        "valueQuantity": {"value": value, "unit": unit},
    }


def test_no_liver_or_kidney_tests_on_file_are_named_file() -> None:
    plan = from_file("pn-no-labs-at-all.yaml")
    assert {"ldn.hepatic.tests_missing", "ldn.renal.tests_missing"} <= rules(plan, "info")
    assert "before starting" in message(plan, "ldn.hepatic.tests_missing")


def test_no_liver_or_kidney_tests_on_file_are_named_fhir() -> None:
    plan = from_bundle()
    assert {"ldn.hepatic.tests_missing", "ldn.renal.tests_missing"} <= rules(plan, "info")


def test_liver_and_kidney_results_on_file_silence_the_missing_notes_fhir() -> None:
    plan = from_bundle(lab(ALT, 20, "U/L"), lab(EGFR, 85, "mL/min/{1.73_m2}"))
    assert not {"ldn.hepatic.tests_missing", "ldn.renal.tests_missing"} & rules(plan)
    assert "ldn.renal.creatinine_only" not in rules(plan)


def test_creatinine_2_4_without_egfr_or_weight_at_78_is_graded_by_ckd_epi_and_starts_low_file() -> (
    None
):
    # CKD-EPI 2021 needs no weight: creatinine 2.4 mg/dL at 78 is an eGFR near 20, not silence.
    plan = from_file("pn-age-78-creatinine-only-no-weight.yaml")
    assert "ldn.renal.impairment_estimated" in rules(plan, "warning")
    text = message(plan, "ldn.renal.impairment_estimated")
    assert "CKD-EPI 2021" in text and "2.4 mg/dL" in text
    assert "reduced kidney function" in message(plan, "schedule.start_low")
    assert plan["ldn"]["schedule"][0]["dose_mg"] == 1.0
    assert not {"ldn.renal.creatinine_only", "ldn.renal.tests_missing"} & rules(plan)
    assert "ldn.hepatic.tests_missing" not in rules(plan)


def test_creatinine_2_4_without_egfr_or_weight_is_graded_by_ckd_epi_fhir() -> None:
    plan = from_bundle(lab(CREATININE, 2.4, "mg/dL"), birth="1948-04-04")
    assert "ldn.renal.impairment_estimated" in rules(plan, "warning")
    assert "ldn.renal.tests_missing" not in rules(plan)


def test_normal_creatinine_without_egfr_or_weight_is_not_flagged_fhir() -> None:
    plan = from_bundle(lab(CREATININE, 0.7, "mg/dL"), birth="1980-04-04")
    assert not {"ldn.renal.impairment_estimated", "ldn.renal.creatinine_only"} & rules(plan)
    assert "ldn.renal.tests_missing" not in rules(plan)


def test_creatinine_without_egfr_weight_or_age_asks_for_an_egfr_file() -> None:
    # No age, no estimate: the creatinine is named and an eGFR asked for.
    plan = contract(
        load_patient(HERE / "pn-age-78-creatinine-only-no-weight.yaml").model_copy(
            update={"birth_date": None}
        )
    )
    assert "ldn.renal.creatinine_only" in rules(plan, "info")
    assert "2.4 mg/dL" in message(plan, "ldn.renal.creatinine_only")
    assert "ldn.renal.tests_missing" not in rules(plan)


def test_creatinine_clearance_45_without_egfr_starts_low_file() -> None:
    plan = from_file("pn-age-70-creatinine-clearance-45.yaml")
    assert "ldn.renal.impairment_crcl" in rules(plan, "warning")
    assert "Cockcroft" in message(plan, "ldn.renal.impairment_crcl")
    assert "reduced kidney function" in message(plan, "schedule.start_low")
    assert plan["ldn"]["schedule"][0]["dose_mg"] == 1.0


def test_normal_creatinine_clearance_without_egfr_is_not_flagged() -> None:
    plan = contract(
        load_patient(HERE / "pn-age-70-creatinine-clearance-45.yaml").model_copy(
            update={"weight_kg": 140.0}
        )
    )
    assert "ldn.renal.impairment_crcl" not in rules(plan)
    assert "ldn.renal.tests_missing" not in rules(plan)


# -- item 4: already on LDN with surgery coming: a stop-and-restart warning with the date -------
SURGERY_EXT = "https://ldncare.org/fhir/StructureDefinition/planned-surgery"


def test_ldn_taken_with_surgery_in_six_days_warns_to_stop_and_dates_the_restart_file() -> None:
    plan = from_file("pn-ldn-current-surgery-in-6-days.yaml")
    assert plan["ldn"]["course"]["kind"] == "continue"
    assert "schedule.surgery_current_ldn" in rules(plan, "warning")
    assert "schedule.surgery_after_review" not in rules(plan)
    text = message(plan, "schedule.surgery_current_ldn")
    assert "2026-12-10" in text and "2026-12-20" in text and "Stop LDN" in text


@pytest.mark.parametrize("text", ["Naltrexone 4.5 mg compounded", "LDN 4.5 mg"])
def test_ldn_taken_with_surgery_in_six_days_fhir(text: str) -> None:
    data = bundle(med_request(text, authored="2026-06-01", dose="4.5 mg at bedtime"))
    patient = data["entry"][0]["resource"]
    patient["extension"] = [{"url": SURGERY_EXT, "valueDate": "2026-12-10"}]
    plan = contract(patient_from_bundle(data))
    assert "schedule.surgery_current_ldn" in rules(plan, "warning")
    assert "2026-12-20" in message(plan, "schedule.surgery_current_ldn")


def test_new_ldn_with_surgery_in_ten_days_still_defers_the_first_dose() -> None:
    data = bundle()
    data["entry"][0]["resource"]["extension"] = [{"url": SURGERY_EXT, "valueDate": "2026-12-14"}]
    plan = contract(patient_from_bundle(data))
    assert "schedule.surgery_deferred" in rules(plan)
    assert "schedule.surgery_current_ldn" not in rules(plan)
    assert plan["ldn"]["schedule"][0]["start_date"] == "2026-12-24"


# -- item 9: a patient already at the target continues, not a one-day course -----------------
def test_ldn_at_target_since_october_is_told_to_continue_until_the_review_file() -> None:
    plan = from_file("pn-ldn-abbreviation-current.yaml")
    rows = plan["ldn"]["schedule"]
    assert len(rows) == 1
    assert rows[0]["instruction"].startswith("Continue the current dose: 4.5 mg")
    assert "until the review, which is due now" in rows[0]["instruction"]


def test_ldn_3_mg_continues_then_steps_up_fhir() -> None:
    plan = from_bundle(med_request("LDN 3 mg capsule", authored="2026-09-01"))
    rows = plan["ldn"]["schedule"]
    assert [r["dose_mg"] for r in rows] == [3.0, 4.0, 4.5]
    assert rows[0]["instruction"].startswith("Continue the current dose: 3 mg")
    assert not rows[1]["instruction"].startswith("Continue")


# -- item 8: a washout with a known end is a deferred start when it is the only stop ----------
def test_methadone_stopped_ten_days_ago_starts_after_the_two_week_interval_file() -> None:
    plan = from_file("pn-methadone-stopped-10-days.yaml")
    ldn = plan["ldn"]
    assert ldn["eligibility"] == "eligible_with_cautions"
    assert "ldn.opioid.washout" in rules(plan, "contraindication")  # still shown
    assert "schedule.washout_deferred" in rules(plan, "warning")
    assert ldn["course"] == {
        "kind": "new",
        "current_dose": None,
        "start": "2026-12-08",
        "rules": ["schedule.washout_deferred"],
    }
    assert ldn["schedule"][0]["start_date"] == "2026-12-08"
    assert "no opioid of any kind" in message(plan, "schedule.washout_deferred")


def test_oxycodone_stopped_three_days_ago_starts_after_ten_days_fhir() -> None:
    statement = med_statement("Oxycodone 5 mg tablet", status="completed")
    statement["effectivePeriod"] = {"start": "2026-11-20", "end": "2026-12-01"}
    plan = from_bundle(statement)
    assert plan["ldn"]["eligibility"] == "eligible_with_cautions"
    assert plan["ldn"]["schedule"][0]["start_date"] == "2026-12-11"
    assert "ldn.opioid.washout" in rules(plan, "contraindication")


def test_washout_with_another_contraindication_stays_not_recommended() -> None:
    plan = from_file("pn-oxycodone-stopped-3-days-age-15.yaml")
    assert_no_schedule(plan)
    assert {"ldn.opioid.washout", "ldn.age.minor"} <= rules(plan, "contraindication")
    assert "schedule.washout_deferred" not in rules(plan)


def test_kratom_stopped_three_days_ago_is_not_deferred_use_is_unrecorded() -> None:
    statement = med_statement("Kratom capsules", status="completed")
    statement["effectivePeriod"] = {"start": "2026-06-01", "end": "2026-12-01"}
    plan = from_bundle(statement)
    assert_no_schedule(plan)
    assert "schedule.washout_deferred" not in rules(plan)


def test_undated_stop_is_not_deferred_on_an_assumed_date() -> None:
    plan = from_bundle(
        med_request("Oxycodone 5 mg tablet", status="stopped", authored="2026-11-28")
    )
    assert_no_schedule(plan)
    assert "ldn.opioid.washout_assumed" in rules(plan)
    assert "schedule.washout_deferred" not in rules(plan)
