"""Every card the CDS service can produce, checked against the CDS Hooks 2.0 card rules; and the
renal dose suggestions, which must be orders a real product can fill (issue #18, item 4)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldncare.cdshooks import validate_card
from ldncare.cdshooks.cards import INDICATORS, OVERRIDE_CODES, OVERRIDE_SYSTEM, SUMMARY_LIMIT
from tests.integration.test_cdshooks import (
    TODAY,
    cards_of,
    condition,
    egfr,
    fhir_patient,
    hook_request,
    make_client,
    med_request,
    post,
)

CLIENT: TestClient = make_client()
_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


def _uuid(value: Any) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def spec_problems(card: dict[str, Any], drafts: list[dict[str, Any]]) -> list[str]:
    """CDS Hooks 2.0 card rules beyond ``validate_card``: the uuids a client feeds back, the
    label of the source, and actions that point at the request's own draft orders."""
    problems = list(validate_card(card))
    if not _uuid(card.get("uuid")):
        problems.append("uuid: a card uuid is needed for feedback")
    if not 0 < len(card["summary"]) < SUMMARY_LIMIT:
        problems.append("summary: must be under 140 characters")
    if card["indicator"] not in INDICATORS:
        problems.append("indicator")
    if card["source"]["label"] != "ldncare":
        problems.append("source.label: ldncare")
    ids = {f"MedicationRequest/{d['id']}" for d in drafts}
    for s in card.get("suggestions", []):
        if not _uuid(s.get("uuid")):
            problems.append("suggestion uuid: needed for acceptedSuggestions feedback")
        for a in s.get("actions", []):
            if a["type"] == "delete" and (
                not _REFERENCE.match(a["resourceId"]) or a["resourceId"] not in ids
            ):
                problems.append(f"delete of {a['resourceId']}: not a draft of this request")
            if a["type"] == "update":
                target = f"{a['resource']['resourceType']}/{a['resource'].get('id')}"
                if target not in ids:
                    problems.append(f"update of {target}: not a draft of this request")
    if {(r["system"], r["code"]) for r in card.get("overrideReasons", [])} != {
        (OVERRIDE_SYSTEM, code) for code in OVERRIDE_CODES
    }:
        problems.append("overrideReasons: every card offers ldncare's coded reasons")
    if card.get("suggestions") and card.get("selectionBehavior") != "at-most-one":
        problems.append("selectionBehavior: the suggestions are alternatives")
    return problems


def draft(text: str, rid: str, dose_mg: float | None = None, per_day: int = 1) -> dict[str, Any]:
    return med_request(text, rid=rid, status="draft", dose_mg=dose_mg, per_day=per_day)


def answer(
    hook: str, resources: list[dict[str, Any]], drafts: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    body = hook_request(hook, resources=resources, drafts=drafts)
    cards = cards_of(post(CLIENT, f"ldncare-{hook}", body))
    for card in cards:
        assert spec_problems(card, drafts or []) == [], card
    return cards


LDN = "naltrexone 4.5 mg capsule (compounded)"
OXY = "oxycodone hydrochloride 5 mg oral tablet"


# --------------------------------------------------------------------------- each kind of card


def test_patient_on_ldn_and_oxycodone_for_ten_weeks_gets_conformant_critical_and_review_cards() -> (
    None
):
    resources = [
        fhir_patient(),
        condition("Pudendal neuralgia"),
        med_request(LDN, authored=TODAY - timedelta(weeks=10)),
        med_request(OXY),
    ]
    kinds = {c["source"]["topic"]["code"] for c in answer("patient-view", resources)}
    assert kinds == {"ldn-opioid-conflict", "ldn-review-due"}


def test_pn_patient_with_no_contraindication_gets_a_conformant_consider_ldn_card() -> None:
    cards = answer("patient-view", [fhir_patient(), condition("Pudendal neuralgia")])
    assert [c["source"]["topic"]["code"] for c in cards] == ["ldn-consider"]


def test_naltrexone_and_opioid_orders_get_conformant_cards_with_delete_suggestions() -> None:
    on_oxy = [fhir_patient(), med_request(OXY)]
    (card,) = answer("order-select", on_oxy, [draft("naltrexone 1.5 mg", "ldn1")])
    assert card["suggestions"][0]["actions"][0] == {
        "type": "delete",
        "description": "Remove the naltrexone order",
        "resourceId": "MedicationRequest/ldn1",
    }
    on_ldn = [fhir_patient(), med_request(LDN)]
    (card,) = answer("order-sign", on_ldn, [draft("tramadol 50 mg oral tablet", "tram1")])
    assert card["suggestions"][0]["actions"][0]["resourceId"] == "MedicationRequest/tram1"


# --------------------------------------------------------------------------- renal suggestions


def renal_card(product: str, dose_mg: float, per_day: int, kidney: float) -> dict[str, Any]:
    order = draft(product, "gaba", dose_mg=dose_mg, per_day=per_day)
    (card,) = answer("order-sign", [fhir_patient(), egfr(kidney)], [order])
    assert card["indicator"] == "warning"
    return card


def suggested(card: dict[str, Any]) -> tuple[float, int, str]:
    (suggestion,) = card["suggestions"]
    (action,) = suggestion["actions"]
    assert action["type"] == "update"
    dosage = action["resource"]["dosageInstruction"][0]
    return (
        dosage["doseAndRate"][0]["doseQuantity"]["value"],
        dosage["timing"]["repeat"]["frequency"],
        dosage["text"],
    )


def test_gabapentin_600_mg_tablet_three_times_a_day_at_egfr_25_becomes_600_mg_once_a_day() -> None:
    card = renal_card("gabapentin 600 MG Oral Tablet", 600, 3, 25)
    value, per_day, text = suggested(card)
    assert (value, per_day) == (600, 1)  # not 700 mg: no 600 mg tablet gives 700 mg
    assert text == "600 mg (1 × 600 mg) once a day"
    assert "700 mg/day maximum" in card["summary"]


def test_gabapentin_100_mg_capsules_at_egfr_25_are_ordered_as_seven_capsules() -> None:
    value, per_day, text = suggested(renal_card("gabapentin 100 MG Oral Capsule", 300, 3, 25))
    assert (value, per_day, text) == (700, 1, "700 mg (7 × 100 mg) once a day")


def test_gabapentin_800_mg_tablet_at_egfr_25_states_the_limit_without_an_unusable_order() -> None:
    card = renal_card("gabapentin 800 MG Oral Tablet", 800, 3, 25)
    (suggestion,) = card["suggestions"]
    assert [a["type"] for a in suggestion["actions"]] == ["delete"]
    assert suggestion["label"] == "Remove this order; prescribe at most 700 mg/day, once a day"
    assert "one unit of gabapentin 800 MG Oral Tablet (800 mg) once a day" in card["detail"]


def test_gabapentin_named_without_a_strength_gets_the_limit_in_words() -> None:
    card = renal_card("gabapentin", 600, 3, 25)
    assert [a["type"] for s in card["suggestions"] for a in s["actions"]] == ["delete"]
    assert "strength of gabapentin is not stated" in card["detail"]


def test_pregabalin_75_mg_capsule_twice_a_day_at_egfr_20_becomes_150_mg_once_a_day() -> None:
    value, per_day, text = suggested(renal_card("pregabalin 75 MG Oral Capsule", 150, 2, 20))
    assert (value, per_day, text) == (150, 1, "150 mg (2 × 75 mg) once a day")


# --------------------------------------------------------------------------- every card (property)

MEDS = [
    LDN,
    OXY,
    "tramadol 50 mg oral tablet",
    "naltrexone 50 mg tablet",
    "gabapentin 300 mg capsule",
    "sertraline 50 mg tablet",
    "buprenorphine 8 mg",
]
DRAFTS = [
    "naltrexone 1.5 mg",
    "naltrexone 4.5 mg capsule",
    "oxycodone 5 mg tablet",
    "gabapentin 600 MG Oral Tablet",
    "gabapentin 800 MG Oral Tablet",
    "gabapentin 100 mg capsule",
    "pregabalin 300 MG Oral Capsule",
    "gabapentin",
    "amoxicillin 500 mg capsule",
]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hook=st.sampled_from(["patient-view", "order-select", "order-sign"]),
    meds=st.lists(st.sampled_from(MEDS), max_size=3, unique=True),
    weeks=st.integers(min_value=0, max_value=30),
    pn=st.booleans(),
    kidney=st.one_of(st.none(), st.integers(min_value=5, max_value=120)),
    drafts=st.lists(
        st.tuples(
            st.sampled_from(DRAFTS),
            st.sampled_from([100, 300, 600, 1200]),
            st.integers(min_value=1, max_value=4),
        ),
        max_size=3,
    ),
)
def test_every_card_the_service_produces_follows_the_cds_hooks_2_0_card_rules(
    hook: str,
    meds: list[str],
    weeks: int,
    pn: bool,
    kidney: int | None,
    drafts: list[tuple[str, int, int]],
) -> None:
    resources = [fhir_patient()]
    resources += [med_request(m, authored=TODAY - timedelta(weeks=weeks)) for m in meds]
    resources += [condition("Pudendal neuralgia")] if pn else []
    resources += [egfr(kidney)] if kidney is not None else []
    orders = [draft(text, f"d{i}", dose_mg=mg, per_day=n) for i, (text, mg, n) in enumerate(drafts)]
    if hook != "patient-view" and not orders:
        orders = [draft("amoxicillin 500 mg capsule", "d0")]
    answer(hook, resources, orders if hook != "patient-view" else None)


def test_validate_card_catches_malformed_override_reasons() -> None:
    good = {"summary": "ok", "indicator": "info", "source": {"label": "ldncare"}}
    assert validate_card({**good, "overrideReasons": [{"code": "x", "display": "X"}]}) == []
    assert validate_card({**good, "overrideReasons": "x"})
    assert validate_card({**good, "overrideReasons": [{"display": "no code"}]})
    assert validate_card({**good, "overrideReasons": [{"code": "x"}]})
