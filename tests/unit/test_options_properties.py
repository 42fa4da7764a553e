"""Property tests for options: schedules never exceed a maximum, avoid is always cited,
Cockcroft–Gault matches hand computation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldncare.core.renal import cockcroft_gault, creatinine_mg_dl, estimate_renal_function
from ldncare.evidence.models import Evidence
from tests.options_support import AS_OF, evidence, options_for, patient

EV: Evidence = evidence()

MEDS = [
    "phenelzine 15 mg",
    "sertraline 50 mg",
    "oxycodone 5 mg",
    "lorazepam 1 mg",
    "citalopram 20 mg",
    "lithium 400 mg",
    "sumatriptan 50 mg",
    # issue 14 review: bupropion/naltrexone, dextromethorphan, QT immunosuppressant
    "Contrave",
    "Delsym",
    "Prograf 1 mg",
]
CONDITIONS = [
    "First degree atrioventricular block",
    "Major depressive disorder",
    "Insomnia",
    "Cirrhosis of liver",
    "Acute myocardial infarction",
    "Essential hypertension",
    "Urinary retention",
    "Chronic obstructive pulmonary disease",
    "Pregnancy",
    "Generalized anxiety disorder",
    "Opioid use disorder",
    "End stage renal disease on hemodialysis",
]
PHENOTYPES = [
    {},
    {"CYP2D6": "poor metabolizer"},
    {"CYP2D6": "intermediate metabolizer"},
    {"CYP2D6": "ultrarapid metabolizer"},
    {"CYP2C19": "poor metabolizer"},
]

patients = st.builds(
    lambda age, sex, weight, creat, egfr, meds, conds, pheno: patient(
        age=age,
        sex=sex,
        weight_kg=weight,
        creatinine=creat,
        egfr=egfr,
        meds=meds,
        conditions=conds,
        phenotypes=pheno,
    ),
    age=st.integers(18, 100),
    sex=st.sampled_from(["female", "male", "unknown"]),
    weight=st.floats(35, 180),
    creat=st.one_of(
        st.none(),
        st.tuples(st.floats(0.3, 12), st.just("mg/dL")),
        st.tuples(st.floats(25, 1000), st.just("umol/L")),
    ),
    egfr=st.one_of(st.none(), st.floats(3, 130)),
    meds=st.lists(st.sampled_from(MEDS), max_size=3, unique=True),
    conds=st.lists(st.sampled_from(CONDITIONS), max_size=4, unique=True),
    pheno=st.sampled_from(PHENOTYPES),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patients)
def test_no_schedule_exceeds_monograph_or_renal_band_maximum(p) -> None:  # type: ignore[no-untyped-def]
    renal = estimate_renal_function(p, AS_OF)
    for drug, option in options_for(p, EV).items():
        mono = EV.monographs[drug]
        if mono.max_mg is not None:
            assert option.max_daily_dose_mg is not None
            assert option.max_daily_dose_mg <= mono.max_mg
        if renal is not None and mono.renal_bands:
            band = mono.renal_band(renal.crcl_ml_min)
            assert band is not None
            assert option.max_daily_dose_mg is not None
            assert option.max_daily_dose_mg <= band.daily_max.mg_value
        for step in option.schedule:
            assert step.dose_mg > 0
            assert option.max_daily_dose_mg is not None
            assert step.dose_mg <= option.max_daily_dose_mg
        starts = [s.start_date for s in option.schedule]
        assert starts == sorted(starts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patients)
def test_every_avoid_has_a_cited_contraindication(p) -> None:  # type: ignore[no-untyped-def]
    for option in options_for(p, EV).values():
        assert option.reasons, "every option carries its basis"
        for reason in option.reasons:
            assert reason.citations and all(c in EV.sources for c in reason.citations)
        if option.suitability == "avoid":
            assert any(r.severity == "contraindication" and r.citations for r in option.reasons)
            assert option.schedule == ()


@pytest.mark.parametrize(
    ("age", "weight", "sex", "scr", "expected"),
    [
        (40, 72, "male", 1.0, 100.0),  # (140-40)*72/(72*1.0)
        (40, 72, "female", 1.0, 85.0),  # x 0.85
        (70, 60, "male", 2.2, 26.515),  # 70*60/158.4
        (80, 50, "female", 1.5, 23.611),  # 60*50/108 * 0.85
        (25, 90, "male", 0.9, 159.722),  # 115*90/64.8
    ],
)
def test_cockcroft_gault_matches_hand_computation(
    age: int, weight: float, sex: str, scr: float, expected: float
) -> None:
    assert cockcroft_gault(
        age=age, weight_kg=weight, sex=sex, creatinine_mg_per_dl=scr
    ) == pytest.approx(expected, abs=0.01)


@given(st.integers(18, 120), st.floats(30, 200), st.floats(0.2, 15))
def test_cockcroft_gault_formula_property(age: int, weight: float, scr: float) -> None:
    male = cockcroft_gault(age=age, weight_kg=weight, sex="male", creatinine_mg_per_dl=scr)
    female = cockcroft_gault(age=age, weight_kg=weight, sex="female", creatinine_mg_per_dl=scr)
    assert male == pytest.approx(max((140 - age) * weight / (72 * scr), 0), rel=1e-9)
    assert female == pytest.approx(male * 0.85, rel=1e-9)


def test_umol_conversion_is_division_by_88_4() -> None:
    assert creatinine_mg_dl(88.4, "µmol/L") == pytest.approx(1.0)
    assert creatinine_mg_dl(1.3, "mg/dL") == 1.3


def test_unknown_creatinine_unit_falls_back_to_egfr() -> None:
    p = patient(creatinine=(1.0, "mmol/L"), egfr=55)
    renal = estimate_renal_function(p, AS_OF)
    assert renal is not None and renal.method == "egfr" and renal.crcl_ml_min == 55


def test_unknown_sex_uses_the_lower_female_estimate() -> None:
    p = patient(age=40, sex="unknown", weight_kg=72, creatinine=(1.0, "mg/dL"))
    renal = estimate_renal_function(p, AS_OF)
    assert renal is not None and renal.crcl_ml_min == pytest.approx(85.0)
    assert "×0.85" in renal.basis


def test_every_monograph_cites_known_sources() -> None:
    for mono in EV.monographs.values():
        for _, cites in mono.citing():
            assert cites and all(c in EV.sources for c in cites)
        if mono.route == "oral":
            assert mono.max_mg is not None and mono.max_mg > Decimal(0)


# --- Issue 14 safety invariants ------------------------------------------------------------

from ldncare.core.options import SUITABILITY_ORDER  # noqa: E402
from tests.options_support import context  # noqa: E402

CURRENT_MEDS = [
    ("venlafaxine 75 mg", "75 mg once daily"),
    ("duloxetine 60 mg", "60 mg twice daily"),
    ("Gabapentin 300 MG Oral Capsule", "300 mg three times a day"),
    ("pregabalin 150 mg", "150 mg twice daily"),
    ("amitriptyline 25 mg", "25 mg at night"),
    ("nortriptyline 10 mg", None),
    ("tramadol 50 mg", "50 mg every 6 hours"),
    ("oxycodone 5 mg", "5 mg every 6 hours"),
    ("desvenlafaxine 50 mg", "50 mg daily"),
]

taking = st.builds(
    lambda age, creat, meds, conds: patient(
        age=age,
        sex="male",
        weight_kg=70,
        creatinine=creat,
        meds=[m if m[1] else m[0] for m in meds],
        conditions=conds,
    ),
    st.integers(min_value=8, max_value=95),
    st.one_of(st.none(), st.tuples(st.sampled_from([0.8, 1.4, 2.2, 4.0, 8.0]), st.just("mg/dL"))),
    st.lists(st.sampled_from(CURRENT_MEDS), max_size=3, unique=True),
    st.lists(
        st.sampled_from(
            ["Bipolar disorder", "History of falls", "Cirrhosis of liver", "Depression"]
        ),
        max_size=2,
        unique=True,
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(taking)
def test_a_drug_already_taken_is_never_offered_as_a_new_start(p: object) -> None:
    for option in options_for(p, EV).values():  # type: ignore[arg-type]
        mono = EV.monographs[option.drug]
        if any(mono.matches(m.name) for m in p.medications):  # type: ignore[attr-defined]
            assert option.suitability == "current"
            assert option.schedule == ()
            assert option.advice is not None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(taking)
def test_no_schedule_plus_what_is_taken_exceeds_the_maximum(p: object) -> None:
    """A scheduled option adds nothing on top of the same drug or of its class; its own
    schedule stays within the patient's maximum."""
    opts = options_for(p, EV)  # type: ignore[arg-type]
    for option in opts.values():
        if not option.schedule:
            continue
        mono = EV.monographs[option.drug]
        taken = [m for m in p.medications if mono.matches(m.name)]  # type: ignore[attr-defined]
        assert taken == []
        assert option.max_daily_dose_mg is not None
        assert all(s.dose_mg <= option.max_daily_dose_mg for s in option.schedule)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(taking)
def test_under_18_no_option_is_a_plain_adult_start(p: object) -> None:
    age = p.age_on(AS_OF)  # type: ignore[attr-defined]
    for option in options_for(p, EV).values():  # type: ignore[arg-type]
        if age < 18:
            assert option.schedule == ()
            assert SUITABILITY_ORDER[option.suitability] >= SUITABILITY_ORDER["caution"] or (
                option.suitability == "current"
            )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(taking)
def test_an_avoided_option_carries_no_favourable_reason(p: object) -> None:
    for option in options_for(p, EV).values():  # type: ignore[arg-type]
        if option.suitability == "avoid":
            assert not any(
                r.rule.startswith("option.favour.") and r.rule != "option.favour.outweighed"
                for r in option.reasons
            )
            assert option.schedule == ()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(taking)
def test_two_drugs_of_one_class_are_never_both_offered(p: object) -> None:
    """Taking any SNRI, tricyclic or gabapentinoid: no other drug of that class is offered."""
    opts = options_for(p, EV)  # type: ignore[arg-type]
    active = [cm for cm in context(p).medications if cm.active]  # type: ignore[arg-type]
    for cls in ("snri", "tca", "gabapentinoid"):
        if any(cls in cm.classes for cm in active):
            in_class = [o for o in opts.values() if EV.monographs[o.drug].drug_class == cls]
            assert all(o.suitability in ("current", "avoid") for o in in_class), cls


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patients)
def test_no_option_reason_cites_another_option_drugs_label(p) -> None:  # type: ignore[no-untyped-def]
    """Review item 12: a shared rule cites only the labels that bear on the drug at hand."""
    for option in options_for(p, EV).values():
        own = {c for _, cites in EV.monographs[option.drug].citing() for c in cites}
        others = {f"label_{d}" for d in EV.monographs if d != option.drug} - own
        for reason in option.reasons:
            assert reason.citations, (option.drug, reason.rule)
            assert not others & set(reason.citations), (option.drug, reason.rule)
            assert reason.rationale, (option.drug, reason.rule)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patients)
def test_kidney_function_is_never_unknown_and_estimated_at_once(p) -> None:  # type: ignore[no-untyped-def]
    """An option never says both "no creatinine or eGFR" and gives a kidney band."""
    for option in options_for(p, EV).values():
        rules = {r.rule for r in option.reasons}
        assert not ("option.renal.unknown" in rules and "option.renal.band" in rules)
