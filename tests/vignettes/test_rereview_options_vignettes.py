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


# --- C4: dangerous combinations already taken are plan findings -------------------------


def _assert_linezolid_with_venlafaxine(plan: dict[str, Any]) -> None:
    combo = findings(plan)["combination.maoi_serotonergic"]
    assert combo["severity"] == "contraindication"
    assert "Zyvox" in combo["message"] and "Effexor" in combo["message"]
    assert "Contact the prescriber today" in combo["message"]
    assert {"label_zyvox", "label_venlafaxine"} <= set(combo["citations"])
    # About the medicines taken, not LDN: LDN is not barred, but not plain "eligible" either.
    assert plan["ldn"]["eligibility"] == "eligible_with_cautions"
    venlafaxine = option(plan, "venlafaxine")
    assert venlafaxine["current"]["advice"] == "switch"
    texts = " ".join(r["message"] for r in venlafaxine["reasons"])
    assert "continue, optimise" not in texts  # no "continue" next to "must not be used"
    assert "option.serotonergic.maoi.current" in option_rules(venlafaxine)
    for drug in ("tramadol", "duloxetine", "amitriptyline", "nortriptyline"):
        assert option(plan, drug)["suitability"] == "avoid", drug


def test_zyvox_started_on_top_of_effexor_raises_a_contact_the_prescriber_finding() -> None:
    _assert_linezolid_with_venlafaxine(from_file("pn-zyvox-and-effexor.yaml"))


def test_zyvox_and_effexor_as_fhir_bundle() -> None:
    plan = from_bundle(
        birth="1970-01-01",
        sex="female",
        meds=(("Zyvox 600 mg", "600 mg twice daily"), ("Effexor XR 75 mg", "75 mg once daily")),
        egfr=(90, "2026-11-01"),
    )
    _assert_linezolid_with_venlafaxine(plan)


def _assert_two_snris(plan: dict[str, Any]) -> None:
    found = findings(plan)
    assert found["combination.same_class"]["severity"] == "warning"
    assert "two SNRIs" in found["combination.same_class"]["message"]
    assert "Savella" in found["combination.serotonergic"]["message"]
    duloxetine = option(plan, "duloxetine")
    texts = " ".join(r["message"] for r in duloxetine["reasons"])
    assert "adding Duloxetine" not in texts and "do not add Duloxetine" not in texts
    assert "option.same_class.current" in option_rules(duloxetine)
    assert duloxetine["current"]["advice"] == "switch"
    assert option(plan, "venlafaxine")["suitability"] == "avoid"


def test_cymbalta_and_savella_together_are_flagged_as_two_snris() -> None:
    _assert_two_snris(from_file("pn-cymbalta-and-savella.yaml"))


def test_cymbalta_and_savella_as_fhir_bundle() -> None:
    plan = from_bundle(
        birth="1972-01-01",
        sex="female",
        meds=(("Cymbalta 60 mg", "60 mg once daily"), ("Savella 50 mg", "50 mg twice daily")),
        egfr=(90, "2026-11-01"),
    )
    _assert_two_snris(plan)


def _assert_auvelity(plan: dict[str, Any]) -> None:
    tramadol = option(plan, "tramadol")
    assert tramadol["suitability"] == "avoid"
    assert "option.tramadol.bupropion_serotonergic" in option_rules(tramadol)
    assert "option.serotonergic.caution" in option_rules(option(plan, "duloxetine"))
    assert "option.tca.cyp2d6_inhibitor" in option_rules(option(plan, "amitriptyline"))


def test_auvelity_is_dextromethorphan_and_bupropion_so_tramadol_is_avoided() -> None:
    _assert_auvelity(from_file("pn-auvelity.yaml"))


def test_auvelity_as_fhir_bundle() -> None:
    plan = from_bundle(
        birth="1975-01-01",
        meds=(("Auvelity 45 mg/105 mg extended-release tablet", "1 tablet twice daily"),),
        egfr=(90, "2026-11-01"),
    )
    _assert_auvelity(plan)


def test_duloxetine_with_delsym_cough_syrup_is_a_serotonergic_combination_finding() -> None:
    plan = from_bundle(
        birth="1968-01-01",
        meds=(("Cymbalta 60 mg", "60 mg once daily"), ("Delsym 30 mg/5 mL", "10 mL twice daily")),
        egfr=(90, "2026-11-01"),
    )
    combo = findings(plan)["combination.serotonergic"]
    assert "Cymbalta" in combo["message"] and "Delsym" in combo["message"]
    assert "boyer2005" in combo["citations"]


def test_gabapentin_and_pregabalin_together_are_two_gabapentinoids() -> None:
    plan = from_bundle(
        birth="1968-01-01",
        meds=(
            ("Neurontin 300 mg", "300 mg three times daily"),
            ("Lyrica 75 mg", "75 mg twice daily"),
        ),
        egfr=(90, "2026-11-01"),
    )
    assert "two gabapentinoids" in findings(plan)["combination.same_class"]["message"]


def test_one_snri_alone_raises_no_combination_finding() -> None:
    plan = from_bundle(
        birth="1968-01-01", meds=(("Cymbalta 60 mg", "60 mg once daily"),), egfr=(90, "2026-11-01")
    )
    assert not [r for r in findings(plan) if r.startswith("combination.")]
    assert plan["ldn"]["eligibility"] == "eligible"


MAOIS = ["Zyvox 600 mg", "linezolid 600 mg", "methylene blue injection", "Nardil 15 mg"]
PARTNERS = [
    "Effexor XR 75 mg",
    "Cymbalta 30 mg",
    "Savella 50 mg",
    "amitriptyline 10 mg",
    "tramadol 50 mg",
    "Delsym",
    "Auvelity 45 mg/105 mg",
]


@settings(max_examples=60, deadline=None)
@given(
    maoi=st.sampled_from(MAOIS),
    partner=st.sampled_from(PARTNERS),
    age=st.integers(min_value=18, max_value=95),
)
def test_property_any_maoi_with_a_serotonergic_partner_is_a_contraindication_finding(
    maoi: str, partner: str, age: int
) -> None:
    """Safety invariant: an MAOI (linezolid, methylene blue included) taken with an SNRI, a
    tricyclic, tramadol or dextromethorphan always raises the top-level finding, and the plan
    is never plain "eligible" next to it."""
    plan = from_bundle(
        birth=f"{AS_OF.year - age - 1}-01-01",
        meds=((maoi, "once daily"), (partner, "once daily")),
        egfr=(90, "2026-11-01"),
    )
    combo = findings(plan)["combination.maoi_serotonergic"]
    assert combo["severity"] == "contraindication"
    assert plan["ldn"]["eligibility"] != "eligible"


# --- C8: products with their own label; opioids with falls in older adults ---------------


def _assert_horizant(plan: dict[str, Any]) -> None:
    gabapentin = option(plan, "gabapentin")
    reason = next(
        r for r in gabapentin["reasons"] if r["rule"] == "option.gabapentin.own_label_product"
    )
    assert "not interchangeable" in reason["message"] and "3600 mg" in reason["message"]
    assert "label_horizant" in reason["citations"]
    assert not {r for r in option_rules(gabapentin) if r.startswith("option.current.above")}


def test_horizant_is_not_held_to_gabapentins_3600_mg_maximum() -> None:
    _assert_horizant(from_file("pn-horizant-600-twice-daily.yaml"))


def test_horizant_as_fhir_bundle() -> None:
    plan = from_bundle(
        birth="1970-01-01",
        meds=(("Horizant 600 mg extended-release tablet", "600 mg twice daily"),),
        egfr=(90, "2026-11-01"),
    )
    _assert_horizant(plan)


def _assert_gralise_egfr_25(plan: dict[str, Any]) -> None:
    gabapentin = option(plan, "gabapentin")
    assert "option.gabapentin.gralise_renal" in option_rules(gabapentin)
    assert gabapentin["current"]["advice"] == "switch"
    # Not told to "reduce to 700 mg once a day" (gabapentin's band) for a product that is not
    # to be given at all below 30 mL/min.
    assert "option.current.above_renal_max" not in option_rules(gabapentin)


def test_gralise_1800_with_egfr_25_is_switched_not_reduced_to_the_gabapentin_band() -> None:
    _assert_gralise_egfr_25(from_file("pn-gralise-1800-egfr-25.yaml"))


def test_gralise_with_egfr_25_as_fhir_bundle() -> None:
    plan = from_bundle(
        birth="1960-01-01",
        sex="female",
        meds=(("Gralise 600 mg", "1800 mg once daily"),),
        egfr=(25, "2026-11-01"),
    )
    _assert_gralise_egfr_25(plan)


def test_gralise_with_egfr_45_keeps_the_product_warning_only() -> None:
    plan = from_bundle(
        birth="1960-01-01",
        meds=(("Gralise 600 mg", "1800 mg once daily"),),
        egfr=(45, "2026-11-01"),
    )
    rules = option_rules(option(plan, "gabapentin"))
    assert "option.gabapentin.own_label_product" in rules
    assert "option.gabapentin.gralise_renal" not in rules


def _assert_tramadol_avoided_for_falls(plan: dict[str, Any]) -> None:
    tramadol = option(plan, "tramadol")
    reason = next(r for r in tramadol["reasons"] if r["rule"] == "option.falls.beers_opioid")
    assert "severe acute pain" in reason["message"]
    assert reason["citations"] == ["beers2023"]
    assert tramadol["current"]["advice"] == "switch"


def test_ninety_two_year_old_with_falls_on_tramadol_is_told_to_avoid_it() -> None:
    _assert_tramadol_avoided_for_falls(from_file("pn-age-92-falls-frail-tramadol.yaml"))


def test_ninety_two_year_old_with_falls_as_fhir_bundle() -> None:
    plan = from_bundle(
        birth="1934-03-01",
        sex="female",
        conditions=("Pudendal neuralgia", "Frailty", "History of falls"),
        meds=(("Tramadol 50 mg", "50 mg twice daily"),),
        egfr=(40, "2026-11-01"),
    )
    _assert_tramadol_avoided_for_falls(plan)


def test_new_tramadol_at_70_with_falls_is_avoid_not_caution() -> None:
    plan = from_bundle(
        birth="1956-01-01",
        conditions=("Pudendal neuralgia", "Recurrent falls"),
        egfr=(80, "2026-11-01"),
    )
    assert option(plan, "tramadol")["suitability"] == "avoid"
