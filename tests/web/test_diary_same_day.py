"""A second diary save on the same day adds to the first (the patient's diary form)."""

from __future__ import annotations

from datetime import date

from ldncare.store import repository
from tests.web.conftest import World
from tests.web.test_pages import login_page


def _save(world: World, token: str, **fields: str) -> None:
    r = world.client.post(
        "/me/diary",
        data={"csrf_token": token, "day": "2026-03-01", **fields},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def test_evening_save_keeps_the_morning_side_effect(world: World) -> None:
    token = login_page(world, "anna")
    _save(world, token, side_effect="headache", severity="severe", notes="woke with a headache")
    _save(world, token, pain_avg="5", pain_worst="7", notes="pain after sitting")
    [day] = [e for e in repository.list_diary(world.engine, world.anna, actor="t")
             if e.day == date(2026, 3, 1)]  # fmt: skip
    assert (day.pain_avg, day.pain_worst) == (5, 7)
    assert [(e.effect, e.severity) for e in day.side_effects] == [("headache", "severe")]
    assert day.notes == "woke with a headache\npain after sitting"
    # The clinician still sees the severe side effect.
    world.logout()
    login_page(world, "clin1")
    assert "severe side effects reported" in world.client.get(f"/patients/{world.anna}").text


def test_a_value_given_again_replaces_the_stored_one(world: World) -> None:
    token = login_page(world, "anna")
    _save(world, token, pain_avg="6", side_effect="headache", severity="mild")
    _save(world, token, pain_avg="3", side_effect="headache", severity="moderate")
    [day] = [e for e in repository.list_diary(world.engine, world.anna, actor="t")
             if e.day == date(2026, 3, 1)]  # fmt: skip
    assert day.pain_avg == 3
    assert [(e.effect, e.severity) for e in day.side_effects] == [("headache", "moderate")]


def test_replace_corrects_a_side_effect_recorded_by_mistake(world: World) -> None:
    token = login_page(world, "anna")
    _save(world, token, side_effect="headache", severity="severe", dose_taken="no")
    _save(world, token, pain_avg="4", replace="yes")
    [day] = [e for e in repository.list_diary(world.engine, world.anna, actor="t")
             if e.day == date(2026, 3, 1)]  # fmt: skip
    assert (day.pain_avg, day.side_effects, day.dose_taken) == (4, (), None)


def test_an_evening_save_does_not_overwrite_the_mornings_missed_dose(world: World) -> None:
    """The form's dose field starts at "not recorded", so leaving it alone keeps "no"."""
    token = login_page(world, "anna")
    _save(world, token, dose_taken="no")
    _save(world, token, pain_avg="5", dose_taken="")
    [day] = [e for e in repository.list_diary(world.engine, world.anna, actor="t")
             if e.day == date(2026, 3, 1)]  # fmt: skip
    assert (day.dose_taken, day.pain_avg) == (False, 5)
    html = world.client.get("/me/diary").text
    assert '<option value="" selected>not recorded</option>' in html


def test_a_merge_that_breaks_a_rule_is_a_message_not_a_crash(world: World) -> None:
    token = login_page(world, "anna")
    _save(world, token, pain_worst="5")
    r = world.client.post(
        "/me/diary",
        data={"csrf_token": token, "day": "2026-03-01", "pain_avg": "7"},
        follow_redirects=False,
    )
    assert r.status_code == 422
    assert "replace what was saved" in r.text
