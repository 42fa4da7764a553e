"""Vignettes for the second clinical review of issue 14 (section C items 1, 2 and 7).

Depot buprenorphine, kratom and tianeptine under brand or strain names, unrecognised
supplements, and partial FHIR birth dates. Each case runs as a patient file and as a FHIR Bundle.
"""

from __future__ import annotations

from datetime import date
from itertools import pairwise
from typing import Any

import pytest

from ldncare.fhir import patient_from_bundle
from tests.vignettes.test_screening_safety_vignettes import (
    assert_no_ldn_schedule,
    bundle,
    condition,
    contract,
    from_bundle,
    from_file,
    med_request,
    med_statement,
    message,
    rules,
)


def both(name: str, *resources: dict[str, Any]) -> list[dict[str, Any]]:
    return [from_file(name), from_bundle(*resources)]


# -- C1. depot buprenorphine ----------------------------------------------------------------
def test_brixadi_monthly_injection_is_an_opioid_and_stops_ldn() -> None:
    for plan in both(
        "pn-brixadi-monthly-active.yaml", med_request("Brixadi 128 mg monthly injection")
    ):
        assert_no_ldn_schedule(plan)
        assert "Brixadi" in message(plan, "ldn.opioid.active")


def test_brixadi_stopped_three_weeks_ago_is_not_history_and_asks_the_addiction_prescriber() -> None:
    for plan in both(
        "pn-brixadi-stopped-3-weeks.yaml",
        med_statement("Brixadi 128 mg monthly injection", status="stopped", asserted="2026-11-04"),
    ):
        assert_no_ldn_schedule(plan)
        assert "ldn.opioid.depot_stopped" in rules(plan, "contraindication")
        assert "ldn.opioid.history" not in rules(plan)
        assert "addiction prescriber" in message(plan, "ldn.opioid.depot_stopped")
        assert plan["ldn"]["course"]["kind"] == "not_started"


def test_sublocade_last_injection_33_days_ago_gets_no_short_washout_or_deferred_start() -> None:
    for plan in both(
        "pn-sublocade-last-injection-33-days.yaml",
        med_statement("Sublocade 300 mg monthly injection", status="completed"),
    ):
        assert_no_ldn_schedule(plan)
        assert "ldn.opioid.depot_stopped" in rules(plan, "contraindication")
        assert not rules(plan) & {"ldn.opioid.history", "ldn.opioid.washout"}
        assert "schedule.washout_deferred" not in plan["ldn"]["course"]["rules"]


def test_buprenorphine_implant_by_generic_name_is_a_depot() -> None:
    plan = from_bundle(
        med_statement("Buprenorphine 74.2 mg subdermal implant", status="completed"),
    )
    assert_no_ldn_schedule(plan)
    assert "ldn.opioid.depot_stopped" in rules(plan, "contraindication")


def test_sublingual_buprenorphine_completed_last_year_is_not_a_depot() -> None:
    plan = from_bundle(
        med_request(
            "Buprenorphine 8 mg sublingual tablet", status="completed", authored="2025-06-01"
        )
    )
    assert "ldn.opioid.depot_stopped" not in rules(plan)
    assert plan["ldn"]["eligibility"] != "not_recommended"


# -- C2. kratom and tianeptine by brand or strain name --------------------------------------
@pytest.mark.parametrize(
    ("file", "name", "rule"),
    [
        ("pn-maeng-da-capsules.yaml", "Maeng Da capsules 1 g", "ldn.opioid_acting.ask"),
        ("pn-opms-gold-capsules.yaml", "OPMS Gold capsules", "ldn.opioid_acting.ask"),
        ("pn-red-vein-kratom-strain.yaml", "Red Vein Bali powder", "ldn.opioid_acting.ask"),
        ("pn-neptunes-fix-elixir.yaml", "Neptune's Fix Elixir", "ldn.opioid_acting.tianeptine"),
        ("pn-stablon-from-abroad.yaml", "Stablon 12.5 mg", "ldn.opioid_acting.tianeptine"),
    ],
)
def test_kratom_or_tianeptine_sold_under_a_brand_or_strain_name_stops_ldn(
    file: str, name: str, rule: str
) -> None:
    for plan in both(file, med_statement(name)):
        assert_no_ldn_schedule(plan)
        assert "ldn.opioid.active" in rules(plan, "contraindication")
        assert rule in rules(plan, "warning")


def test_unrecognised_liquid_shot_prompts_to_ask_about_kratom_and_tianeptine() -> None:
    for plan in both("pn-unnamed-liquid-shot.yaml", med_statement("MIT45 Gold liquid shot")):
        text = message(plan, "ldn.opioid_acting.unrecognised_product")
        assert "kratom" in text and "tianeptine" in text


def test_a_kratom_tonic_sold_under_a_brand_name_is_asked_about_before_the_first_dose() -> None:
    # "Feel Free" is sold as a tonic; no source names the brand, so it is asked about (warning).
    plan = from_bundle(med_statement("Feel Free wellness tonic, 1 bottle daily"))
    assert "ldn.opioid_acting.unrecognised_product" in rules(plan, "warning")
    assert "Before the first dose" in message(plan, "ldn.opioid_acting.unrecognised_product")
    assert plan["ldn"]["eligibility"] == "eligible_with_cautions"


def test_recognised_medicine_gets_no_supplement_prompt() -> None:
    plan = from_bundle(med_statement("Gabapentin 300 mg capsule"))
    assert "ldn.opioid_acting.unrecognised_product" not in rules(plan)


# -- C7. partial FHIR birth dates ------------------------------------------------------------
@pytest.mark.parametrize("birth", ["2008-11", "2008"])
def test_partial_birth_date_that_may_be_under_18_is_read_as_a_minor(birth: str) -> None:
    # On 2026-11-25 someone born "2008-11" may be 17 (born 26-30 November); "2008" likewise.
    plan = from_bundle(birth=birth)
    assert_no_ldn_schedule(plan)
    assert "ldn.age.minor" in rules(plan, "contraindication")


def test_partial_birth_date_surely_adult_keeps_the_adult_plan() -> None:
    plan = from_bundle(birth="2007-10")
    assert "ldn.age.minor" not in rules(plan)
    assert plan["ldn"]["eligibility"] != "not_recommended"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2008-02", date(2008, 2, 29)),
        ("2009-02", date(2009, 2, 28)),
        ("2008-12", date(2008, 12, 31)),
        ("2010", date(2010, 12, 31)),
        ("2008-12-05", date(2008, 12, 5)),
    ],
)
def test_partial_birth_date_takes_the_latest_day_it_allows(value: str, expected: date) -> None:
    from ldncare.fhir.patient_bundle import _Where, parse_fhir_birth_date

    assert (
        parse_fhir_birth_date(
            value, _Where(0, {"resourceType": "Patient", "id": "p1"}), "birthDate"
        )
        == expected
    )


def test_no_birth_date_warning_does_not_claim_a_schedule_is_shown() -> None:
    plan = from_bundle(med_request("Dsuvia 30 mcg sublingual tablet"), birth=None)
    text = message(plan, "ldn.age.unconfirmed")
    assert "schedule shown" not in text and "18 or older" in text


# -- C6. plans that contradicted themselves --------------------------------------------------
def test_frail_78_year_old_already_on_ldn_climbs_slowly_too() -> None:
    for plan in [
        from_file("pn-ldn-1.5mg-frail-78.yaml"),
        from_bundle(
            med_request("Naltrexone (LDN) 1.5mg", authored="2026-11-18"),
            condition("Frailty"),
            birth="1948-01-01",
        ),
    ]:
        assert plan["ldn"]["course"]["kind"] == "continue"
        assert "schedule.slow_continue" in plan["ldn"]["course"]["rules"]
        steps = plan["ldn"]["schedule"]
        assert steps[0]["dose"]["value"] == 1.5 and steps[-1]["dose"]["value"] == 4.5
        gaps = {
            (date.fromisoformat(b["start_date"]) - date.fromisoformat(a["start_date"])).days
            for a, b in pairwise(steps)
        }
        assert min(gaps) > 14  # slower than the default two-week steps
        # ...but still within the cited 8-week titration window.
        total = date.fromisoformat(steps[-1]["start_date"]) - date.fromisoformat(
            steps[0]["start_date"]
        )
        assert total.days <= 56


def test_ldn_3_mg_with_tramadol_as_needed_says_hold_ldn_or_stop_tramadol_not_continue() -> None:
    for plan in both(
        "pn-ldn-3mg-plus-tramadol-prn.yaml",
        med_request("LDN 3 mg", authored="2026-10-01"),
        med_request("Tramadol 50 mg as needed"),
    ):
        assert_no_ldn_schedule(plan)
        assert plan["ldn"]["course"]["kind"] == "withheld"
        text = " ".join(f["message"] for f in plan["ldn"]["findings"])
        assert "continues from the current dose" not in text
        held = message(plan, "ldn.naltrexone.ldn_held_opioid")
        assert "Tramadol" in held and "hold LDN" in held and "stop the opioid" in held


def test_kratom_stopped_three_days_ago_explains_why_no_start_date_is_planned() -> None:
    statement = med_statement("Mitragynine extract", status="stopped")
    statement["effectivePeriod"] = {"start": "2026-06-01", "end": "2026-11-22"}
    for plan in [from_file("pn-mitragynine-stopped-3-days.yaml"), from_bundle(statement)]:
        assert_no_ldn_schedule(plan)
        text = message(plan, "ldn.opioid.washout_opioid_acting")
        assert "2026-12-02" in text and "no deferred start" in text and "unrecorded" in text
        assert "schedule.washout_deferred" not in plan["ldn"]["course"]["rules"]


# -- C5. surgery while on LDN ----------------------------------------------------------------
def with_surgery(day: str, *resources: dict[str, Any]) -> dict[str, Any]:
    """A FHIR Bundle whose Patient carries ldncare's planned-surgery extension."""
    b = bundle(*resources, birth="1970-05-05")
    b["entry"][0]["resource"]["extension"] = [
        {"url": "https://ldncare.org/fhir/StructureDefinition/planned-surgery", "valueDate": day}
    ]
    return contract(patient_from_bundle(b))


def test_on_ldn_with_hernia_repair_tomorrow_tells_the_anaesthetist_today() -> None:
    fhir = from_bundle(med_request("Naltrexone (LDN) 1.5mg", authored="2026-11-01"))
    bundle_plan = with_surgery(
        "2026-11-26", med_request("Naltrexone (LDN) 1.5mg", authored="2026-11-01")
    )
    assert "schedule.surgery_imminent_ldn" not in fhir["ldn"]["course"]["rules"]
    for plan in [from_file("pn-ldn-1.5mg-surgery-tomorrow.yaml"), bundle_plan]:
        assert "schedule.surgery_imminent_ldn" in plan["ldn"]["course"]["rules"]
        text = message(plan, "schedule.surgery_imminent_ldn")
        assert "tomorrow" in text and "2026-11-26" in text and "anaesthetist" in text


def test_on_ldn_with_surgery_in_three_weeks_gets_no_imminent_alert() -> None:
    plan = with_surgery("2026-12-16", med_request("Naltrexone (LDN) 1.5mg", authored="2026-11-01"))
    assert "schedule.surgery_imminent_ldn" not in plan["ldn"]["course"]["rules"]


# -- lower harm: Vivitrol given recently, samidorphan ----------------------------------------
def test_vivitrol_injection_two_weeks_ago_may_still_act() -> None:
    statement = med_statement("Vivitrol 380 mg injection", status="completed")
    statement["effectivePeriod"] = {"start": "2026-11-11", "end": "2026-11-11"}
    for plan in [from_file("pn-vivitrol-injection-2-weeks-ago.yaml"), from_bundle(statement)]:
        text = message(plan, "ldn.naltrexone.injection_recent")
        assert "2026-11-11" in text and "4 weeks" in text
        assert plan["ldn"]["eligibility"] != "eligible"


def test_vivitrol_injection_three_months_ago_gets_no_note() -> None:
    statement = med_statement("Vivitrol 380 mg injection", status="completed")
    statement["effectivePeriod"] = {"start": "2026-08-20", "end": "2026-08-20"}
    assert "ldn.naltrexone.injection_recent" not in rules(from_bundle(statement))


def test_lybalvi_samidorphan_is_an_opioid_antagonist_to_ask_about() -> None:
    for plan in both("pn-lybalvi-schizophrenia.yaml", med_request("Lybalvi 10 mg/10 mg tablet")):
        assert "samidorphan" in message(plan, "ldn.opioid_antagonist.samidorphan")
        assert "ldn.opioid_antagonist.samidorphan" in rules(plan, "warning")


# -- surgery while on LDN: the last dose is dated 3 days before (whately2023) ----------------
def test_on_ldn_with_surgery_in_two_days_holds_the_schedule_and_alerts_today() -> None:
    # As of 25 November the last dose was due on 24 November (3 days before 27 November).
    plan = with_surgery(
        "2026-11-27", med_request("LDN 4.5 mg", authored="2026-06-01", dose="4.5 mg at bedtime")
    )
    assert "schedule.surgery_imminent_ldn" in plan["ldn"]["course"]["rules"]
    text = message(plan, "schedule.surgery_imminent_ldn")
    assert "in 2 days" in text and "Take no further dose" in text
    assert plan["ldn"]["course"]["kind"] == "withheld"
    assert plan["ldn"]["schedule"] == []


def test_on_ldn_with_surgery_in_six_days_names_the_last_dose_date() -> None:
    plan = with_surgery(
        "2026-12-01", med_request("LDN 4.5 mg", authored="2026-06-01", dose="4.5 mg at bedtime")
    )
    assert "schedule.surgery_imminent_ldn" not in plan["ldn"]["course"]["rules"]
    text = message(plan, "schedule.surgery_current_ldn")
    assert "last dose on 2026-11-28 at the latest" in text
    assert all(
        date.fromisoformat(s["end_date"]) <= date(2026, 11, 28) for s in plan["ldn"]["schedule"]
    ), "no scheduled dose inside the 3 days before the operation"
