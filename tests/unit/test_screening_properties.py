"""Safety invariants of the issue-14 screening rules over random patients (hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.core.patient import Condition, LabResult, MedicationUse, Patient
from ldncare.planning import make_plan

AS_OF = date(2026, 11, 25)
ACTIVE = ["active", "on-hold", "intended", "unknown"]

OTHER_MEDS = [
    "Metformin 500 MG Oral Tablet",
    "Gabapentin 300 MG Oral Capsule",
    "Tacrolimus 1 MG Oral Capsule",
    "Gilenya 0.5 MG Oral Capsule",
    "Relistor 150 MG Oral Tablet",
    "Imodium 2 MG",
    "Levothyroxine Sodium 0.1 MG Oral Tablet",
]
KRATOM_NAMES = [
    "Kratom",
    "kratom powder",
    "Mitragyna speciosa",
    "Mitragynine 10 mg",
    "7-hydroxymitragynine",
    "7-OH tablets",
]
CONDITIONS = ["Pudendal neuralgia", "Kidney transplant", "Essential hypertension", "Fibromyalgia"]

other_meds = st.lists(
    st.builds(
        MedicationUse,
        name=st.sampled_from(OTHER_MEDS),
        status=st.sampled_from(["active", "stopped", "completed"]),
    ),
    max_size=3,
).map(tuple)
conditions = st.lists(
    st.builds(Condition, display=st.sampled_from(CONDITIONS)), min_size=1, max_size=3
).map(tuple)


def _plan(patient: Patient) -> tuple[str, bool, set[str]]:
    plan = make_plan(patient, as_of=AS_OF)
    rules = {f.rule for f in plan.findings}
    return plan.eligibility, plan.schedule is not None, rules


@settings(max_examples=80, deadline=None)
@given(
    birth=st.dates(min_value=date(2008, 11, 26), max_value=AS_OF),
    meds=other_meds,
    conds=conditions,
)
def test_no_patient_under_18_ever_gets_an_ldn_schedule(
    birth: date, meds: tuple[MedicationUse, ...], conds: tuple[Condition, ...]
) -> None:
    patient = Patient(id="p", birth_date=birth, medications=meds, conditions=conds)
    eligibility, has_schedule, rules = _plan(patient)
    assert eligibility == "not_recommended"
    assert not has_schedule
    assert "ldn.age.minor" in rules


@settings(max_examples=60, deadline=None)
@given(birth=st.dates(min_value=date(1930, 1, 1), max_value=date(2008, 11, 25)))
def test_every_adult_is_free_of_the_minor_rule(birth: date) -> None:
    patient = Patient(
        id="p", birth_date=birth, conditions=(Condition(display="Pudendal neuralgia"),)
    )
    assert "ldn.age.minor" not in _plan(patient)[2]


@settings(max_examples=80, deadline=None)
@given(
    name=st.sampled_from(KRATOM_NAMES),
    in_dose_text=st.booleans(),
    status=st.sampled_from(ACTIVE),
    meds=other_meds,
    conds=conditions,
)
def test_any_active_opioid_acting_substance_makes_ldn_not_recommended(
    name: str,
    in_dose_text: bool,
    status: str,
    meds: tuple[MedicationUse, ...],
    conds: tuple[Condition, ...],
) -> None:
    kratom = (
        MedicationUse(name="Herbal supplement", dose_text=f"{name} twice daily", status=status)  # type: ignore[arg-type]
        if in_dose_text
        else MedicationUse(name=name, status=status)  # type: ignore[arg-type]
    )
    patient = Patient(
        id="p", birth_date=date(1980, 1, 1), medications=(*meds, kratom), conditions=conds
    )
    eligibility, has_schedule, rules = _plan(patient)
    assert eligibility == "not_recommended"
    assert not has_schedule
    assert "ldn.opioid_acting.ask" in rules


@settings(max_examples=80, deadline=None)
@given(
    days_ago=st.integers(min_value=0, max_value=9),
    status=st.sampled_from(["stopped", "completed"]),
    name=st.sampled_from(
        ["Oxycodone 5 MG Oral Tablet", "Tramadol 50 mg", "Hydrocodone / APAP 5/325", "Kratom"]
    ),
)
def test_a_stopped_opioid_without_end_date_written_within_the_washout_is_never_history(
    days_ago: int, status: str, name: str
) -> None:
    med = MedicationUse(name=name, status=status, start=AS_OF - timedelta(days=days_ago))  # type: ignore[arg-type]
    patient = Patient(id="p", birth_date=date(1980, 1, 1), medications=(med,))
    eligibility, has_schedule, rules = _plan(patient)
    assert eligibility == "not_recommended"
    assert not has_schedule
    assert "ldn.opioid.washout_assumed" in rules
    assert "ldn.opioid.history" not in rules


@settings(max_examples=80, deadline=None)
@given(
    upper=st.floats(min_value=20, max_value=60),
    ratio=st.floats(min_value=1.01, max_value=10),
    kind=st.sampled_from(["alt", "ast"]),
)
def test_liver_enzyme_rises_are_graded_at_three_times_the_upper_limit(
    upper: float, ratio: float, kind: str
) -> None:
    value = upper * ratio
    lab = LabResult(kind=kind, value=value, unit="U/L", upper_limit=upper)  # type: ignore[arg-type]
    patient = Patient(id="p", birth_date=date(1980, 1, 1), labs=(lab,))
    eligibility, _, rules = _plan(patient)
    if value > 3 * upper:
        assert "ldn.hepatic.enzymes_marked" in rules
        assert "ldn.hepatic.enzymes" not in rules
        assert eligibility == "not_recommended"
    else:
        assert "ldn.hepatic.enzymes" in rules
        assert "ldn.hepatic.enzymes_marked" not in rules
