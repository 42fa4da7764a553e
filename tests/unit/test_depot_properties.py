"""Safety invariant (issue 14 re-review C1): a depot buprenorphine on record, active or ended on
any date, never lets an LDN schedule through and is never called history."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.core.patient import Condition, MedicationUse, Patient
from ldncare.evidence.loader import load_evidence
from ldncare.planning import make_plan

AS_OF = date(2026, 11, 25)
DEPOTS = [
    "Sublocade 300 mg monthly injection",
    "Sublocade 100 MG",
    "Brixadi 128 mg monthly injection",
    "Brixadi 24 mg weekly",
    "Buvidal 96 mg",
    "Probuphine implant",
    "buprenorphine extended-release injection 300 mg",
]


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(DEPOTS),
    status=st.sampled_from(["active", "stopped", "completed"]),
    days_ago=st.one_of(st.none(), st.integers(min_value=0, max_value=3650)),
)
def test_depot_buprenorphine_never_gets_an_ldn_schedule(
    name: str, status: str, days_ago: int | None
) -> None:
    end = None if days_ago is None or status == "active" else AS_OF - timedelta(days=days_ago)
    patient = Patient(
        id="prop",
        birth_date=date(1980, 1, 1),
        conditions=(Condition(display="Pudendal neuralgia"),),
        medications=(MedicationUse(name=name, status=status, end=end),),
    )
    plan = make_plan(patient, as_of=AS_OF).to_contract(load_evidence())
    assert plan["ldn"]["eligibility"] == "not_recommended"
    assert plan["ldn"]["schedule"] == []
    found = {f["rule"] for f in plan["ldn"]["findings"]}
    assert "ldn.opioid.history" not in found
    assert found & {"ldn.opioid.active", "ldn.opioid.depot_stopped"}
