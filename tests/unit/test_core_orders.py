"""core/orders.py: the ordered daily dose from a FHIR-style timing, and which drafts conflict
with what -- decided without FHIR, so every adapter gets the same answer."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ldncare.core.orders import DraftOrder, OrderTiming, daily_mg, decide_orders, needs_check
from ldncare.core.patient import LabResult, MedicationUse, Patient
from ldncare.core.quantity import parse_dose
from ldncare.evidence.loader import load_evidence
from ldncare.evidence.vocabulary import load_vocabulary
from ldncare.planning import context_for

AS_OF = date(2026, 12, 4)


def _draft(name: str, daily: str | None = None, ref: str = "MedicationRequest/d") -> DraftOrder:
    med = MedicationUse(name=name, status="active")
    classes = load_vocabulary().medications.classify(med)
    return DraftOrder(med, classes, Decimal(daily) if daily else None, ref)


def _patient(meds: tuple[str, ...] = (), egfr: float | None = None) -> Patient:
    labs = (
        (LabResult(kind="egfr", value=egfr, unit="mL/min/1.73m2", date=AS_OF),)
        if egfr is not None
        else ()
    )
    return Patient(
        id="p1",
        sex="female",
        birth_date=date(1975, 4, 2),
        medications=tuple(MedicationUse(name=m, status="active") for m in meds),
        labs=labs,
    )


def _decide(patient: Patient, checked: list[DraftOrder], drafts: list[DraftOrder] | None = None):  # type: ignore[no-untyped-def]
    vocab = load_vocabulary().medications
    ingredients = {id(d): vocab.ingredients(d.med) for d in checked}
    return decide_orders(
        context_for(patient, AS_OF), patient, checked, drafts or checked, load_evidence(),
        ingredients, AS_OF,
    )  # fmt: skip


def test_gabapentin_600_mg_every_8_hours_is_1800_mg_a_day() -> None:
    timing = OrderTiming(frequency=None, period=Decimal(8), period_unit="h")
    assert daily_mg(parse_dose("600 mg"), timing) == Decimal(1800)


def test_a_timing_code_ldncare_cannot_count_gives_no_daily_dose() -> None:
    assert daily_mg(parse_dose("300 mg"), OrderTiming(times_a_day=None)) is None


@given(
    mg=st.integers(min_value=1, max_value=1200),
    frequency=st.integers(min_value=1, max_value=6),
    days=st.integers(min_value=1, max_value=7),
)
def test_the_daily_dose_is_the_dose_times_the_doses_a_day(
    mg: int, frequency: int, days: int
) -> None:
    timing = OrderTiming(frequency=Decimal(frequency), period=Decimal(days), period_unit="d")
    assert daily_mg(parse_dose(f"{mg} mg"), timing) == Decimal(mg * frequency) / days


def test_naltrexone_ordered_for_a_woman_on_oxycodone_is_blocked_by_the_opioid() -> None:
    ldn = _draft("naltrexone 4.5 mg capsule")
    decided = _decide(_patient(("oxycodone 5 mg tablet",)), [ldn])
    (blocked,) = decided.naltrexone_blocked
    assert blocked.order is ldn and [m.name for m in blocked.opioids] == ["oxycodone 5 mg tablet"]
    assert all(f.severity == "contraindication" and f.citations for f in blocked.findings)


def test_oxycodone_drafted_beside_a_selected_naltrexone_order_blocks_it_too() -> None:
    ldn, oxy = _draft("naltrexone 1.5 mg capsule"), _draft("oxycodone 5 mg tablet", ref="MR/o")
    decided = _decide(_patient(), [ldn], [ldn, oxy])
    assert [b.order for b in decided.naltrexone_blocked] == [ldn]


def test_oxycodone_ordered_for_a_patient_on_ldn_names_rule_ldn_opioid_active() -> None:
    oxy = _draft("oxycodone 5 mg tablet")
    (conflict,) = _decide(_patient(("naltrexone 4.5 mg capsule",)), [oxy]).opioid_on_naltrexone
    assert conflict.basis and {f.rule for f in conflict.basis} == {"ldn.opioid.active"}
    assert [m.name for m in conflict.active_naltrexone] == ["naltrexone 4.5 mg capsule"]


def test_gabapentin_1800_mg_a_day_at_egfr_25_is_above_the_band_with_a_whole_tablet_dose() -> None:
    gaba = _draft("gabapentin 600 MG Oral Tablet", daily="1800")
    (renal,) = _decide(_patient(egfr=25), [gaba]).renal
    assert renal.excess.band.daily_max.mg_value < Decimal(1800)
    assert renal.unit_dose is not None and renal.unit_dose.strength_mg == Decimal(600)


def test_amoxicillin_needs_no_check_and_gets_no_decision() -> None:
    amox = _draft("amoxicillin 500 mg capsule", daily="1500")
    assert not needs_check([amox])
    decided = _decide(_patient(("oxycodone 5 mg tablet",), egfr=20), [amox])
    assert decided.naltrexone_blocked == decided.opioid_on_naltrexone == decided.renal == ()
