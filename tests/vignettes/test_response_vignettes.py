"""Response vignettes: hand-computed percentages, missing days, too-early and too-few cases.

Shared set-up unless a test says otherwise:
- first LDN dose 2025-03-01, so the baseline window is 2025-02-15 .. 2025-02-28 (14 days);
- review (verdict) date 2025-05-24 (12 weeks after the first dose);
- judged on 2025-05-24, so the current window is 2025-05-11 .. 2025-05-24 (14 days).
Percent reduction = (baseline mean - current mean) / baseline mean x 100.
"""

from __future__ import annotations

from datetime import date, timedelta
from importlib import resources
from typing import Any

import pytest
import yaml

from ldncare.core.diary import DiaryEntry
from ldncare.core.plan_contract import Ldn
from ldncare.core.response import ResponseAssessment, assess_response
from ldncare.evidence.models import Rule
from tests.plan_parts import ldn_part

FIRST_DOSE = date(2025, 3, 1)
REVIEW = date(2025, 5, 24)
BASELINE_START = date(2025, 2, 15)
CURRENT_START = date(2025, 5, 11)


class FollowupRules:
    """The follow-up rules straight from the shipped YAML (independent of other evidence files)."""

    def __init__(self) -> None:
        node = resources.files("ldncare.evidence") / "data" / "rules" / "followup.yaml"
        raw = yaml.safe_load(node.read_text(encoding="utf-8"))
        self.rules = {r["id"]: Rule.model_validate(r) for r in raw}

    def rule(self, rule_id: str) -> Rule:
        return self.rules[rule_id]


RULES = FollowupRules()


def plan(review: date = REVIEW) -> Ldn:
    """Bedtime titration 1.5, 3, then 4.5 mg from 2025-03-15 until the review."""
    return ldn_part(
        [
            ("2025-03-01", "2025-03-07", 1.5),
            ("2025-03-08", "2025-03-14", 3.0),
            ("2025-03-15", review, 4.5),
        ],
        review,
    )


def days(start: date, pains: list[int | None], **kw: Any) -> list[DiaryEntry]:
    """One entry per day from ``start``; None = a day the patient did not record."""
    return [
        DiaryEntry(day=start + timedelta(days=i), pain_avg=p, **kw)
        for i, p in enumerate(pains)
        if p is not None
    ]


def assess(entries: list[DiaryEntry], today: date = REVIEW, **kw: Any) -> ResponseAssessment:
    return assess_response(entries, plan(**kw), today=today, evidence=RULES)


def actions(a: ResponseAssessment) -> list[str]:
    return [x.action for x in a.advice]


def test_halving_pain_after_twelve_weeks_is_a_substantial_response() -> None:
    # baseline 14 x 6 -> mean 6; current 14 x 3 -> mean 3; (6 - 3) / 6 = 50 % -> substantial.
    a = assess(days(BASELINE_START, [6] * 14) + days(CURRENT_START, [3] * 14, dose_mg=4.5))
    assert a.status == "responder_substantial"
    assert a.percent == 50.0
    assert (a.baseline.days, a.current.days) == (14, 14)
    assert actions(a) == ["continue_ldn"]
    # next review: another trial-length period (2025-03-01 -> 2025-05-24 = 84 days) after today
    assert "2025-08-16" in a.advice[0].message
    assert a.advice[0].citations == ("dworkin2008",)


def test_missing_days_still_give_a_moderate_response_and_say_how_many_days() -> None:
    # baseline 10 of 14 days: 7+7+6+6+6+6+6+5+5+6 = 60 -> mean 6.0
    baseline = [7, None, 7, 6, None, 6, 6, 6, None, 6, 5, 5, None, 6]
    # current 8 of 14 days: 4+4+4+4+4+4+5+3 = 32 -> mean 4.0; (6 - 4) / 6 = 33.3 %
    current = [4, None, 4, None, 4, 4, None, None, 4, 4, None, 5, None, 3]
    a = assess(days(BASELINE_START, baseline) + days(CURRENT_START, current, dose_mg=4.5))
    assert a.status == "responder_moderate"
    assert a.percent == 33.3
    c = a.to_contract()
    assert c["baseline"]["days_recorded"] == 10
    assert c["baseline"]["days_in_window"] == 14
    assert c["current"]["days_recorded"] == 8
    assert c["baseline"]["mean"] == 6.0
    assert c["current"]["mean"] == 4.0


def test_exactly_thirty_percent_is_moderate_not_minimal() -> None:
    # baseline 7 x 10 -> 10; current 7 x 7 -> 7; (10 - 7) / 10 = 30 % exactly -> moderate.
    # A pain-free day 20 days before the first dose lies outside the baseline window: ignored.
    stale = [DiaryEntry(day=FIRST_DOSE - timedelta(days=20), pain_avg=0)]
    a = assess(stale + days(BASELINE_START, [10] * 7) + days(CURRENT_START, [7] * 7))
    assert a.baseline.days == 7
    assert a.status == "responder_moderate"
    assert a.percent == 30.0


def test_twelve_percent_less_pain_is_minimal() -> None:
    # baseline 8; current 7; (8 - 7) / 8 = 12.5 % -> minimal (10-30 %).
    a = assess(days(BASELINE_START, [8] * 14) + days(CURRENT_START, [7] * 14, dose_mg=4.5))
    assert a.status == "minimal"
    assert a.percent == 12.5
    assert actions(a) == ["discuss_continuation"]


def test_twenty_five_percent_is_below_the_moderate_benchmark() -> None:
    # baseline 8; current 6; (8 - 6) / 8 = 25 % -> minimal, not a responder.
    a = assess(days(BASELINE_START, [8] * 14) + days(CURRENT_START, [6] * 14, dose_mg=4.5))
    assert a.status == "minimal"
    assert a.percent == 25.0


def test_no_change_at_target_dose_means_stop_and_consider_alternatives() -> None:
    # baseline 6; current 6 (at 4.5 mg, the target); 0 % -> non-responder.
    a = assess(days(BASELINE_START, [6] * 14) + days(CURRENT_START, [6] * 14, dose_mg=4.5))
    assert a.status == "non_responder"
    assert a.percent == 0.0
    assert actions(a) == ["consider_alternatives"]
    assert set(a.advice[0].citations) == {"dworkin2008", "nice_cg173"}


def test_worse_pain_is_a_negative_reduction() -> None:
    # baseline 5; current 6; (5 - 6) / 5 = -20 % -> non-responder.
    a = assess(days(BASELINE_START, [5] * 14) + days(CURRENT_START, [6] * 14, dose_mg=4.5))
    assert a.status == "non_responder"
    assert a.percent == -20.0


def test_non_response_below_target_dose_reviews_titration_before_stopping() -> None:
    # same figures as above but the patient stayed on 3 mg (target 4.5 mg).
    a = assess(days(BASELINE_START, [6] * 14) + days(CURRENT_START, [6] * 14, dose_mg=3))
    assert a.status == "non_responder"
    assert actions(a) == ["review_titration"]
    assert "3 mg" in a.advice[0].message and "4.5 mg" in a.advice[0].message


def test_six_weeks_in_is_too_early_and_says_when_the_verdict_is_due() -> None:
    # today 2025-04-12 (6 weeks): current window 2025-03-30 .. 2025-04-12; 6 -> 3 = 50 %,
    # but no verdict before the review date.
    today = date(2025, 4, 12)
    a = assess(days(BASELINE_START, [6] * 14) + days(date(2025, 3, 30), [3] * 14), today=today)
    assert a.status == "too_early"
    assert a.due_date == REVIEW
    assert a.to_contract()["due_date"] == "2025-05-24"
    assert actions(a) == ["keep_diary"]
    assert "2025-05-24" in a.advice[0].message


def test_the_day_before_review_is_still_too_early() -> None:
    a = assess(
        days(BASELINE_START, [6] * 14) + days(CURRENT_START, [3] * 13),
        today=REVIEW - timedelta(days=1),
    )
    assert a.status == "too_early"


def test_six_baseline_days_are_too_few_for_a_verdict() -> None:
    # 6 recorded baseline days (minimum 7) -> insufficient data, with the reason.
    a = assess(days(BASELINE_START, [6] * 6) + days(CURRENT_START, [3] * 14))
    assert a.status == "insufficient_data"
    assert a.reason is not None and "6 recorded day(s)" in a.reason
    assert actions(a) == ["record_diary"]


def test_six_recent_days_are_too_few_for_a_verdict() -> None:
    # the window 2025-05-11..05-24 holds 6 recorded days (earlier on-treatment days don't count)
    entries = days(BASELINE_START, [6] * 14) + days(date(2025, 4, 1), [3] * 20)
    entries += days(CURRENT_START, [3, None, 3, None, 3, None, 3, None, 3, None, 3])
    a = assess(entries)
    assert a.current.days == 6
    assert a.status == "insufficient_data"
    assert a.reason is not None and "6 recorded day(s)" in a.reason


def test_thin_baseline_is_reported_already_while_too_early() -> None:
    a = assess(days(BASELINE_START, [6] * 3), today=date(2025, 3, 20))
    assert a.status == "too_early"
    assert actions(a) == ["keep_diary", "record_diary"]


def test_pain_free_baseline_cannot_give_a_percentage() -> None:
    a = assess(days(BASELINE_START, [0] * 14) + days(CURRENT_START, [0] * 14))
    assert a.status == "insufficient_data"
    assert a.reason is not None and "baseline pain was 0" in a.reason


def test_much_improved_pgic_is_reported_as_a_responder_and_weighed_against_pain() -> None:
    # pain 8 -> 7 = 12.5 % (minimal), but the patient rates "much improved" (PGIC 2).
    entries = days(BASELINE_START, [8] * 14) + days(CURRENT_START, [7] * 13, dose_mg=4.5)
    entries.append(DiaryEntry(day=REVIEW, pain_avg=7, pgic=2, dose_mg=4.5))
    a = assess(entries)
    assert a.status == "minimal"
    pgic = a.to_contract()["pgic"]
    assert pgic == {"value": 2, "label": "much improved", "day": "2025-05-24", "responder": True}
    assert actions(a) == ["discuss_continuation", "weigh_patient_impression"]


def test_sitting_tolerance_change_is_reported() -> None:
    # sitting baseline 20 min x 14, current 35 min x 14 -> +15 min, +75 %.
    entries = [
        DiaryEntry(day=BASELINE_START + timedelta(days=i), pain_avg=6, sitting_minutes=20)
        for i in range(14)
    ] + [
        DiaryEntry(day=CURRENT_START + timedelta(days=i), pain_avg=3, sitting_minutes=35)
        for i in range(14)
    ]
    sit = assess(entries).to_contract()["sitting_tolerance"]
    assert sit["change_minutes"] == 15.0
    assert sit["percent_change"] == 75.0


def test_vivid_dreams_are_known_and_usually_transient() -> None:
    dreams = [{"effect": "vivid_dreams", "severity": "moderate"}]
    entries = days(BASELINE_START, [6] * 14) + days(date(2025, 3, 10), [5] * 4, side_effects=dreams)
    a = assess(entries, today=date(2025, 3, 14))
    assert "report_sleep_side_effects" in actions(a)
    advice = next(x for x in a.advice if x.action == "report_sleep_side_effects")
    assert "4 of the last 14 days" in advice.message
    assert "morning" not in advice.message  # no citable source for morning dosing (see report)


def test_severe_side_effects_on_three_of_seven_days_hold_titration() -> None:
    severe = [{"effect": "nausea_gi", "severity": "severe"}]
    entries = days(BASELINE_START, [6] * 14) + days(
        date(2025, 3, 8), [6, None, 6, None, 6], side_effects=severe
    )
    a = assess(entries, today=date(2025, 3, 13))
    assert actions(a)[0] == "hold_titration"
    assert "3 of the last 7 days" in a.advice[0].message
    assert "expect_transient_side_effects" in actions(a)


def test_two_severe_days_do_not_hold_titration() -> None:
    severe = [{"effect": "headache", "severity": "severe"}]
    entries = days(BASELINE_START, [6] * 14) + days(date(2025, 3, 8), [6, 6], side_effects=severe)
    a = assess(entries, today=date(2025, 3, 13))
    assert "hold_titration" not in actions(a)


def test_contract_carries_citations_of_the_method_and_the_advice() -> None:
    a = assess(days(BASELINE_START, [6] * 14) + days(CURRENT_START, [3] * 14, dose_mg=4.5))
    c = a.to_contract()
    assert c["status"] == "responder_substantial"
    assert {"younger2013", "dworkin2008"} <= set(c["citations"])
    for item in c["advice"]:
        assert set(item) == {"action", "message", "rule", "citations"}
        assert item["citations"]


@pytest.mark.parametrize("rule_id", sorted(RULES.rules))
def test_every_followup_rule_cites_a_source_in_the_bibliography(rule_id: str) -> None:
    data = resources.files("ldncare.evidence") / "data"
    known: set[str] = set()
    for node in data.iterdir():
        if node.name == "sources.yaml" or (
            node.name.startswith("sources_") and node.name.endswith(".yaml")
        ):
            known |= {s["id"] for s in yaml.safe_load(node.read_text(encoding="utf-8"))}
    rule = RULES.rule(rule_id)
    assert rule.citations
    assert set(rule.citations) <= known
