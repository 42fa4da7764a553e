"""Where a patient stands (core/status.py): named vignettes on real plans, and invariants.

Shared set-up: a woman with pudendal neuralgia and nothing against LDN, planned on 2026-03-02
(first dose that night, target dose reached 2026-04-13, review 2026-05-25, as the shipped
titration gives); the same woman on tramadol, for whom LDN is not recommended.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldncare.core.diary import DiaryEntry, SideEffect
from ldncare.core.response import ResponseAssessment, assess_response
from ldncare.core.status import (
    SIDE_EFFECT_DAYS,
    STAGE_LABELS,
    PlanFacts,
    Status,
    opioid_conflict,
    plan_facts,
    status_from_facts,
)
from ldncare.evidence.loader import load_evidence
from ldncare.patient_file import patient_from_data
from ldncare.planning import make_plan

START = date(2026, 3, 2)
PN: dict[str, Any] = {
    "id": "p1",
    "birth_date": "1970-01-01",
    "sex": "female",
    "conditions": [{"name": "Pudendal neuralgia"}],
}


def contract_for(data: dict[str, Any]) -> dict[str, Any]:
    plan = make_plan(patient_from_data(data), start=START, as_of=START)
    return plan.to_contract(load_evidence())


PLAN = contract_for(PN)
FACTS = plan_facts(PLAN)
# The review rule: 8 weeks after the target (2026-04-13) is reached.
REVIEW = date(2026, 6, 8)


def diary(baseline_pain: int, current_pain: int) -> list[DiaryEntry]:
    """Daily pain 14 days before the first dose, then ``current_pain`` up to the review."""
    before = [
        DiaryEntry(day=START - timedelta(days=d), pain_avg=baseline_pain) for d in range(1, 15)
    ]
    days = (REVIEW - START).days
    after = [DiaryEntry(day=START + timedelta(days=d), pain_avg=current_pain) for d in range(days)]
    return before + after + [DiaryEntry(day=REVIEW, pain_avg=current_pain)]


def status_on(
    today: date,
    entries: Sequence[DiaryEntry] = (),
    *,
    reviewed: date | None = None,
    contract: dict[str, Any] = PLAN,
) -> Status:
    def assess() -> ResponseAssessment:
        return assess_response(entries, contract, today=today, evidence=load_evidence())

    return status_from_facts(plan_facts(contract), entries, today, reviewed, assess)


def never() -> ResponseAssessment:
    raise AssertionError("the full response assessment was run when it could not matter")


def test_the_shipped_titration_gives_the_dates_these_vignettes_use() -> None:
    assert PlanFacts("eligible", False, REVIEW, date(2026, 4, 13), START) == FACTS


def test_no_plan_yet() -> None:
    status = status_from_facts(None, [], START, None, never)
    assert (status.stage, status.flags, status.label) == ("no_plan", ("no plan yet",), "no plan")


def test_patient_on_tramadol_is_a_safety_alert_with_the_opioid_flag() -> None:
    tramadol = {**PN, "medications": [{"name": "tramadol 50 mg tablet"}]}
    status = status_on(START, contract=contract_for(tramadol))
    assert status.stage == "safety_alert"
    assert status.flags == ("LDN not recommended now", "opioid on record")


def test_tramadol_that_ended_years_ago_is_history_and_raises_no_opioid_flag() -> None:
    course = {"name": "tramadol 50 mg tablet", "status": "completed", "end": "2020-06-30"}
    contract = contract_for({**PN, "medications": [course]})
    rules = [f["rule"] for f in contract["ldn"]["findings"]]
    assert "ldn.opioid.history" in rules  # the record shows it, as history
    assert not plan_facts(contract).opioid_on_record
    assert "opioid on record" not in status_on(START, contract=contract).flags


def test_tramadol_still_taken_raises_the_opioid_flag() -> None:
    course = {"name": "tramadol 50 mg tablet", "status": "active", "start": "2020-01-01"}
    contract = contract_for({**PN, "medications": [course]})
    assert plan_facts(contract).opioid_on_record
    assert "opioid on record" in status_on(START, contract=contract).flags


def test_an_opioid_finding_stored_without_severity_is_judged_by_its_rule() -> None:
    history = {"rule": "ldn.opioid.history"}
    assert not opioid_conflict(history)
    assert opioid_conflict({"rule": "ldn.opioid.washout"})
    assert not opioid_conflict({"rule": "ldn.surgery.planned", "severity": "warning"})


def test_plan_starting_next_week_is_not_started() -> None:
    assert status_on(START - timedelta(days=7)).stage == "not_started"


def test_first_weeks_are_titration_then_the_trial_until_the_review_date() -> None:
    assert status_on(START).stage == "titrating"
    assert status_on(date(2026, 4, 12)).stage == "titrating"
    assert status_on(date(2026, 4, 13)).stage == "in_trial"
    assert status_on(REVIEW - timedelta(days=1)).stage == "in_trial"


def test_before_the_review_date_the_diary_is_never_judged() -> None:
    status = status_from_facts(FACTS, diary(6, 3), REVIEW - timedelta(days=1), None, never)
    assert (status.stage, status.response) == ("in_trial", "too_early")


def test_pain_halved_at_the_review_is_a_responder_and_the_review_is_due() -> None:
    status = status_on(REVIEW, diary(6, 3))
    assert status.stage == "responder"
    assert status.response == "responder_substantial"
    assert status.flags == ("review due",)


def test_a_review_note_on_or_after_the_review_date_clears_review_due() -> None:
    assert status_on(REVIEW, diary(6, 3), reviewed=REVIEW).flags == ()
    assert status_on(REVIEW, diary(6, 3), reviewed=REVIEW - timedelta(days=1)).flags == (
        "review due",
    )


def test_unchanged_pain_at_the_review_is_a_non_responder() -> None:
    status = status_on(REVIEW, diary(6, 6), reviewed=REVIEW)
    assert status.stage == "non_responder"
    assert status.flags == ("non-response",)


def test_no_diary_at_the_review_leaves_it_due_without_a_verdict() -> None:
    status = status_from_facts(FACTS, [], REVIEW, None, never)
    assert (status.stage, status.response, status.flags) == (
        "due_for_review",
        "insufficient_data",
        ("review due",),
    )


@pytest.mark.parametrize(
    ("days_ago", "severity", "flag"),
    [
        (0, "mild", "side effects reported"),
        (SIDE_EFFECT_DAYS - 1, "moderate", "side effects reported"),
        (3, "severe", "severe side effects reported"),
        (SIDE_EFFECT_DAYS, "severe", None),  # outside the window
    ],
)
def test_side_effects_of_the_last_two_weeks_are_flagged(
    days_ago: int, severity: str, flag: str | None
) -> None:
    today = date(2026, 3, 20)
    effect = SideEffect.model_validate({"effect": "vivid_dreams", "severity": severity})
    entries = [DiaryEntry(day=today - timedelta(days=days_ago), side_effects=(effect,))]
    status = status_on(today, entries)
    assert status.stage == "titrating"
    assert status.flags == ((flag,) if flag else ())


# --------------------------------------------------------------------------- invariants

optional_day = st.none() | st.dates(date(2025, 1, 1), date(2027, 12, 31))


@given(
    eligibility=st.sampled_from(["eligible", "caution", "not_recommended"]),
    opioid=st.booleans(),
    review=optional_day,
    target=optional_day,
    first=optional_day,
    today=st.dates(date(2025, 1, 1), date(2027, 12, 31)),
    reviewed=optional_day,
    verdict=st.sampled_from(
        ["responder_substantial", "responder_moderate", "minimal", "non_responder"]
    ),
    with_diary=st.booleans(),
)
def test_status_invariants(
    eligibility: str,
    opioid: bool,
    review: date | None,
    target: date | None,
    first: date | None,
    today: date,
    reviewed: date | None,
    verdict: str,
    with_diary: bool,
) -> None:
    facts = PlanFacts(eligibility, opioid, review, target, first)
    entries = [DiaryEntry(day=today, pain_avg=4)] if with_diary else []
    calls: list[date] = []

    def assess() -> Any:
        calls.append(today)
        return type("Verdict", (), {"status": verdict})()

    status = status_from_facts(facts, entries, today, reviewed, assess)
    assert status.stage in STAGE_LABELS
    # A plan that does not recommend LDN is always a safety alert, and nothing else is.
    assert (status.stage == "safety_alert") == (eligibility == "not_recommended")
    assert ("opioid on record" in status.flags) == opioid
    if eligibility == "not_recommended":
        assert calls == []
        return
    # The diary is judged only at or after the review date, with a diary and a schedule.
    judged = first is not None and review is not None and today >= review and with_diary
    assert bool(calls) == judged
    # A verdict of (non-)response needs the review date reached.
    if status.stage in ("responder", "non_responder"):
        assert review is not None and today >= review
    # "review due": the review date has come and no review note since.
    due = review is not None and today >= review and (reviewed is None or reviewed < review)
    assert ("review due" in status.flags) == due
    if due:
        assert status.flags[0] == "review due"
