"""Named clinical vignettes for the option safety fixes of issue 14.

Each test is a short case; the docstring names the source of the expected decision. Patients
come from the options factory (``tests/options_support.py``), from patient files under
``patients/`` and, for every item, from a FHIR R4 Bundle read by the real reader.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

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


# --- Item 1: age -------------------------------------------------------------------------


@pytest.mark.parametrize("age", [8, 11, 15, 17])
def test_child_or_adolescent_with_pn_gets_no_adult_start_of_any_option(
    ev: Evidence, age: int
) -> None:
    """Under 18 no option is a plain adult start (labels: neuropathic-pain indications are
    adult; finnerup2015 is in adults)."""
    opts = options_for(patient(age=age), ev)
    for option in opts.values():
        assert option.suitability in ("caution", "avoid"), option.drug
        assert option.schedule == (), option.drug
        assert "option.age.under18" in rules_of(option)


@pytest.mark.parametrize("age", [11, 15, 17])
def test_tramadol_is_avoided_under_18(ev: Evidence, age: int) -> None:
    """label_tramadol: contraindicated under 12 and after tonsillectomy under 18; avoid 12-18
    with respiratory risk factors."""
    tramadol = options_for(patient(age=age), ev)["tramadol"]
    assert tramadol.suitability == "avoid"
    assert "option.tramadol.under18" in rules_of(tramadol)
    assert "label_tramadol" in tramadol.citation_ids()


@pytest.mark.parametrize("age", [15, 19, 24])
def test_young_person_is_warned_about_antidepressant_suicidality(ev: Evidence, age: int) -> None:
    """Boxed warning of the SNRI and tricyclic labels: children, adolescents, young adults."""
    opts = options_for(patient(age=age), ev)
    for drug in ("duloxetine", "venlafaxine", "amitriptyline", "nortriptyline"):
        assert "option.antidepressant.young" in rules_of(opts[drug]), drug
        assert opts[drug].suitability != "preferred"
    assert "option.antidepressant.young" not in rules_of(opts["gabapentin"])


def test_adult_of_25_has_no_young_person_warning_and_gets_a_schedule(ev: Evidence) -> None:
    """The labels saw no increase in suicidality with antidepressants over age 24."""
    opts = options_for(patient(age=25), ev)
    assert "option.antidepressant.young" not in rules_of(opts["duloxetine"])
    assert opts["duloxetine"].schedule


def test_unknown_age_asks_to_confirm_an_adult_before_every_option(ev: Evidence) -> None:
    """Review item 10: tramadol (avoided under 18) and nortriptyline missed the reason."""
    opts = options_for(patient(age=None), ev)
    for drug, option in opts.items():
        assert "option.age.unknown" in rules_of(option), drug


def test_fifteen_year_old_from_patient_file_gets_no_adult_option(ev: Evidence) -> None:
    """The reviewer's case: 15-year-old with PN got tramadol caution, venlafaxine suitable."""
    p = load_patient(PATIENTS / "pn-age-15.yaml")
    opts = options_for(p, ev)
    assert opts["tramadol"].suitability == "avoid"
    assert opts["venlafaxine"].suitability == "caution"
    assert opts["venlafaxine"].schedule == ()


def test_fifteen_year_old_from_fhir_bundle_gets_no_adult_option(ev: Evidence) -> None:
    opts = options_for_bundle(fhir_bundle(age=15, conditions=("Pudendal neuralgia",)), ev)
    assert opts["tramadol"].suitability == "avoid"
    assert all(o.schedule == () for o in opts.values())


# --- Item 2: a medicine already taken -----------------------------------------------------


@pytest.mark.parametrize(
    "med",
    ["venlafaxine 75 mg", "Effexor XR 150 mg", "Venlafaxine 37.5 MG Extended Release Capsule"],
)
def test_venlafaxine_on_record_is_current_not_a_new_start(ev: Evidence, med: str) -> None:
    """Issue 14 item 6: venlafaxine on record was offered 'preferred' from 75 mg."""
    opts = options_for(patient(meds=[med], conditions=["Major depressive disorder"]), ev)
    venla = opts["venlafaxine"]
    assert venla.suitability == "current"
    assert venla.schedule == ()
    assert "option.current.taking" in rules_of(venla)
    contract = venla.to_contract()
    assert contract["current"]["advice"] in ("continue", "optimise", "review")
    assert contract["current"]["medicines"]


def test_duloxetine_120_mg_a_day_is_current_and_the_other_snri_is_avoid(ev: Evidence) -> None:
    """Duloxetine 120 mg/day was offered 'suitable' from 30 mg; a second SNRI is avoid."""
    p = patient(meds=[("Duloxetine 60 MG Delayed Release Oral Capsule", "60 mg twice daily")])
    opts = options_for(p, ev)
    dulox, venla = opts["duloxetine"], opts["venlafaxine"]
    assert dulox.suitability == "current" and dulox.schedule == ()
    assert dulox.current_daily_mg == Decimal(120)
    assert dulox.advice == "continue"
    assert venla.suitability == "avoid" and "option.same_class" in rules_of(venla)


def test_amitriptyline_taken_makes_nortriptyline_avoid(ev: Evidence) -> None:
    opts = options_for(patient(meds=[("amitriptyline 25 mg", "25 mg at night")]), ev)
    assert opts["amitriptyline"].suitability == "current"
    # 25 mg a day is within the NeuPSIG tricyclic range (25-150 mg, finnerup2015).
    assert opts["amitriptyline"].advice == "continue"
    assert opts["nortriptyline"].suitability == "avoid"
    assert "option.same_class" in rules_of(opts["nortriptyline"])


@pytest.mark.parametrize("med", ["pregabalin 75 mg", "Lyrica 150 mg"])
def test_pregabalin_taken_makes_gabapentin_avoid(ev: Evidence, med: str) -> None:
    opts = options_for(patient(meds=[med]), ev)
    assert opts["pregabalin"].suitability == "current"
    assert opts["gabapentin"].suitability == "avoid"
    assert opts["gabapentin"].schedule == ()


def test_gabapentin_below_the_usual_target_is_to_be_optimised(ev: Evidence) -> None:
    """NeuPSIG usual gabapentin target 1200-3600 mg/day (finnerup2015)."""
    p = patient(meds=[("gabapentin 300 mg", "300 mg three times a day")], egfr=95)
    gaba = options_for(p, ev)["gabapentin"]
    assert gaba.suitability == "current" and gaba.advice == "optimise"


def test_duloxetine_from_patient_file_is_current(ev: Evidence) -> None:
    opts = options_for(load_patient(PATIENTS / "pn-on-duloxetine-120.yaml"), ev)
    assert opts["duloxetine"].suitability == "current"
    assert opts["duloxetine"].current_daily_mg == Decimal(120)
    assert opts["venlafaxine"].suitability == "avoid"


def test_venlafaxine_from_fhir_bundle_is_current(ev: Evidence) -> None:
    bundle = fhir_bundle(meds=(("Effexor XR 75 MG", "75 mg once daily"),))
    opts = options_for_bundle(bundle, ev)
    assert opts["venlafaxine"].suitability == "current"
    assert opts["venlafaxine"].current_daily_mg == Decimal(75)
    assert opts["duloxetine"].suitability == "avoid"


@pytest.mark.parametrize("opioid", ["oxycodone 5 mg", "Percocet 5/325", "Butrans 10 mcg/hr patch"])
def test_tramadol_is_not_offered_on_top_of_another_opioid(ev: Evidence, opioid: str) -> None:
    """label_tramadol: other opioids add respiratory depression, seizures (issue 14 item 16)."""
    tramadol = options_for(patient(meds=[opioid]), ev)["tramadol"]
    assert tramadol.suitability == "avoid"
    assert "option.tramadol.opioid" in rules_of(tramadol)


def test_tramadol_taken_is_current_not_avoided_as_a_duplicate(ev: Evidence) -> None:
    tramadol = options_for(patient(meds=[("tramadol 50 mg", "50 mg four times a day")]), ev)[
        "tramadol"
    ]
    assert tramadol.suitability == "current"
    assert "option.tramadol.opioid" not in rules_of(tramadol)
    assert tramadol.current_daily_mg == Decimal(200)


# --- Item 3: a current dose above the renal or hepatic maximum ----------------------------


def test_gabapentin_900_mg_a_day_at_crcl_8_is_flagged(ev: Evidence) -> None:
    """The reviewer's case. label_gabapentin: CrCl < 15 mL/min, 100-300 mg a day."""
    p = patient(
        age=70,
        sex="male",
        weight_kg=60,
        creatinine=(7.0, "mg/dL"),
        meds=[("Gabapentin 300 MG Oral Capsule", "300 mg three times a day")],
    )
    gaba = options_for(p, ev)["gabapentin"]
    assert gaba.suitability == "current" and gaba.advice == "reduce"
    reason = next(r for r in gaba.reasons if r.rule == "option.current.above_renal_max")
    assert "900 mg a day is above the 300 mg a day maximum" in reason.message
    assert "label_gabapentin" in reason.citations


@pytest.mark.parametrize(
    ("dose_text", "flagged"),
    [("900 mg/day", True), ("300 mg once daily", False), ("600 mg", True), ("100 mg", False)],
)
def test_gabapentin_dose_variants_against_crcl_band_below_15(
    ev: Evidence, dose_text: str, flagged: bool
) -> None:
    """A dose without a frequency counts as at least one dose a day."""
    p = patient(
        age=70,
        sex="male",
        weight_kg=60,
        creatinine=(7.0, "mg/dL"),
        meds=[("gabapentin", dose_text)],
    )
    gaba = options_for(p, ev)["gabapentin"]
    assert ("option.current.above_renal_max" in rules_of(gaba)) is flagged
    if not flagged and "/day" not in dose_text and "daily" not in dose_text:
        assert "option.current.dose_unknown" in rules_of(gaba)


def test_pregabalin_300_mg_a_day_at_crcl_25_is_flagged(ev: Evidence) -> None:
    """label_pregabalin: CrCl 15-30 mL/min, 25-150 mg a day."""
    p = patient(
        age=70,
        sex="male",
        weight_kg=60,
        creatinine=(2.2, "mg/dL"),
        meds=[("pregabalin 150 mg", "150 mg twice a day")],
    )
    pregab = options_for(p, ev)["pregabalin"]
    assert pregab.advice == "reduce"
    assert "option.current.above_renal_max" in rules_of(pregab)


def test_venlafaxine_225_mg_in_cirrhosis_is_above_the_halved_maximum(ev: Evidence) -> None:
    """label_venlafaxine: halve the total daily dose in hepatic impairment (225 -> 112.5)."""
    p = patient(
        meds=[("venlafaxine 225 mg", "225 mg once daily")], conditions=["Cirrhosis of liver"]
    )
    venla = options_for(p, ev)["venlafaxine"]
    assert venla.advice == "reduce"
    reason = next(r for r in venla.reasons if r.rule == "option.current.above_reduced_max")
    assert "above the reduced maximum of 112.5 mg a day" in reason.message
    assert "Cirrhosis of liver" in reason.message


def test_duloxetine_taken_in_cirrhosis_is_to_be_switched(ev: Evidence) -> None:
    """label_duloxetine: avoid in hepatic insufficiency or chronic liver disease."""
    p = patient(meds=[("duloxetine 60 mg", "60 mg daily")], conditions=["Cirrhosis of liver"])
    dulox = options_for(p, ev)["duloxetine"]
    assert dulox.suitability == "current" and dulox.advice == "switch"


def test_duloxetine_above_120_mg_is_above_the_maximum(ev: Evidence) -> None:
    p = patient(meds=[("duloxetine 60 mg", "60 mg three times a day")])
    assert "option.current.above_max" in rules_of(options_for(p, ev)["duloxetine"])


def test_gabapentin_at_crcl_8_from_patient_file_is_flagged(ev: Evidence) -> None:
    gaba = options_for(load_patient(PATIENTS / "gabapentin-900-crcl-8.yaml"), ev)["gabapentin"]
    assert gaba.advice == "reduce" and "option.current.above_renal_max" in rules_of(gaba)


def test_gabapentin_at_crcl_8_from_fhir_bundle_is_flagged(ev: Evidence) -> None:
    bundle = fhir_bundle(
        age=70,
        sex="male",
        weight_kg=60,
        creatinine_mg_dl=7.0,
        meds=(("Gabapentin 300 MG Oral Capsule", "300 mg three times a day"),),
    )
    gaba = options_for_bundle(bundle, ev)["gabapentin"]
    assert gaba.advice == "reduce" and gaba.current_daily_mg == Decimal(900)


@pytest.mark.parametrize(
    "timing",
    [
        {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
        {"code": {"coding": [{"code": "TID"}]}},
        {"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}},
    ],
)
def test_gabapentin_structured_dosage_in_fhir_is_read_as_900_mg_a_day(
    ev: Evidence, timing: dict[str, object]
) -> None:
    """doseQuantity 300 mg with a structured timing (FHIR R4 Dosage): 900 mg a day at CrCl 8."""
    dosage = {"doseAndRate": [{"doseQuantity": {"value": 300, "unit": "mg"}}], "timing": timing}
    bundle = fhir_bundle(
        age=70,
        sex="male",
        weight_kg=60,
        creatinine_mg_dl=7.0,
        meds=(("Gabapentin 300 MG Oral Capsule", dosage),),
    )
    gaba = options_for_bundle(bundle, ev)["gabapentin"]
    assert gaba.current_daily_mg == Decimal(900)
    assert gaba.advice == "reduce"


@pytest.mark.parametrize(
    ("creatinine", "cut", "maximum"), [(1.5, 25, "168.75"), (2.2, 50, "112.5")]
)
def test_venlafaxine_is_reduced_in_renal_impairment(
    ev: Evidence, creatinine: float, cut: int, maximum: str
) -> None:
    """label_venlafaxine: at least 25 % less in mild to moderate, 50 % in severe impairment."""
    p = patient(age=70, sex="male", weight_kg=60, creatinine=(creatinine, "mg/dL"))
    venla = options_for(p, ev)["venlafaxine"]
    assert "option.renal.venlafaxine" in rules_of(venla)
    assert f"at least {cut} %" in next(
        r.message for r in venla.reasons if r.rule == "option.renal.venlafaxine"
    )
    assert venla.max_daily_dose_mg == Decimal(maximum)
    assert all(s.dose_mg <= Decimal(maximum) for s in venla.schedule)
    # Severe: halved schedule in capsule strengths; mild-moderate: no 56.25 mg schedule.
    assert [s.dose_mg for s in venla.schedule] == (
        [] if cut == 25 else [Decimal("37.5"), Decimal(75)]
    )


def test_current_venlafaxine_225_mg_at_crcl_25_is_above_the_reduced_maximum(ev: Evidence) -> None:
    p = patient(
        age=70,
        sex="male",
        weight_kg=60,
        creatinine=(2.2, "mg/dL"),
        meds=[("Effexor XR 225 mg", "225 mg once daily")],
    )
    venla = options_for(p, ev)["venlafaxine"]
    assert venla.advice == "reduce" and "option.current.above_reduced_max" in rules_of(venla)


# --- Item 4: bipolar disorder --------------------------------------------------------------


@pytest.mark.parametrize(
    "condition", ["Bipolar disorder", "Bipolar affective disorder, manic", "History of hypomania"]
)
def test_bipolar_disorder_cautions_snris_and_tricyclics(ev: Evidence, condition: str) -> None:
    """SNRI and tricyclic labels: activation of mania/hypomania; screen for bipolar disorder."""
    opts = options_for(patient(conditions=[condition, "Major depressive disorder"]), ev)
    for drug in ("duloxetine", "venlafaxine", "amitriptyline", "nortriptyline"):
        assert "option.antidepressant.bipolar" in rules_of(opts[drug]), drug
        assert opts[drug].suitability in ("caution", "avoid"), drug
    assert "option.antidepressant.bipolar" not in rules_of(opts["pregabalin"])


def test_bipolar_from_fhir_bundle(ev: Evidence) -> None:
    opts = options_for_bundle(fhir_bundle(conditions=("Bipolar I disorder",)), ev)
    assert "option.antidepressant.bipolar" in rules_of(opts["duloxetine"])


# --- Item 5: falls ------------------------------------------------------------------------


@pytest.mark.parametrize("condition", ["History of falls", "Recurrent falls", "Fall at home"])
def test_older_adult_with_falls_is_warned_off_gabapentinoids_snris_tcas(
    ev: Evidence, condition: str
) -> None:
    """beers2023: history of falls or fractures - avoid antiepileptics, antidepressants,
    opioids unless safer alternatives are not available."""
    opts = options_for(patient(age=72, conditions=[condition]), ev)
    for drug in ("gabapentin", "pregabalin", "duloxetine", "venlafaxine"):
        assert "option.falls.beers" in rules_of(opts[drug]), drug
        assert opts[drug].suitability != "preferred"
    # Opioids: "avoid except for severe acute pain" (second review C8).
    assert "option.falls.beers_opioid" in rules_of(opts["tramadol"])
    assert opts["tramadol"].suitability == "avoid"
    assert "option.falls.beers" not in rules_of(opts["lidocaine_plaster"])


def test_falls_rule_is_for_older_adults(ev: Evidence) -> None:
    """The Beers Criteria apply at 65 and over."""
    opts = options_for(patient(age=50, conditions=["History of falls"]), ev)
    assert "option.falls.beers" not in rules_of(opts["gabapentin"])


def test_falls_from_fhir_bundle(ev: Evidence) -> None:
    opts = options_for_bundle(fhir_bundle(age=80, conditions=("History of falls",)), ev)
    assert "option.falls.beers" in rules_of(opts["pregabalin"])


# --- Item 16: interactions and pharmacogenomics --------------------------------------------


@pytest.mark.parametrize("phenotype", ["poor metabolizer", "CYP2D6 PM: poor metaboliser"])
def test_cyp2d6_poor_metaboliser_avoids_tramadol(ev: Evidence, phenotype: str) -> None:
    """crews2021 (CPIC opioids), Table 3: avoid tramadol in poor metabolisers (strong)."""
    tramadol = options_for(patient(phenotypes={"CYP2D6": phenotype}), ev)["tramadol"]
    assert tramadol.suitability == "avoid"
    assert "crews2021" in tramadol.citation_ids()


def test_cyp2d6_ultrarapid_metaboliser_avoids_tramadol(ev: Evidence) -> None:
    tramadol = options_for(patient(phenotypes={"CYP2D6": "ultrarapid"}), ev)["tramadol"]
    assert "option.cpic.tramadol_ultrarapid" in rules_of(tramadol)


def test_cyp2d6_poor_metaboliser_is_cautioned_on_venlafaxine(ev: Evidence) -> None:
    """bousman2023 (CPIC SSRI/SNRI): consider an alternative to venlafaxine (optional)."""
    venla = options_for(patient(phenotypes={"CYP2D6": "poor"}), ev)["venlafaxine"]
    assert venla.suitability == "caution" and "option.cpic.venlafaxine_poor" in rules_of(venla)


@pytest.mark.parametrize("drug", ["sotalol 80 mg", "Betapace 80 mg", "dofetilide 250 mcg"])
def test_qt_prolonging_antiarrhythmic_cautions_tricyclics(ev: Evidence, drug: str) -> None:
    opts = options_for(patient(meds=[drug]), ev)
    assert "option.tca.qt_drugs" in rules_of(opts["amitriptyline"])


@pytest.mark.parametrize("condition", ["Angle-closure glaucoma", "Narrow angle glaucoma"])
def test_snri_in_angle_closure_glaucoma_is_cautioned(ev: Evidence, condition: str) -> None:
    """label_duloxetine, label_venlafaxine: mydriasis can precipitate angle closure."""
    opts = options_for(patient(conditions=[condition]), ev)
    for drug in ("duloxetine", "venlafaxine"):
        assert "option.snri.glaucoma" in rules_of(opts[drug])
        assert opts[drug].suitability == "caution"


def test_cyp2d6_and_sotalol_from_fhir_bundle(ev: Evidence) -> None:
    opts = options_for_bundle(
        fhir_bundle(meds=(("Sotalol 80 MG Oral Tablet", "80 mg twice daily"),)), ev
    )
    assert "option.tca.qt_drugs" in rules_of(opts["nortriptyline"])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"breastfeeding": True},
        {"conditions": ["Lactating mother"]},
        {"conditions": ["Breastfeeding"]},
    ],
)
def test_breastfeeding_mother_gets_advice_per_option(
    ev: Evidence, kwargs: dict[str, object]
) -> None:
    """Lactation sections: pregabalin and tramadol - breastfeeding not recommended; gabapentin,
    SNRIs, tricyclics - weigh benefits and watch the infant."""
    opts = options_for(patient(age=32, **kwargs), ev)  # type: ignore[arg-type]
    assert opts["pregabalin"].suitability == "avoid"
    assert "option.breastfeeding.pregabalin" in rules_of(opts["pregabalin"])
    assert "option.breastfeeding.tramadol" in rules_of(opts["tramadol"])
    for drug in ("gabapentin", "duloxetine", "venlafaxine", "amitriptyline"):
        assert "option.breastfeeding.weigh" in rules_of(opts[drug]), drug
        assert opts[drug].suitability == "caution"
    assert not any(
        r.rule.startswith("option.breastfeeding") for r in opts["lidocaine_plaster"].reasons
    )


def test_not_breastfeeding_gets_no_lactation_advice(ev: Evidence) -> None:
    opts = options_for(patient(age=32, breastfeeding=False, conditions=["Not breastfeeding"]), ev)
    assert not any(
        r.rule.startswith("option.breastfeeding") for o in opts.values() for r in o.reasons
    )


def test_breastfeeding_from_patient_file(ev: Evidence) -> None:
    opts = options_for(load_patient(PATIENTS / "pn-breastfeeding.yaml"), ev)
    assert opts["pregabalin"].suitability == "avoid"


def test_breastfeeding_from_fhir_bundle(ev: Evidence) -> None:
    opts = options_for_bundle(fhir_bundle(age=30, conditions=("Breastfeeding (mother)",)), ev)
    assert "option.breastfeeding.weigh" in rules_of(opts["duloxetine"])


@pytest.mark.parametrize(
    "condition", ["Acute hepatitis", "Cirrhosis of liver", "Chronic hepatitis C"]
)
def test_tricyclics_in_hepatitis_or_hepatic_impairment_are_cautioned(
    ev: Evidence, condition: str
) -> None:
    """label_amitriptyline: use with caution in impaired liver function."""
    opts = options_for(patient(conditions=[condition]), ev)
    for drug in ("amitriptyline", "nortriptyline"):
        assert "option.tca.hepatic" in rules_of(opts[drug]), drug
        assert opts[drug].suitability == "caution"


def test_tricyclic_in_acute_hepatitis_from_fhir_bundle(ev: Evidence) -> None:
    opts = options_for_bundle(fhir_bundle(conditions=("Acute hepatitis A",)), ev)
    assert "option.tca.hepatic" in rules_of(opts["amitriptyline"])


# --- Item 17: display ---------------------------------------------------------------------


def test_avoided_snri_does_not_say_one_medicine_may_treat_both(ev: Evidence) -> None:
    """Depression and CrCl < 30: duloxetine avoid must not read 'may treat both'."""
    p = patient(
        age=70,
        sex="male",
        weight_kg=60,
        creatinine=(2.2, "mg/dL"),
        conditions=["Major depressive disorder"],
    )
    dulox = options_for(p, ev)["duloxetine"]
    assert dulox.suitability == "avoid"
    assert not any("may treat both" in r.message for r in dulox.reasons)
    assert "option.favour.outweighed" in rules_of(dulox)
    venla = options_for(p, ev)["venlafaxine"]
    assert venla.suitability == "caution"  # dose reduced for CrCl < 30, not avoided
    assert any("may treat both" in r.message for r in venla.reasons)


def test_pregabalin_crcl_30_to_60_band_is_twice_or_three_times_a_day(ev: Evidence) -> None:
    """Lyrica label, renal table: CrCl 30-60 mL/min, 75-300 mg a day, BID or TID."""
    pregab = options_for(patient(egfr=45), ev)["pregabalin"]
    reason = next(r for r in pregab.reasons if r.rule == "option.renal.band")
    assert "twice or three times a day" in reason.message
    assert "once or twice" not in reason.message


def test_avoided_duloxetine_from_fhir_bundle_is_not_recommended_for_depression(
    ev: Evidence,
) -> None:
    bundle = fhir_bundle(
        age=70,
        sex="male",
        weight_kg=60,
        creatinine_mg_dl=2.2,
        conditions=("Major depressive disorder",),
    )
    dulox = options_for_bundle(bundle, ev)["duloxetine"]
    assert dulox.suitability == "avoid"
    assert not any("may treat both" in r.message for r in dulox.reasons)


def test_tramadol_on_top_of_oxycodone_from_fhir_bundle_is_avoid(ev: Evidence) -> None:
    bundle = fhir_bundle(meds=(("Oxycodone Hydrochloride 5 MG Oral Tablet", "5 mg every 6 hours"),))
    tramadol = options_for_bundle(bundle, ev)["tramadol"]
    assert tramadol.suitability == "avoid" and "option.tramadol.opioid" in rules_of(tramadol)


def test_pregabalin_band_from_fhir_bundle_is_twice_or_three_times_a_day(ev: Evidence) -> None:
    """Lyrica renal table: CrCl 30-60 mL/min (here about 39 by Cockcroft-Gault)."""
    bundle = fhir_bundle(age=70, sex="male", weight_kg=60, creatinine_mg_dl=1.5)
    reason = next(
        r
        for r in options_for_bundle(bundle, ev)["pregabalin"].reasons
        if r.rule == "option.renal.band"
    )
    assert "twice or three times a day" in reason.message
