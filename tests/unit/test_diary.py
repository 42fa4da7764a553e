"""Diary validation: every refusal names the field and what is accepted."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal
from typing import Any

import pytest

from ldncare.core.diary import DiaryEntry, check_against_schedule, parse_entry
from ldncare.core.plan_contract import Ldn
from ldncare.errors import InvalidInput
from ldncare.store.diary_csv import diary_to_csv, parse_diary_csv
from tests.plan_parts import ldn_part

TODAY = date(2025, 3, 10)


def entry(**kw: Any) -> DiaryEntry:
    data: dict[str, Any] = {"day": "2025-03-09", "pain_avg": 5, "pain_worst": 7}
    data.update(kw)
    return parse_entry(data, today=TODAY)


def refused(**kw: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        entry(**kw)
    return info.value


def plan() -> Ldn:
    """Two bedtime steps, 1.5 mg then 3 mg, review on 2025-05-24."""
    return ldn_part(
        [("2025-03-01", "2025-03-07", 1.5), ("2025-03-08", "2025-05-23", 3.0)],
        "2025-05-24",
    )


def test_a_complete_day_is_accepted() -> None:
    e = entry(
        sitting_minutes=45,
        sleep_quality=6,
        side_effects=[{"effect": "vivid_dreams", "severity": "mild"}],
        dose_taken=True,
        dose_mg="3 mg",
        dose_time="22:15",
        pgic=3,
        notes="walked 20 minutes",
    )
    assert e.dose_mg == Decimal("3")
    assert e.dose_time == time(22, 15)
    assert e.side_effects[0].effect == "vivid_dreams"


@pytest.mark.parametrize("field", ["pain_avg", "pain_worst"])
def test_pain_above_ten_is_out_of_range(field: str) -> None:
    err = refused(**{field: 11, "pain_avg": 11 if field == "pain_avg" else 5})
    assert err.field == field
    assert "11 is out of range; accepted: 0–10" in err.message


def test_negative_pain_is_out_of_range() -> None:
    assert "out of range" in refused(pain_avg=-1).message


def test_fractional_pain_is_refused() -> None:
    assert "whole number" in refused(pain_avg=4.5).message


def test_sitting_longer_than_a_day_is_refused() -> None:
    err = refused(sitting_minutes=1441)
    assert err.field == "sitting_minutes"
    assert "0–1440" in err.message


def test_sleep_quality_scale_is_zero_to_ten() -> None:
    assert refused(sleep_quality=11).field == "sleep_quality"


@pytest.mark.parametrize("value", [0, 8])
def test_pgic_outside_one_to_seven_is_refused(value: int) -> None:
    err = refused(pgic=value)
    assert err.field == "pgic"
    assert "1–7" in err.message


def test_future_day_is_refused_relative_to_today() -> None:
    err = refused(day="2025-03-11")
    assert err.field == "day"
    assert "2025-03-11 is in the future (today is 2025-03-10)" in err.message


def test_today_itself_is_accepted() -> None:
    assert entry(day="2025-03-10").day == TODAY


def test_bad_date_text_is_explained() -> None:
    err = refused(day="10/03/2025")
    assert err.field == "day"
    assert "YYYY-MM-DD" in err.message


def test_worst_pain_below_average_is_refused() -> None:
    assert "cannot be lower than its average" in refused(pain_avg=6, pain_worst=4).message


@pytest.mark.parametrize(
    ("text", "mg"), [("1.5 mg", "1.5"), ("1500 mcg", "1.5"), ("4,5 mg", "4.5"), ("0.003 g", "3")]
)
def test_dose_text_with_unit_is_read_in_mg(text: str, mg: str) -> None:
    assert entry(dose_mg=text).dose_mg == Decimal(mg)


def test_dose_text_without_unit_is_refused() -> None:
    err = refused(dose_mg="1.5")
    assert err.field == "dose_mg"
    assert "has no unit" in err.message


def test_dose_with_a_non_mass_unit_is_refused() -> None:
    assert "not a mass unit" in refused(dose_mg="1.5 ml").message


def test_programmatic_number_is_milligrams() -> None:
    assert entry(dose_mg=Decimal("4.5")).dose_mg == Decimal("4.5")


def test_zero_dose_is_refused() -> None:
    assert "greater than 0" in refused(dose_mg="0 mg").message


def test_dose_recorded_as_missed_with_an_amount_is_contradictory() -> None:
    assert "dose_taken is no" in refused(dose_taken=False, dose_mg="3 mg").message


def test_side_effect_outside_the_list_is_refused() -> None:
    err = refused(side_effects=[{"effect": "rash", "severity": "mild"}])
    assert "not on the list" in err.message
    assert "vivid_dreams" in err.message


def test_side_effect_severity_must_be_on_the_scale() -> None:
    err = refused(side_effects=[{"effect": "headache", "severity": "awful"}])
    assert "mild, moderate, severe" in err.message


def test_same_side_effect_twice_in_a_day_is_refused() -> None:
    twice = [
        {"effect": "headache", "severity": "mild"},
        {"effect": "headache", "severity": "severe"},
    ]
    assert "listed twice" in refused(side_effects=twice).message


def test_notes_longer_than_2000_characters_are_refused() -> None:
    err = refused(notes="x" * 2001)
    assert err.field == "notes"
    assert "2001" in err.message


def test_unknown_field_is_refused() -> None:
    assert refused(mood=5).message == "unknown field"


def test_dose_matching_the_schedule_raises_no_flag() -> None:
    assert check_against_schedule(entry(day="2025-03-09", dose_mg="3 mg"), plan()) == []


def test_dose_differing_from_the_schedule_is_flagged_not_refused() -> None:
    flags = check_against_schedule(entry(day="2025-03-09", dose_mg="4.5 mg"), plan())
    assert flags == ["2025-03-09: dose taken 4.5 mg differs from the scheduled 3 mg"]


def test_first_step_dose_checked_on_its_own_dates() -> None:
    flags = check_against_schedule(entry(day="2025-03-03", dose_mg="3 mg"), plan())
    assert flags == ["2025-03-03: dose taken 3 mg differs from the scheduled 1.5 mg"]


def test_missed_dose_is_flagged() -> None:
    flags = check_against_schedule(entry(day="2025-03-09", dose_taken=False), plan())
    assert flags == ["2025-03-09: no dose taken; 3 mg was scheduled"]


def test_dose_before_the_plan_starts_is_flagged() -> None:
    flags = check_against_schedule(entry(day="2025-02-20", dose_mg="1.5 mg"), plan())
    assert "plan schedules no LDN that day" in flags[0]


def test_a_plan_that_does_not_recommend_ldn_still_accepts_diary_days() -> None:
    not_recommended = plan().model_copy(update={"schedule": [], "review_date": None})
    assert check_against_schedule(entry(day="2025-03-09", dose_taken=False), not_recommended) == []
    flags = check_against_schedule(entry(day="2025-03-09", dose_mg="1.5 mg"), not_recommended)
    assert flags == ["2025-03-09: a dose was recorded but the current plan does not recommend LDN"]


HEADER = "day,pain_avg,pain_worst,sitting_minutes,sleep_quality,side_effects,dose_taken,dose,"
CSV = (
    HEADER
    + """dose_time,pgic,notes
2025-03-08,5,7,30,6,vivid_dreams:mild; headache:moderate,yes,3 mg,22:00,,
2025-03-09,4,6,40,,,no,,,3,"slept badly, long drive"
"""
)


def test_csv_import_reads_every_column() -> None:
    entries = parse_diary_csv(CSV, today=TODAY)
    assert [e.day for e in entries] == [date(2025, 3, 8), date(2025, 3, 9)]
    first = entries[0]
    assert [(s.effect, s.severity) for s in first.side_effects] == [
        ("vivid_dreams", "mild"),
        ("headache", "moderate"),
    ]
    assert first.dose_mg == Decimal("3")
    assert entries[1].dose_taken is False
    assert entries[1].notes == "slept badly, long drive"


def test_csv_round_trip_is_lossless() -> None:
    entries = parse_diary_csv(CSV, today=TODAY)
    assert parse_diary_csv(diary_to_csv(entries), today=TODAY) == entries


def test_csv_row_error_names_the_row_and_field() -> None:
    bad = CSV.replace("2025-03-09,4,6", "2025-03-09,14,16")
    with pytest.raises(InvalidInput) as info:
        parse_diary_csv(bad, today=TODAY)
    assert info.value.field == "row 3.pain_avg"


def test_csv_dose_without_unit_is_refused() -> None:
    with pytest.raises(InvalidInput, match="has no unit"):
        parse_diary_csv(CSV.replace("3 mg", "3"), today=TODAY)


def test_csv_duplicate_day_is_refused() -> None:
    dup = CSV + "2025-03-08,3,4,,,,,,,,\n"
    with pytest.raises(InvalidInput, match="appears twice"):
        parse_diary_csv(dup, today=TODAY)


def test_csv_unknown_column_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown column"):
        parse_diary_csv("day,mood\n2025-03-08,3\n", today=TODAY)


# --- merge_day: a second save on the same day ------------------------------------------------


def test_merge_day_keeps_what_the_update_leaves_out() -> None:
    from ldncare.core.diary import merge_day

    day = date(2026, 3, 1)
    stored = parse_entry(
        {"day": "2026-03-01", "pain_avg": 6, "notes": "am",
         "side_effects": [{"effect": "headache", "severity": "severe"}]},
        today=day,
    )  # fmt: skip
    update = parse_entry(
        {"day": "2026-03-01", "pain_worst": 8, "notes": "pm",
         "side_effects": [{"effect": "vivid_dreams", "severity": "mild"}]},
        today=day,
    )  # fmt: skip
    merged = merge_day(stored, update)
    assert (merged.pain_avg, merged.pain_worst, merged.notes) == (6, 8, "am\npm")
    assert [e.effect for e in merged.side_effects] == ["headache", "vivid_dreams"]
    # The same note sent twice is not doubled; a note too long together is refused.
    assert merge_day(merged, update).notes == "am\npm"
    with pytest.raises(InvalidInput, match="at most 2000"):
        merge_day(merged, parse_entry({"day": "2026-03-01", "notes": "x" * 1999}, today=day))


def test_merge_day_adds_a_note_found_inside_an_earlier_one() -> None:
    from ldncare.core.diary import merge_day

    day = date(2026, 3, 1)
    stored = parse_entry({"day": "2026-03-01", "notes": "not ok"}, today=day)
    merged = merge_day(stored, parse_entry({"day": "2026-03-01", "notes": "ok"}, today=day))
    assert merged.notes == "not ok\nok"


def test_merge_day_refuses_an_invalid_result_with_a_message() -> None:
    from ldncare.core.diary import merge_day

    day = date(2026, 3, 1)
    stored = parse_entry({"day": "2026-03-01", "pain_worst": 5}, today=day)
    with pytest.raises(InvalidInput, match="replace what was saved"):
        merge_day(stored, parse_entry({"day": "2026-03-01", "pain_avg": 7}, today=day))
