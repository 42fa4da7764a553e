"""CDS cards that open ldncare inside the EHR (issue #21): with SMART configured, every card on
a patient carries a ``smart`` link to ldncare's launch URL whose ``appContext`` names the card's
topic (CDS Hooks 2.0 Link); without SMART, cards are as before."""

from __future__ import annotations

import json

from tests.integration.test_cdshooks import (
    FHIR,
    cards_of,
    fhir_patient,
    hook_request,
    make_client,
    med_request,
    on_ldn_and_oxycodone,
    post,
)

LAUNCH = "https://ldncare.test/smart/launch"


def _smart_links(card: dict[str, object]) -> list[dict[str, str]]:
    links = card.get("links") or []
    assert isinstance(links, list)
    return [link for link in links if link.get("type") == "smart"]


def test_a_patient_on_ldn_and_oxycodone_gets_cards_that_launch_ldncare_on_their_topic() -> None:
    body = hook_request("patient-view", resources=on_ldn_and_oxycodone())
    cards = cards_of(
        post(
            make_client(smart_launch_url=LAUNCH, smart_issuers=[FHIR]), "ldncare-patient-view", body
        )
    )
    assert cards
    for card in cards:
        (link,) = _smart_links(card)
        assert link["url"] == LAUNCH
        context = json.loads(link["appContext"])
        assert context["topic"] == card["source"]["topic"]["code"]
        assert context["display"] == card["source"]["topic"]["display"]
        # The absolute link to the stored record stays first.
        assert card["links"][0]["type"] == "absolute"


def test_naltrexone_ordered_with_hydrocodone_on_record_card_launches_ldncare_too() -> None:
    resources = [fhir_patient(), med_request("hydrocodone 10 mg / acetaminophen 325 mg tablet")]
    draft = med_request("naltrexone 1.5 mg capsule", rid="ldn-draft", status="draft")
    body = hook_request("order-select", resources=resources, drafts=[draft])
    cards = cards_of(
        post(
            make_client(smart_launch_url=LAUNCH, smart_issuers=[FHIR]), "ldncare-order-select", body
        )
    )
    assert [c["indicator"] for c in cards] == ["critical"]
    (link,) = _smart_links(cards[0])
    assert json.loads(link["appContext"])["topic"] == cards[0]["source"]["topic"]["code"]


def test_without_smart_no_card_carries_a_smart_link() -> None:
    body = hook_request("patient-view", resources=on_ldn_and_oxycodone())
    cards = cards_of(post(make_client(), "ldncare-patient-view", body))
    assert cards
    assert all(not _smart_links(card) for card in cards)


def test_a_request_from_an_ehr_the_smart_launch_does_not_accept_gets_no_smart_link() -> None:
    """Integrator review L1: the launch would refuse a fhirServer outside
    LDNCARE_SMART_ALLOWED_ISSUERS, so its cards do not offer it."""
    body = hook_request("patient-view", resources=on_ldn_and_oxycodone())
    for issuers in ([], ["https://other-ehr.test/r4"]):
        client = make_client(smart_launch_url=LAUNCH, smart_issuers=issuers)
        cards = cards_of(post(client, "ldncare-patient-view", body))
        assert cards
        assert all(not _smart_links(card) for card in cards), issuers


def test_an_allowed_issuer_written_with_a_final_slash_still_gets_the_smart_link() -> None:
    body = hook_request("patient-view", resources=on_ldn_and_oxycodone())
    client = make_client(smart_launch_url=LAUNCH, smart_issuers=[FHIR + "/"])
    cards = cards_of(post(client, "ldncare-patient-view", body))
    assert cards and all(_smart_links(card) for card in cards)
