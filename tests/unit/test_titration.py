"""Titration arithmetic and the safety invariants of every schedule."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.core.quantity import Dose, parse_dose
from ldncare.core.titration import TitrationOptions, titrate
from ldncare.errors import InvalidInput
from ldncare.evidence.loader import load_evidence

DOSING = load_evidence().ldn
START = date(2026, 12, 1)


def test_default_schedule_starts_low_at_bedtime_and_reaches_target_in_4_to_8_weeks() -> None:
    s = titrate(TitrationOptions(start=START), DOSING)
    assert s.steps[0].dose == Dose.mg("1.5")
    assert s.steps[-1].dose == Dose.mg("4.5")
    assert all(step.time_of_day == "bedtime" for step in s.steps)
    weeks = (s.target_reached - START).days / 7
    assert 4 <= weeks <= 8
    # The review rule: the trial is counted once the target is reached (8 weeks by default).
    assert s.target_reached == START + timedelta(weeks=6)
    assert s.review_date == s.target_reached + timedelta(weeks=8) == START + timedelta(weeks=14)
    assert s.steps[-1].end_date == s.review_date


def test_a_very_slow_titration_moves_the_review_back_instead_of_being_refused() -> None:
    slow = TitrationOptions(start=START, slow=True, step_dose=Dose.mg("0.5"), step_days=28)
    s = titrate(slow, DOSING)
    assert s.steps[-1].dose == Dose.mg("4.5")
    assert s.review_date == s.target_reached + timedelta(weeks=8)
    assert any("outside the usual 4 to 8 weeks" in n for n in s.notes)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"start_dose": Dose.mg(0)}, "start dose 0 mg is outside"),
        ({"target_dose": Dose.mg(50)}, "above the LDN maximum of 4.5 mg"),
        ({"target_dose": parse_dose("4.5 g")}, "4500 mg is above the LDN maximum"),
        ({"step_dose": Dose.mg("0.3")}, "multiple of 0.5 mg"),
        ({"review_weeks": 20}, "outside the 8 to 12 week"),
        ({"step_days": 0}, "outside 1 to"),
        ({"formulation": "patch"}, "unknown formulation 'patch'"),
        ({"holds": {9: 7}}, "cannot hold step 9"),
        ({"start_dose": Dose.mg(2), "target_dose": Dose.mg(1)}, "below the start dose"),
    ],
)
def test_invalid_options_are_rejected_with_a_clear_message(kwargs: dict, needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        titrate(TitrationOptions(start=START, **kwargs), DOSING)


def test_unitless_dose_text_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="has no unit"):
        parse_dose("4.5")


def test_slow_titration_doubles_each_step_and_hold_extends_one() -> None:
    normal = titrate(TitrationOptions(start=START), DOSING)
    slow = titrate(TitrationOptions(start=START, slow=True, step_days=7), DOSING)
    assert slow.steps[0].days == 14
    held = titrate(TitrationOptions(start=START, holds={2: 7}), DOSING)
    assert held.steps[1].days == normal.steps[1].days + 7
    assert held.target_reached == normal.target_reached + timedelta(days=7)


def test_morning_dosing_and_liquid_instruction() -> None:
    s = titrate(TitrationOptions(start=START, time_of_day="morning"), DOSING)
    assert all(step.time_of_day == "morning" for step in s.steps)
    assert "in the morning" in s.steps[0].instruction


half_mg = st.integers(min_value=1, max_value=9).map(lambda n: Decimal(n) / 2)


@settings(max_examples=300, deadline=None)
@given(
    start_dose=st.sampled_from([Decimal("1"), Decimal("1.5"), Decimal("2")]),
    target=half_mg,
    step=half_mg,
    step_days=st.integers(min_value=3, max_value=21),
    review_weeks=st.integers(min_value=8, max_value=12),
    slow=st.booleans(),
    hold=st.integers(min_value=0, max_value=14),
    morning=st.booleans(),
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)),
)
def test_every_valid_schedule_respects_the_safety_invariants(
    start_dose: Decimal,
    target: Decimal,
    step: Decimal,
    step_days: int,
    review_weeks: int,
    slow: bool,
    hold: int,
    morning: bool,
    start: date,
) -> None:
    options = TitrationOptions(
        start=start,
        start_dose=Dose.mg(start_dose),
        target_dose=Dose.mg(target),
        step_dose=Dose.mg(step),
        step_days=step_days,
        review_weeks=review_weeks,
        slow=slow,
        holds={1: hold},
        time_of_day="morning" if morning else "bedtime",
    )
    try:
        s = titrate(options, DOSING)
    except InvalidInput as exc:
        # Refusals are legitimate only for the documented reasons.
        assert any(key in str(exc) for key in ("below the start dose", "target range")), str(exc)
        return
    doses = [step.dose.mg_value for step in s.steps]
    assert max(doses) <= Decimal("4.5"), "no schedule ever exceeds 4.5 mg"
    assert min(doses) >= start_dose, "no step below the start dose"
    assert doses == sorted(doses), "steps never decrease"
    assert doses[-1] == target
    assert s.steps[0].start_date == start
    for a, b in zip(s.steps, s.steps[1:], strict=False):
        assert b.start_date == a.end_date + timedelta(days=1), "dates are contiguous"
    assert s.target_reached == s.steps[-1].start_date, "the target is reached at the last step"
    assert s.steps[-1].end_date == s.review_date
    assert s.review_date == s.target_reached + timedelta(weeks=review_weeks), "the review rule"
