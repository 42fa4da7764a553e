"""Safety invariants of the current state (core/current_state.py) over random medicine lists:
the facts every reader of a stored patient sees never drop a medicine, never call a full-dose
naltrexone LDN, never miss an LDN of unknown dose, and say "active" exactly as the core does."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.core.current_state import CurrentState, current_state
from ldncare.core.patient import MedicationUse, Patient
from ldncare.evidence.vocabulary import load_vocabulary
from ldncare.store.facts import _ldn_dosing

AS_OF = date(2026, 11, 25)
VOCAB = load_vocabulary()
DOSING = _ldn_dosing()
LDN_MAX = float(DOSING.max_mg)
REVIEW = timedelta(weeks=DOSING.defaults.review_weeks)

OTHER_NAMES = [
    "Tramadol Hydrochloride 50 MG Oral Tablet",
    "Methadone Hydrochloride 10 MG Oral Tablet",
    "Gabapentin 300 MG Oral Capsule",
    "Amitriptyline 10 MG Oral Tablet",
    "Paracetamol",
]
STATUSES = ["active", "on-hold", "completed", "stopped", "cancelled", "entered-in-error",
            "draft", "intended", "not-taken", "unknown"]  # fmt: skip
DAYS = st.none() | st.integers(-400, 400).map(lambda d: AS_OF + timedelta(days=d))


@st.composite
def medication(draw: st.DrawFn) -> MedicationUse:
    if draw(st.booleans()):
        # Naltrexone with a stated dose (0.5 to 100 mg), or none at all.
        mg = draw(st.none() | st.sampled_from(["0.5", "1.5", "3", "4.5", "6", "25", "50", "100"]))
        name, dose = "Naltrexone", None if mg is None else f"{mg} mg"
    else:
        name, dose = draw(st.sampled_from(OTHER_NAMES)), None
    start, end = draw(DAYS), draw(DAYS)
    return MedicationUse(
        name=name, status=draw(st.sampled_from(STATUSES)), start=start, end=end, dose_text=dose
    )


def _state(meds: list[MedicationUse]) -> CurrentState:
    patient = Patient(id="p", sex="female", medications=tuple(meds))
    return current_state(patient, AS_OF, vocabulary=VOCAB, ldn_max_mg=DOSING.max_mg, review=REVIEW)


@settings(max_examples=150, deadline=None)
@given(st.lists(medication(), max_size=6))
def test_no_medicine_is_dropped_and_active_means_what_the_core_says(
    meds: list[MedicationUse],
) -> None:
    state = _state(meds)
    assert {f.seq for f in state.medications} == set(range(len(meds)))
    for fact in state.medications:
        assert fact.is_active(AS_OF) == meds[fact.seq].is_active(AS_OF)


@settings(max_examples=150, deadline=None)
@given(st.lists(medication(), max_size=6))
def test_naltrexone_is_ldn_exactly_when_its_dose_is_unknown_or_at_most_the_ldn_maximum(
    meds: list[MedicationUse],
) -> None:
    state = _state(meds)
    for seq, med in enumerate(meds):
        classes = {f.drug_class for f in state.medications if f.seq == seq}
        if "naltrexone" not in VOCAB.classify_medication(med):
            assert "ldn" not in classes
            continue
        dose = med.stated_dose()
        expected = dose is None or float(dose.mg_value) <= LDN_MAX
        assert ("ldn" in classes) == expected, (med.dose_text, classes)


@settings(max_examples=150, deadline=None)
@given(st.lists(medication(), max_size=6))
def test_an_active_opioid_beside_active_naltrexone_is_always_in_the_facts(
    meds: list[MedicationUse],
) -> None:
    state = _state(meds)
    opioid = any("opioid" in VOCAB.classify_medication(m) and m.is_active(AS_OF) for m in meds)
    naltrexone = any(
        "naltrexone" in VOCAB.classify_medication(m) and m.is_active(AS_OF) for m in meds
    )
    seen = bool(state.active_medications("opioid", AS_OF)) and bool(
        state.active_medications("naltrexone", AS_OF)
    )
    assert seen == (opioid and naltrexone)
