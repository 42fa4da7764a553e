"""Readers of a plan's LDN part take the typed ``Ldn`` (issue 17 item 5).

The dashboard loads only ``contract["ldn"]`` from the database and parses that part alone
(``read_ldn``); the status, the diary checks, the response and the charts read it by attribute.
Whatever form a reader is handed (the part, the parsed plan, the stored dict) it must reach the
same facts, and a damaged part is refused naming the field, never read as "no schedule".
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.core.diary import DiaryEntry, check_against_schedule, review_date, scheduled_steps
from ldncare.core.plan_contract import Ldn, PlanContract, ldn_of, read_ldn, read_plan
from ldncare.core.response import assess_response
from ldncare.core.status import plan_facts
from ldncare.errors import InvalidInput
from ldncare.evidence.loader import load_evidence
from ldncare.patient_file import load_patient
from ldncare.planning import make_plan
from tests.plan_parts import ldn_part

ROOT = Path(__file__).resolve().parents[2]
VIGNETTES = sorted((ROOT / "tests" / "vignettes" / "patients").glob("*.yaml"))
START = date(2026, 3, 2)


@cache
def stored(name: str) -> dict[str, Any]:
    """The vignette's plan as the store keeps it (JSON text read back)."""
    path = VIGNETTES[[p.name for p in VIGNETTES].index(name)]
    plan = make_plan(load_patient(path), start=START, as_of=START)
    result: dict[str, Any] = json.loads(json.dumps(plan.to_contract(load_evidence())))
    return result


def forms(contract: dict[str, Any]) -> list[Ldn | PlanContract | dict[str, Any]]:
    """The three ways a reader is handed a plan: the dashboard's part alone, parsed; the whole
    plan parsed once; the stored dict."""
    return [read_ldn(contract["ldn"]), read_plan(contract), contract]


@pytest.mark.parametrize("name", [p.name for p in VIGNETTES])
def test_every_vignette_gives_the_same_status_facts_from_the_part_alone(name: str) -> None:
    contract = stored(name)
    part, whole, raw = forms(contract)
    assert plan_facts(part) == plan_facts(whole) == plan_facts(raw)
    assert scheduled_steps(part, allow_empty=True) == scheduled_steps(raw, allow_empty=True)
    # The part read alone is the whole plan's part, field for field.
    assert part == read_plan(contract).ldn


def test_tramadol_user_not_recommended_on_the_dashboard_path_keeps_the_opioid_flag() -> None:
    contract = stored("pn-age-92-falls-frail-tramadol.yaml")
    facts = plan_facts(read_ldn(contract["ldn"]))
    assert facts.eligibility == "not_recommended"
    assert facts.opioid_on_record
    assert (facts.first_dose, facts.review_date) == (None, None)


def test_dpn_man_response_is_judged_the_same_from_the_part_or_the_stored_plan() -> None:
    contract = stored("dpn-man-no-meds.yaml")
    due = review_date(contract)
    diary = [DiaryEntry(day=START - timedelta(days=d), pain_avg=6) for d in range(1, 15)] + [
        DiaryEntry(day=due - timedelta(days=d), pain_avg=3) for d in range(14)
    ]
    evidence = load_evidence()
    by_part = assess_response(diary, read_ldn(contract["ldn"]), today=due, evidence=evidence)
    by_dict = assess_response(diary, contract, today=due, evidence=evidence)
    assert by_part == by_dict
    assert by_part.status == "responder_substantial"


def test_a_stored_plan_whose_step_lost_its_dose_is_refused_naming_the_step() -> None:
    contract = stored("dpn-man-no-meds.yaml")
    step = {k: v for k, v in contract["ldn"]["schedule"][1].items() if k != "dose_mg"}
    damaged = contract["ldn"] | {"schedule": [contract["ldn"]["schedule"][0], step]}
    with pytest.raises(InvalidInput) as info:
        read_ldn(damaged)
    assert info.value.field == "ldn.schedule.1.dose_mg"
    # The diary check refuses it too, rather than reading the day as "no LDN scheduled".
    with pytest.raises(InvalidInput):
        check_against_schedule(DiaryEntry(day=START, pain_avg=5), {"ldn": damaged})


def test_a_step_dose_given_as_words_is_refused_naming_the_field() -> None:
    contract = stored("dpn-man-no-meds.yaml")
    first = contract["ldn"]["schedule"][0] | {"dose_mg": "one and a half"}
    with pytest.raises(InvalidInput) as info:
        read_ldn(contract["ldn"] | {"schedule": [first]})
    assert info.value.field == "ldn.schedule.0.dose_mg"


def test_a_document_without_an_ldn_part_is_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        ldn_of({"schema": "ldncare.plan/1"})
    assert info.value.field == "ldn"


def test_a_typed_part_passes_through_unparsed() -> None:
    part = ldn_part([(START, START + timedelta(days=6), 1.5)], START + timedelta(days=60))
    assert read_ldn(part) is part and ldn_of(part) is part


_DOSES = st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, 4.5])


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 120), st.integers(1, 28), _DOSES), max_size=6),
    review_after=st.integers(1, 200),
)
def test_schedule_read_from_a_typed_part_is_sorted_and_keeps_every_dose(
    steps: list[tuple[int, int, float]], review_after: int
) -> None:
    schedule = [
        (START + timedelta(days=s), START + timedelta(days=s + length - 1), dose)
        for s, length, dose in steps
    ]
    part = ldn_part(schedule, START + timedelta(days=review_after))
    read = scheduled_steps(part, allow_empty=True)
    assert [s.start for s in read] == sorted(s[0] for s in schedule)
    assert sorted(s.dose_mg for s in read) == sorted(Decimal(str(d)) for _, _, d in schedule)
    facts = plan_facts(part)
    assert facts.first_dose == (read[0].start if read else None)
    # The dict the store keeps gives the very same reading.
    assert scheduled_steps({"ldn": part.model_dump(mode="json")}, allow_empty=True) == read
