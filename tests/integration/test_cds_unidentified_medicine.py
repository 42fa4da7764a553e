"""CDS Hooks: an active medicine whose drug the request does not identify is never dropped
(integrator review H1). Its ``Medication/{id}`` is read from fhirServer when it can be; else
the answer is 412 naming the reference. What the one reference resolver resolves (conditional
``code``, ``_id``, ``identifier``, a logical identifier) is checked as the drug it names.

The EHR's FHIR server is the real HTTP server of test_cds_missing_data on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from tests.integration.test_cds_missing_data import (
    LocalFhir,
    Reply,
    client,
    closed_port_url,
    fhir,  # noqa: F401  (the fixture)
    fhir_json,
    missing_keys,
    request,
)
from tests.integration.test_cdshooks import (
    cards_of,
    condition,
    fhir_patient,
    med_request,
    post,
    prefetch_for,
)

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
OXYCODONE: dict[str, Any] = {
    "resourceType": "Medication",
    "id": "oxy",
    "identifier": [{"system": "http://ehr.example.org/med", "value": "OXY5"}],
    "code": {
        "coding": [{"system": RXNORM, "code": "1049621", "display": "oxycodone hydrochloride 5 MG"}]
    },
}


def by_reference(reference: dict[str, Any], rid: str = "m1") -> dict[str, Any]:
    """An active order for the patient naming its drug only by ``reference``."""
    order = med_request("placeholder", rid=rid)
    del order["medicationCodeableConcept"]
    order["medicationReference"] = reference
    return order


def pn_prefetch(*orders: dict[str, Any], medications: tuple[dict[str, Any], ...] = ()) -> Any:
    prefetch = prefetch_for([fhir_patient(), condition("Pudendal neuralgia"), *orders])
    prefetch["medications"]["entry"] += [{"resource": m} for m in medications]
    return prefetch


def ldn_draft() -> dict[str, Any]:
    return med_request("naltrexone 1.5 mg capsule", rid="ldn-draft", status="draft")


def serving(resource: dict[str, Any]) -> Callable[[str], Reply | None]:
    def route(path: str) -> Reply | None:
        if path.split("?")[0] == f"Medication/{resource['id']}":
            return fhir_json(resource)
        return None

    return route


def test_pn_patient_view_with_an_unsent_medication_and_no_server_is_412_naming_it() -> None:
    prefetch = pn_prefetch(by_reference({"reference": "Medication/missing"}))
    body = request("patient-view", None, prefetch=prefetch)
    response = post(client(), "ldncare-patient-view", body)
    assert missing_keys(response) == ["medications"]
    (item,) = response.json()["missing"]
    assert item["query"] == "Medication/missing"
    assert "active medicine" in item["reason"]


def test_pn_patient_view_reads_the_unsent_medication_from_the_server_and_finds_the_opioid(
    fhir: Callable[..., LocalFhir],  # noqa: F811
) -> None:
    server = fhir(serving({**OXYCODONE, "id": "missing"}))
    prefetch = pn_prefetch(by_reference({"reference": "Medication/missing"}))
    body = request("patient-view", server.base, prefetch=prefetch)
    cards = cards_of(post(client(), "ldncare-patient-view", body))
    assert server.paths() == ["Medication/missing"]
    assert not any("Consider low-dose naltrexone" in c["summary"] for c in cards), cards


def test_pn_patient_view_with_a_server_answering_another_medication_is_412(
    fhir: Callable[..., LocalFhir],  # noqa: F811
) -> None:
    server = fhir(lambda path: fhir_json(OXYCODONE) if path.startswith("Medication/") else None)
    prefetch = pn_prefetch(by_reference({"reference": "Medication/missing"}))
    response = post(
        client(), "ldncare-patient-view", request("patient-view", server.base, prefetch=prefetch)
    )
    assert missing_keys(response) == ["medications"]
    assert response.json()["missing"][0]["query"] == "Medication/missing"


def test_naltrexone_ordered_for_a_patient_on_oxycodone_named_by_a_code_search_is_critical() -> None:
    ref = {"reference": f"Medication?code={RXNORM}|1049621"}
    prefetch = pn_prefetch(by_reference(ref), medications=(OXYCODONE,))
    body = request("order-select", closed_port_url(), prefetch=prefetch, drafts=[ldn_draft()])
    cards = cards_of(post(client(), "ldncare-order-select", body))
    assert [c["indicator"] for c in cards] == ["critical"]
    assert "oxycodone" in cards[0]["summary"]


def test_naltrexone_ordered_for_a_patient_on_oxycodone_named_by_id_or_identifier_is_critical() -> (
    None
):
    for ref in (
        {"reference": "Medication?_id=oxy"},
        {"identifier": {"system": "http://ehr.example.org/med", "value": "OXY5"}},
    ):
        prefetch = pn_prefetch(by_reference(ref), medications=(OXYCODONE,))
        body = request("order-select", closed_port_url(), prefetch=prefetch, drafts=[ldn_draft()])
        cards = cards_of(post(client(), "ldncare-order-select", body))
        assert [c["indicator"] for c in cards] == ["critical"], ref


def test_naltrexone_ordered_with_an_active_medicine_no_reference_form_identifies_is_412() -> None:
    cases = {
        f"Medication?code={RXNORM}|1049621": {"reference": f"Medication?code={RXNORM}|1049621"},
        "Medication?identifier=http://ehr.example.org/med|OXY5": {
            "identifier": {"system": "http://ehr.example.org/med", "value": "OXY5"}
        },
    }
    for named, ref in cases.items():
        prefetch = pn_prefetch(by_reference(ref))  # no Medication sent
        body = request("order-select", closed_port_url(), prefetch=prefetch, drafts=[ldn_draft()])
        response = post(client(), "ldncare-order-select", body)
        assert missing_keys(response) == ["medications"], named
        assert response.json()["missing"][0]["query"] == named


def test_an_order_ldncare_has_no_check_for_is_not_held_by_an_unidentified_medicine() -> None:
    prefetch = pn_prefetch(by_reference({"reference": "Medication/missing"}))
    draft = med_request("amoxicillin 500 mg capsule", rid="a1", status="draft")
    body = request("order-select", closed_port_url(), prefetch=prefetch, drafts=[draft])
    assert cards_of(post(client(), "ldncare-order-select", body)) == []


def test_a_cancelled_order_for_an_unidentified_medicine_needs_no_fetch() -> None:
    order = by_reference({"reference": "Medication/missing"})
    order["status"] = "cancelled"
    body = request("patient-view", closed_port_url(), prefetch=pn_prefetch(order))
    cards = cards_of(post(client(), "ldncare-patient-view", body))
    assert any("naltrexone" in c["summary"].lower() for c in cards), cards


def test_an_unidentified_medicine_of_another_patient_in_the_prefetch_does_not_hold_the_check() -> (
    None
):
    stray = by_reference({"reference": "Medication/missing"}, rid="stray")
    stray["subject"] = {"reference": "Patient/someone-else"}
    body = request("patient-view", None, prefetch=pn_prefetch(stray))
    cards = cards_of(post(client(), "ldncare-patient-view", body))
    assert any("naltrexone" in c["summary"].lower() for c in cards), cards


def test_pn_patient_view_with_an_unsent_medication_stopped_3_days_ago_is_412_naming_it() -> None:
    # It may have been methadone or buprenorphine, still inside its 14-day opioid-free interval.
    order = by_reference({"reference": "Medication/missing"})
    order["status"] = "stopped"
    stop = (date.today() - timedelta(days=3)).isoformat()
    order["dispenseRequest"] = {"validityPeriod": {"end": stop}}
    body = request("patient-view", None, prefetch=pn_prefetch(order))
    response = post(client(), "ldncare-patient-view", body)
    assert missing_keys(response) == ["medications"]
    (item,) = response.json()["missing"]
    assert item["query"] == "Medication/missing"


def test_a_completed_order_for_an_unidentified_medicine_with_no_stop_date_is_412() -> None:
    order = by_reference({"reference": "Medication/missing"})
    order["status"] = "completed"
    body = request("patient-view", None, prefetch=pn_prefetch(order))
    assert missing_keys(post(client(), "ldncare-patient-view", body)) == ["medications"]
