"""Named vignettes for the independent pharmacist review of issue 14 (alternatives/options).

Each case comes as a patient file under ``patients/`` and as a FHIR R4 Bundle read by the real
reader; the factory patients cover the class around the example. Each failed before the fix.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.core.daily_dose import current_dose
from ldncare.core.patient import MedicationUse
from ldncare.core.renal import ckd_epi_2021
from ldncare.evidence.models import Evidence
from ldncare.patient_file import load_patient
from tests.options_support import (
    evidence,
    fhir_bundle,
    options_for,
    options_for_bundle,
    patient,
    rules_of,
)

PATIENTS = Path(__file__).parent / "patients"


@pytest.fixture(scope="module")
def ev() -> Evidence:
    return evidence()


def _reason(option, rule: str):  # type: ignore[no-untyped-def]
    return next(r for r in option.reasons if r.rule == rule)


# --- Item 2: tramadol kidney / age / liver limits (Ultram label) -------------------------


def test_eighty_year_old_on_tramadol_400_with_crcl_21_is_told_to_reduce_to_200(
    ev: Evidence,
) -> None:
    """Ultram label: CrCl < 30 -> every 12 h, at most 200 mg a day; over 75 -> 300 mg."""
    opts = options_for(load_patient(PATIENTS / "pn-tramadol-400-crcl-21-age-80.yaml"), ev)
    tramadol = opts["tramadol"]
    assert tramadol.suitability == "current"
    assert tramadol.max_daily_dose_mg == Decimal(200)
    assert tramadol.current_daily_mg == Decimal(400)  # "four times daily" in the name
    assert tramadol.advice == "reduce"
    excess = _reason(tramadol, "option.current.above_reduced_max")
    assert "200 mg a day" in excess.message
    limits = [r.message for r in tramadol.reasons if r.rule == "option.dose_limit"]
    assert any("every 12 hours" in m for m in limits)
    assert any("Age 80" in m for m in limits)
    assert "label_tramadol" in excess.citations


def test_same_patient_as_fhir_bundle_gets_the_same_tramadol_limit(ev: Evidence) -> None:
    bundle = fhir_bundle(
        age=80,
        weight_kg=55,
        creatinine_mg_dl=1.9,
        meds=(("Tramadol 100 mg tablet", "100 mg four times daily"),),
    )
    tramadol = options_for_bundle(bundle, ev)["tramadol"]
    assert tramadol.max_daily_dose_mg == Decimal(200)
    assert tramadol.advice == "reduce"


@pytest.mark.parametrize(
    ("kwargs", "limit"),
    [
        ({"age": 80}, 300),
        ({"age": 76}, 300),
        ({"age": 75}, 400),
        ({"age": 50, "creatinine": (3.0, "mg/dL")}, 200),
        ({"age": 50, "egfr": 25}, 200),
        ({"age": 50, "conditions": ["Cirrhosis of liver"]}, 100),
        ({"age": 80, "conditions": ["Alcoholic cirrhosis"]}, 100),
        ({"age": 50}, 400),
    ],
)
def test_tramadol_new_start_maximum_follows_the_label_limits(
    ev: Evidence, kwargs: dict[str, object], limit: int
) -> None:
    """Over 75: 300 mg; CrCl < 30: 200 mg; cirrhosis: 50 mg every 12 h; else 400 mg."""
    tramadol = options_for(patient(**kwargs), ev)["tramadol"]  # type: ignore[arg-type]
    assert tramadol.max_daily_dose_mg == Decimal(limit)
    assert ("option.dose_limit" in rules_of(tramadol)) == (limit < 400)


@settings(max_examples=60, deadline=None)
@given(
    age=st.integers(min_value=18, max_value=100),
    weight=st.floats(min_value=35, max_value=150),
    creatinine=st.floats(min_value=0.4, max_value=10),
)
def test_tramadol_maximum_never_exceeds_the_label_limit_for_the_patient(
    age: int, weight: float, creatinine: float
) -> None:
    """Safety invariant: whatever the kidney function and age, tramadol's maximum is at most
    200 mg below CrCl 30 and at most 300 mg over 75."""
    ev = _EV
    opts = options_for(patient(age=age, weight_kg=weight, creatinine=(creatinine, "mg/dL")), ev)
    tramadol = opts["tramadol"]
    crcl = (140 - age) * weight / (72 * creatinine) * 0.85
    assert tramadol.max_daily_dose_mg is not None
    if crcl < 30:
        assert tramadol.max_daily_dose_mg <= 200
    if age > 75:
        assert tramadol.max_daily_dose_mg <= 300


_EV = evidence()


# --- Item 3: kidney gaps -----------------------------------------------------------------


def test_dialysis_patient_with_no_labs_gets_the_lowest_band_and_no_duloxetine(
    ev: Evidence,
) -> None:
    """ESRD on haemodialysis, no creatinine or eGFR: the gabapentin label's CrCl < 15 band
    (100-300 mg a day), duloxetine avoided (label: avoid in ESRD), basis taken from the
    diagnosis and said so."""
    opts = options_for(load_patient(PATIENTS / "pn-gabapentin-esrd-dialysis-no-labs.yaml"), ev)
    gabapentin = opts["gabapentin"]
    assert gabapentin.max_daily_dose_mg == Decimal(300)
    band = _reason(gabapentin, "option.renal.band")
    assert "taken from the diagnosis" in band.message
    assert "below 15" in band.message
    assert opts["duloxetine"].suitability == "avoid"
    assert opts["pregabalin"].max_daily_dose_mg == Decimal(75)
    assert opts["tramadol"].max_daily_dose_mg == Decimal(200)
    assert "option.renal.from_diagnosis" in rules_of(gabapentin)
    assert "kdigo2012" in gabapentin.citation_ids()
    for option in opts.values():
        assert "option.renal.unknown" not in rules_of(option), option.drug


def test_dialysis_patient_as_fhir_bundle_also_avoids_duloxetine(ev: Evidence) -> None:
    bundle = fhir_bundle(
        age=65, sex="male", conditions=("End stage renal disease", "Dependence on hemodialysis")
    )
    opts = options_for_bundle(bundle, ev)
    assert opts["duloxetine"].suitability == "avoid"
    assert opts["gabapentin"].max_daily_dose_mg == Decimal(300)


@pytest.mark.parametrize(
    ("condition", "gabapentin_max"),
    [("Chronic kidney disease stage 4", 700), ("CKD stage 5", 300), ("Peritoneal dialysis", 300)],
)
def test_kidney_failure_diagnosis_without_labs_sets_the_band(
    ev: Evidence, condition: str, gabapentin_max: int
) -> None:
    opts = options_for(patient(conditions=[condition]), ev)
    assert opts["gabapentin"].max_daily_dose_mg == Decimal(gabapentin_max)
    assert opts["duloxetine"].suitability == "avoid"


def test_ckd_stage_3_diagnosis_without_labs_still_asks_for_kidney_function(ev: Evidence) -> None:
    opts = options_for(patient(conditions=["Chronic kidney disease stage 3a"]), ev)
    assert "option.renal.unknown" in rules_of(opts["gabapentin"])


def test_creatinine_without_weight_gives_ckd_epi_egfr_not_no_creatinine(ev: Evidence) -> None:
    """78-year-old woman, creatinine 2.4 mg/dL, no weight: CKD-EPI 2021 eGFR about 20, so
    gabapentin 1800 mg a day is above the 200-700 mg band (label_gabapentin)."""
    opts = options_for(
        load_patient(PATIENTS / "pn-gabapentin-1800-creatinine-no-weight-78.yaml"), ev
    )
    gabapentin = opts["gabapentin"]
    assert gabapentin.advice == "reduce"
    excess = _reason(gabapentin, "option.current.above_renal_max")
    assert "CKD-EPI 2021" in excess.message
    assert "700 mg a day" in excess.message
    assert "inker2021" in _reason(gabapentin, "option.renal.ckd_epi").citations
    for option in opts.values():
        assert "option.renal.unknown" not in rules_of(option), option.drug
        assert all("No creatinine" not in r.message for r in option.reasons)


def test_creatinine_without_weight_as_fhir_bundle(ev: Evidence) -> None:
    bundle = fhir_bundle(
        age=78,
        weight_kg=None,
        creatinine_mg_dl=2.4,
        meds=(("Gabapentin 600 MG Oral Capsule", "600 mg three times daily"),),
    )
    gabapentin = options_for_bundle(bundle, ev)["gabapentin"]
    assert gabapentin.advice == "reduce"
    assert gabapentin.max_daily_dose_mg == Decimal(700)


def test_ckd_epi_2021_matches_the_published_worked_example() -> None:
    """kidney.org / Inker 2021: 55-year-old woman, creatinine 0.9 mg/dL -> about 76."""
    assert 75 <= ckd_epi_2021(age=55, sex="female", creatinine_mg_per_dl=0.9) <= 76.5
    unknown = ckd_epi_2021(age=55, sex="unknown", creatinine_mg_per_dl=2.0)
    assert unknown == min(
        ckd_epi_2021(age=55, sex="male", creatinine_mg_per_dl=2.0),
        ckd_epi_2021(age=55, sex="female", creatinine_mg_per_dl=2.0),
    )


# --- Item 10: missing data said on every option; frequency in the name -------------------


def test_no_kidney_data_is_said_for_venlafaxine_and_tramadol_too(ev: Evidence) -> None:
    opts = options_for(patient(), ev)
    for drug in ("gabapentin", "pregabalin", "duloxetine", "venlafaxine", "tramadol"):
        assert "option.renal.unknown" in rules_of(opts[drug]), drug
    assert "option.renal.unknown" not in rules_of(opts["amitriptyline"])


@pytest.mark.parametrize(
    ("name", "daily"),
    [
        ("Gabapentin 600 mg three times daily", 1800),
        ("Tramadol 50 mg BID", 100),
        ("Pregabalin 150 mg twice daily", 300),
        ("Tramadol 100 mg four times daily", 400),
        ("Duloxetine 60 mg once daily", 60),
    ],
)
def test_frequency_written_in_the_medicine_name_gives_the_daily_total(
    name: str, daily: int
) -> None:
    assert current_dose(MedicationUse(name=name)).daily_mg == Decimal(daily)


def test_name_without_frequency_still_gives_no_daily_total() -> None:
    assert current_dose(MedicationUse(name="Gabapentin 300 MG Oral Capsule")).daily_mg is None


# --- Item 12: rationale on every reason; per-drug citations -------------------------------


def test_every_option_reason_carries_its_rule_rationale(ev: Evidence) -> None:
    opts = options_for(patient(age=15, conditions=["Depression"]), ev)
    for option in opts.values():
        for reason in option.to_contract()["reasons"]:
            assert reason["rationale"] == ev.rule(reason["rule"]).rationale, reason["rule"]


def test_teenager_capsaicin_patch_reason_does_not_cite_other_drugs_labels(ev: Evidence) -> None:
    """The reviewer's example: the under-18 reason cited seven labels, gabapentin's for the
    capsaicin patch."""
    opts = options_for(patient(age=15), ev)
    capsaicin = _reason(opts["capsaicin_patch"], "option.age.under18")
    assert not any(c.startswith("label_") for c in capsaicin.citations)
    gabapentin = _reason(opts["gabapentin"], "option.age.under18")
    assert "label_gabapentin" in gabapentin.citations
    assert "label_pregabalin" not in gabapentin.citations


# --- Item 5: dextromethorphan is serotonergic -------------------------------------------


def test_effexor_and_delsym_warn_of_serotonin_syndrome_naming_delsym(ev: Evidence) -> None:
    """boyer2005 names dextromethorphan among the drugs that cause serotonin syndrome."""
    opts = options_for(load_patient(PATIENTS / "pn-venlafaxine-delsym.yaml"), ev)
    for drug in ("tramadol", "amitriptyline", "nortriptyline"):
        reason = _reason(opts[drug], "option.serotonergic.caution")
        assert "Delsym" in reason.message, drug
        assert "boyer2005" in reason.citations
    venlafaxine = opts["venlafaxine"]
    assert venlafaxine.suitability == "current"
    # A current medicine is worded as a combination already taken, not as "adding" it
    # (issue 14 second review C4: rules/current_combinations.yaml).
    current = _reason(venlafaxine, "option.serotonergic.caution.current")
    assert "Delsym" in current.message and "adding" not in current.message


@pytest.mark.parametrize(
    "product",
    [
        "dextromethorphan 30 mg",
        "Delsym",
        "Robitussin DM",
        "Mucinex DM",
        "Guaifenesin DM syrup",
        "Nuedexta 20 mg/10 mg",
        "DXM",
    ],
)
def test_dextromethorphan_products_make_snri_and_tramadol_warn(ev: Evidence, product: str) -> None:
    opts = options_for(patient(meds=[product]), ev)
    for drug in ("duloxetine", "venlafaxine", "tramadol", "amitriptyline"):
        assert "option.serotonergic.caution" in rules_of(opts[drug]), (product, drug)


def test_plain_guaifenesin_is_not_serotonergic(ev: Evidence) -> None:
    opts = options_for(patient(meds=["Guaifenesin 400 mg"]), ev)
    assert "option.serotonergic.caution" not in rules_of(opts["tramadol"])


def test_duloxetine_and_dextromethorphan_as_fhir_bundle(ev: Evidence) -> None:
    bundle = fhir_bundle(
        meds=(
            ("Duloxetine 60 MG Delayed Release Oral Capsule", "60 mg once daily"),
            ("Dextromethorphan hydrobromide 15 mg/5 mL syrup", "10 mL every 6 hours"),
        ),
    )
    opts = options_for_bundle(bundle, ev)
    assert "option.serotonergic.caution" in rules_of(opts["tramadol"])
    assert "option.serotonergic.caution.current" in rules_of(opts["duloxetine"])


# --- Item 6: bupropion; full-dose naltrexone blocks tramadol ------------------------------


def test_contrave_makes_tramadol_avoid_and_tricyclics_warn(ev: Evidence) -> None:
    """Vivitrol/naltrexone labels: opioid analgesics contraindicated; overcoming the block can
    be fatal. Bupropion label: seizure threshold; CYP2D6 inhibition raises tricyclic levels."""
    opts = options_for(load_patient(PATIENTS / "pn-contrave.yaml"), ev)
    tramadol = opts["tramadol"]
    assert tramadol.suitability == "avoid"
    assert {"option.tramadol.naltrexone", "option.tramadol.seizure_threshold"} <= rules_of(tramadol)
    assert "label_vivitrol" in _reason(tramadol, "option.tramadol.naltrexone").citations
    for drug in ("amitriptyline", "nortriptyline"):
        reason = _reason(opts[drug], "option.tca.cyp2d6_inhibitor")
        assert "Contrave" in reason.message
        assert reason.citations == ("label_bupropion",)
    assert "option.tca.cyp2d6_inhibitor" not in rules_of(opts["duloxetine"])


@pytest.mark.parametrize(
    "med", ["Vivitrol 380 mg injection", "Revia 50 mg", "naltrexone 50 mg tablet", "Contrave"]
)
def test_full_dose_naltrexone_makes_tramadol_avoid(ev: Evidence, med: str) -> None:
    tramadol = options_for(patient(meds=[med]), ev)["tramadol"]
    assert tramadol.suitability == "avoid", med
    assert "option.tramadol.naltrexone" in rules_of(tramadol)


def test_wellbutrin_alone_puts_tramadol_on_caution_for_seizures(ev: Evidence) -> None:
    opts = options_for(patient(meds=["Wellbutrin XL 300 mg"]), ev)
    assert "option.tramadol.seizure_threshold" in rules_of(opts["tramadol"])
    assert "option.tramadol.naltrexone" not in rules_of(opts["tramadol"])
    assert opts["tramadol"].suitability == "caution"
    assert "option.tca.cyp2d6_inhibitor" in rules_of(opts["amitriptyline"])


def test_bupropion_as_fhir_bundle(ev: Evidence) -> None:
    bundle = fhir_bundle(
        meds=(("bupropion hydrochloride 150 MG Extended Release Oral Tablet", "150 mg once daily"),)
    )
    opts = options_for_bundle(bundle, ev)
    assert "option.tramadol.seizure_threshold" in rules_of(opts["tramadol"])
    assert "option.tca.cyp2d6_inhibitor" in rules_of(opts["nortriptyline"])


# --- Item 7: pregnancy per option ---------------------------------------------------------


def test_pregnant_patient_gets_each_labels_own_pregnancy_point(ev: Evidence) -> None:
    opts = options_for(load_patient(PATIENTS / "pn-pregnant-options.yaml"), ev)
    tramadol = _reason(opts["tramadol"], "option.pregnancy.tramadol")
    assert "neonatal opioid withdrawal syndrome" in tramadol.message
    assert tramadol.citations == ("label_tramadol",)
    pregabalin = _reason(opts["pregabalin"], "option.pregnancy.pregabalin")
    assert "major birth defects" in pregabalin.message
    assert "mhra2022_pregabalin" in pregabalin.citations
    for drug in ("duloxetine", "venlafaxine"):
        snri = _reason(opts[drug], "option.pregnancy.snri")
        assert "postpartum haemorrhage" in snri.message
        assert snri.citations == (f"label_{drug}",)
    generic = _reason(opts["gabapentin"], "option.pregnancy")
    assert generic.citations == ("label_gabapentin",)
    for option in opts.values():
        assert all(
            "human data" not in r.message
            for r in option.reasons
            if option.drug in ("tramadol", "pregabalin", "duloxetine", "venlafaxine")
        )


def test_pregnancy_condition_in_fhir_bundle_gives_the_tramadol_boxed_warning(
    ev: Evidence,
) -> None:
    opts = options_for_bundle(fhir_bundle(age=30, conditions=("Pregnancy",)), ev)
    assert "option.pregnancy.tramadol" in rules_of(opts["tramadol"])
    assert "option.pregnancy.pregabalin" in rules_of(opts["pregabalin"])


# --- Item 11: QT / slow heart rate -----------------------------------------------------------


def test_fingolimod_is_counted_as_a_qt_drug_when_tricyclics_are_offered(ev: Evidence) -> None:
    opts = options_for(load_patient(PATIENTS / "pn-ms-fingolimod.yaml"), ev)
    for drug in ("amitriptyline", "nortriptyline"):
        assert "Gilenya" in _reason(opts[drug], "option.tca.qt_drugs").message
    assert "option.venlafaxine.qt_drugs" in rules_of(opts["venlafaxine"])


@pytest.mark.parametrize("med", ["Prograf 1 mg", "tacrolimus 2 mg", "Betapace 80 mg", "sotalol"])
def test_qt_drugs_warn_for_tricyclics_and_venlafaxine(ev: Evidence, med: str) -> None:
    opts = options_for(patient(meds=[med]), ev)
    assert "option.tca.qt_drugs" in rules_of(opts["amitriptyline"]), med
    assert "option.venlafaxine.qt_drugs" in rules_of(opts["venlafaxine"]), med
    assert "option.venlafaxine.qt_drugs" not in rules_of(opts["duloxetine"])


def test_transplant_tacrolimus_as_fhir_bundle(ev: Evidence) -> None:
    bundle = fhir_bundle(
        conditions=("Kidney transplant recipient",),
        meds=(("Tacrolimus 1 MG Oral Capsule", "2 mg twice daily"),),
        creatinine_mg_dl=1.4,
    )
    opts = options_for_bundle(bundle, ev)
    assert "option.tca.qt_drugs" in rules_of(opts["nortriptyline"])
    assert "option.venlafaxine.qt_drugs" in rules_of(opts["venlafaxine"])


# --- Item 12: LDN rules cite what supports them ------------------------------------------


@pytest.mark.parametrize("rule", ["ldn.pregnancy", "ldn.breastfeeding"])
def test_ldn_pregnancy_and_breastfeeding_rules_do_not_cite_an_adult_trial_as_support(
    ev: Evidence, rule: str
) -> None:
    assert ev.rule(rule).citations == ("label_naltrexone",)
    assert "bruun2024" not in ev.rule(rule).rationale


# --- Item 10: the optional frequency field of the patient file ---------------------------


def test_frequency_field_lets_the_current_pregabalin_dose_be_checked(ev: Evidence) -> None:
    """Lyrica label: CrCl 30-60 -> 75-300 mg a day; 300 mg twice daily is 600 mg."""
    p = load_patient(PATIENTS / "pn-pregabalin-300-bid-crcl-45.yaml")
    assert p.medications[0].dose_text == "300 mg twice daily"
    pregabalin = options_for(p, ev)["pregabalin"]
    assert pregabalin.current_daily_mg == Decimal(600)
    assert pregabalin.advice == "reduce"
    assert "option.current.above_renal_max" in rules_of(pregabalin)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "Lyrica", "dose": "300 mg", "frequency": "sometimes"}, "not understood"),
        ({"name": "Lyrica", "dose": "300 mg twice daily", "frequency": "TDS"}, "contradicts"),
    ],
)
def test_unreadable_or_contradictory_frequency_is_refused_naming_the_field(
    entry: dict[str, str], message: str
) -> None:
    from ldncare.errors import InvalidInput
    from ldncare.patient_file import patient_from_data

    with pytest.raises(InvalidInput, match=r"medications\[0\]\.frequency") as err:
        patient_from_data({"id": "x", "medications": [entry]})
    assert message in str(err.value)


def test_frequency_without_a_dose_uses_the_strength_in_the_name() -> None:
    from ldncare.patient_file import patient_from_data

    p = patient_from_data(
        {"id": "x", "medications": [{"name": "Gabapentin 300 MG Oral Capsule", "frequency": "TID"}]}
    )
    assert current_dose(p.medications[0]).daily_mg == Decimal(900)


@pytest.mark.parametrize(
    ("condition", "limited"),
    [
        ("Cirrhosis of liver", True),
        ("Primary biliary cirrhosis", True),
        ("Chronic hepatitis C", False),
        ("Non-alcoholic steatohepatitis", False),
    ],
)
def test_tramadol_cirrhosis_dose_applies_to_cirrhosis_only(
    ev: Evidence, condition: str, limited: bool
) -> None:
    """The label's 50 mg every 12 h is for cirrhosis, not any liver disease."""
    tramadol = options_for(patient(conditions=[condition]), ev)["tramadol"]
    assert (tramadol.max_daily_dose_mg == Decimal(100)) == limited


def test_cirrhosis_icd10_code_in_fhir_bundle_limits_tramadol(ev: Evidence) -> None:
    bundle = fhir_bundle(conditions=("Alcoholic cirrhosis of liver",))
    assert options_for_bundle(bundle, ev)["tramadol"].max_daily_dose_mg == Decimal(100)
