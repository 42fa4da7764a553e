"""Safety invariants for the review fixes of the LDN screen and schedule (hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.core.patient import Condition, MedicationUse, Patient
from ldncare.evidence.loader import load_evidence
from ldncare.planning import make_plan

AS_OF = date(2026, 12, 4)
EVIDENCE = load_evidence()
FREE = EVIDENCE.ldn.opioid_free_days
assert FREE is not None

#: (name, long-acting) stopped opioids with a recorded stop date.
STOPPED = [
    ("Oxycodone 5 mg tablet", False),
    ("Tramadol 50 mg capsule", False),
    ("Methadone 10 mg tablet", True),
    ("Butrans 10 mcg/hour patch", True),
    ("Kratom capsules", False),
    ("Tianeptine 12.5 mg", False),
]
OTHERS = [
    "Metformin 500 MG Oral Tablet",
    "Oxycodone 5 mg tablet",  # active: a second, absolute stop
    "LDN 3 mg",
    "Zaza red",
    "Viberzi 100 mg",
    "Contrave 8 mg/90 mg extended-release tablet",
]

stopped_meds = st.lists(
    st.tuples(st.sampled_from(STOPPED), st.integers(min_value=0, max_value=20)),
    max_size=3,
)
others = st.lists(st.sampled_from(OTHERS), max_size=2)


def _patient(
    birth: date, stopped: list[tuple[tuple[str, bool], int]], active: list[str]
) -> Patient:
    meds = [
        MedicationUse(
            name=name, status="stopped", start=AS_OF - timedelta(days=90), end=AS_OF - timedelta(d)
        )
        for (name, _), d in stopped
    ]
    meds += [MedicationUse(name=name, status="active") for name in active]
    return Patient(
        id="prop",
        birth_date=birth,
        sex="female",
        conditions=(Condition(display="Pudendal neuralgia"),),
        medications=tuple(meds),
    )


@settings(max_examples=120, deadline=None)
@given(
    birth=st.sampled_from([date(1970, 1, 1), date(2012, 1, 1)]),
    stopped=stopped_meds,
    active=others,
)
def test_no_ldn_dose_ever_falls_inside_an_opioid_free_interval(
    birth: date, stopped: list[tuple[tuple[str, bool], int]], active: list[str]
) -> None:
    plan = make_plan(_patient(birth, stopped, active), as_of=AS_OF)
    contract = plan.to_contract(EVIDENCE)["ldn"]
    rules = {f.rule for f in plan.findings}
    stops = {f.rule for f in plan.findings if f.severity == "contraindication"}
    if plan.schedule is None:
        assert contract["course"]["start"] is None or contract["course"]["kind"] == "withheld"
        assert contract["notes"] == []
        assert not {"schedule.start_low", "schedule.washout_deferred"} & rules
        return
    first = plan.schedule.start
    for (name, long_acting), days_ago in stopped:
        end = AS_OF - timedelta(days=days_ago)
        wait = FREE.long_acting if long_acting else FREE.short_acting
        assert first >= end + timedelta(days=wait), (name, days_ago, first)
    # A schedule with a contraindication is only ever the deferred start after a washout.
    assert stops <= {"ldn.opioid.washout"}
    assert not stops or "schedule.washout_deferred" in rules
    assert contract["course"]["start"] == first.isoformat()


@settings(max_examples=60, deadline=None)
@given(stopped=stopped_meds, active=others)
def test_a_not_recommended_plan_never_carries_a_start_day(
    stopped: list[tuple[tuple[str, bool], int]], active: list[str]
) -> None:
    contract = make_plan(_patient(date(1980, 5, 5), stopped, active), as_of=AS_OF).to_contract(
        EVIDENCE
    )["ldn"]
    if contract["eligibility"] == "not_recommended":
        assert contract["schedule"] == []
        assert contract["course"]["start"] is None
        assert contract["course"]["kind"] in {"not_started", "withheld"}
