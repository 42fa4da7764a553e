"""Safety invariants of whole plans over random valid patients (hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.core.patient import Condition, LabResult, MedicationUse, Patient
from ldncare.evidence.loader import load_evidence
from ldncare.planning import context_for, make_plan

AS_OF = date(2026, 11, 25)
EVIDENCE = load_evidence()

MED_NAMES = [
    "Tramadol Hydrochloride 50 MG Oral Tablet",
    "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet",
    "Suboxone 8 MG / 2 MG Sublingual Film",
    "Methadone Hydrochloride 10 MG Oral Tablet",
    "Duragesic 25 MCG/HR Transdermal Patch",
    "Promethazine / codeine oral syrup",
    "Metformin 500 MG Oral Tablet",
    "Ibuprofen 400 MG Oral Tablet",
    "Levothyroxine Sodium 0.1 MG Oral Tablet",
    "Tacrolimus 1 MG Oral Capsule",
    "Sertraline 50 MG Oral Tablet",
    "Gabapentin 300 MG Oral Capsule",
    "Naloxone 4 MG Nasal Spray",
]
STATUSES = [
    "active",
    "on-hold",
    "completed",
    "stopped",
    "cancelled",
    "entered-in-error",
    "draft",
    "intended",
    "unknown",
]
CONDITIONS = [
    "Pudendal neuralgia",
    "Cirrhosis of liver",
    "Pregnancy",
    "Opioid dependence",
    "Hashimoto thyroiditis",
    "Essential hypertension",
    "Diabetic neuropathy",
]

medications = st.builds(
    MedicationUse,
    name=st.sampled_from(MED_NAMES),
    status=st.sampled_from(STATUSES),
    start=st.none() | st.dates(min_value=date(2015, 1, 1), max_value=AS_OF),
    end=st.none() | st.dates(min_value=date(2015, 1, 1), max_value=AS_OF + timedelta(days=365)),
)
patients = st.builds(
    Patient,
    id=st.just("p"),
    birth_date=st.none() | st.dates(min_value=date(1920, 1, 1), max_value=date(2008, 1, 1)),
    sex=st.sampled_from(["female", "male", "other", "unknown"]),
    conditions=st.lists(
        st.builds(
            Condition,
            display=st.sampled_from(CONDITIONS),
            clinical_status=st.sampled_from(["active", "resolved"]),
        ),
        max_size=4,
    ).map(tuple),
    medications=st.lists(medications, max_size=5).map(tuple),
    labs=st.lists(
        st.builds(
            LabResult,
            kind=st.sampled_from(["egfr", "alt", "ast"]),
            value=st.floats(min_value=1, max_value=200),
            upper_limit=st.just(40.0),
        ),
        max_size=3,
    ).map(tuple),
    pregnant=st.none() | st.booleans(),
    breastfeeding=st.none() | st.booleans(),
    frail=st.none() | st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(patients)
def test_no_plan_is_eligible_while_an_opioid_is_active(patient: Patient) -> None:
    plan = make_plan(patient, as_of=AS_OF)
    ctx = context_for(patient, AS_OF)
    if ctx.active_meds("opioid"):
        assert plan.eligibility == "not_recommended"
        assert plan.schedule is None
    contract = plan.to_contract(EVIDENCE)
    known = {c["id"] for c in contract["citations"]}
    for finding in contract["ldn"]["findings"]:
        assert finding["citations"], finding["rule"]
        assert set(finding["citations"]) <= known
    for step in contract["ldn"]["schedule"]:
        assert step["dose_mg"] <= 4.5
    for option in contract["options"]:
        if option["suitability"] == "avoid":
            assert any(r["citations"] for r in option["reasons"])
