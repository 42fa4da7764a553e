"""CDS Hooks: the integrator/security review of issue #18 (items 1-5, 9 and 14).

Requests go through the real app; the EHR's FHIR server, where one is needed, is a real HTTP
server on 127.0.0.1 (``LocalFhir`` of test_cds_missing_data). Nothing connects elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.cdshooks.feedback import ITEM_MAX_BYTES, FeedbackLog
from ldncare.cdshooks.fetch import fill_template
from ldncare.cdshooks.hooks import read_drafts
from ldncare.core.course import active_naltrexone
from ldncare.core.patient import Coding, MedicationUse, Patient
from ldncare.evidence.loader import load_evidence
from ldncare.planning import context_for
from tests.integration.test_cds_missing_data import (
    LocalFhir,
    Reply,
    client,
    fhir,
    fhir_json,
    missing_keys,
    operation_outcome,
    oxycodone,
    request,
)
from tests.integration.test_cdshooks import (
    cards_of,
    fhir_patient,
    post,
    prefetch_for,
    searchset,
    token,
)

__all__ = ["fhir"]  # the fixture, imported for the tests below

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
OS, SIGN, PV = "ldncare-order-select", "ldncare-order-sign", "ldncare-patient-view"


def naltrexone_7243(rid: str = "ldn-draft", status: str = "draft") -> dict[str, Any]:
    """A naltrexone order coded only by RxNorm ingredient 7243 (what ldncare's export writes):
    no text, no display."""
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "authoredOn": (date.today() - timedelta(days=30)).isoformat(),
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "7243"}]},
    }


def by_reference(rid: str = "ldn-draft", ref: str = "Medication/nal-1") -> dict[str, Any]:
    draft = naltrexone_7243(rid)
    del draft["medicationCodeableConcept"]
    draft["medicationReference"] = {"reference": ref}
    return draft


NALTREXONE_MEDICATION = {
    "resourceType": "Medication",
    "id": "nal-1",
    "code": {"coding": [{"system": RXNORM, "code": "7243", "display": "naltrexone"}]},
}


def criticals(cards: list[dict[str, Any]]) -> list[str]:
    return [c["summary"] for c in cards if c["indicator"] == "critical"]


# ------------------------------------------------ 1. naltrexone coded only as RxNorm 7243


def test_naltrexone_ordered_by_rxnorm_7243_alone_for_a_patient_on_oxycodone_is_critical() -> None:
    body = request(
        "order-select",
        None,
        prefetch=prefetch_for([fhir_patient(), oxycodone()]),
        drafts=[naltrexone_7243()],
    )
    summaries = criticals(cards_of(post(client(), OS, body)))
    assert summaries and "oxycodone" in summaries[0]


def test_patient_on_naltrexone_coded_7243_and_oxycodone_gets_the_patient_view_critical() -> None:
    meds = [oxycodone(), naltrexone_7243("n1", status="active")]
    body = request("patient-view", None, prefetch=prefetch_for([fhir_patient(), *meds]))
    cards = [c for c in cards_of(post(client(), PV, body)) if c["indicator"] == "critical"]
    assert len(cards) == 1 and "both active" in cards[0]["summary"]
    assert "Active naltrexone: naltrexone (RxNorm 7243)." in cards[0]["detail"]


_CODES = st.sampled_from(["7243", "1049621", "7804", "1483744", "5640", "25480", "99999999"])


@settings(max_examples=80, deadline=None)
@given(
    code=_CODES,
    system=st.sampled_from([RXNORM, None]),
    display=st.sampled_from([None, "naltrexone", "oxycodone", "gabapentin"]),
    text=st.sampled_from([None, "LDN compounded", "Revia 50 mg", "home med"]),
)
def test_cds_classes_a_drug_as_naltrexone_exactly_when_the_core_plan_does(
    code: str, system: str | None, display: str | None, text: str | None
) -> None:
    """Whatever the coding: the core's naltrexone (the plan's ``active_naltrexone``) and the
    CDS draft reader agree, so a plan finding and a CDS card can never part ways."""
    coding: dict[str, Any] = {"code": code}
    if system:
        coding["system"] = system
    if display:
        coding["display"] = display
    concept: dict[str, Any] = {"coding": [coding]}
    if text:
        concept["text"] = text
    draft = {
        "resourceType": "MedicationRequest",
        "id": "d1",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": concept,
    }
    (read,) = read_drafts([draft])
    med = MedicationUse(
        name=text or display or code,
        codes=(Coding(system=system, code=code, display=display),),
        status="active",
    )
    patient = Patient(id="p1", birth_date=date(1975, 1, 1), sex="female", medications=(med,))
    ctx = context_for(patient, date.today())  # the plan's context
    assert ("naltrexone" in read.classes) == bool(active_naltrexone(ctx, load_evidence()))
    assert ("opioid" in read.classes) == bool(ctx.active_meds("opioid"))


# ------------------------------------------------ 2. medicationReference nobody sent


def test_naltrexone_draft_by_reference_is_fetched_from_the_fhir_server_and_checked(
    fhir: Callable[..., LocalFhir],
) -> None:
    def route(path: str) -> Reply | None:
        return fhir_json(NALTREXONE_MEDICATION) if path.startswith("Medication/nal-1") else None

    server = fhir(route)
    body = request(
        "order-select",
        server.base,
        prefetch=prefetch_for([fhir_patient(), oxycodone()]),
        drafts=[by_reference()],
    )
    summaries = criticals(cards_of(post(client(), OS, body)))
    assert summaries and "oxycodone" in summaries[0]
    assert server.paths() == ["Medication/nal-1"]  # the prefetch was complete: nothing else


def test_draft_by_reference_with_no_fhir_server_is_412_naming_the_medication() -> None:
    body = request(
        "order-sign", None, prefetch=prefetch_for([fhir_patient()]), drafts=[by_reference()]
    )
    response = post(client(), SIGN, body)
    assert missing_keys(response) == ["draftOrders"]
    (item,) = response.json()["missing"]
    assert item["query"] == "Medication/nal-1" and "medicationReference" in item["reason"]


def test_draft_by_reference_the_fhir_server_does_not_know_is_412(
    fhir: Callable[..., LocalFhir],
) -> None:
    def route(path: str) -> Reply | None:
        if path.startswith("Medication/"):
            return fhir_json(operation_outcome("not found"), 404)
        return None

    server = fhir(route)
    body = request("order-select", server.base, drafts=[by_reference()])
    response = post(client(), OS, body)
    assert "draftOrders" in missing_keys(response)
    assert "HTTP 404" in response.json()["missing"][-1]["reason"]


def test_draft_by_reference_the_fhir_server_answers_with_something_else_is_412(
    fhir: Callable[..., LocalFhir],
) -> None:
    server = fhir()  # every read of it: an empty searchset, not the Medication
    body = request(
        "order-select",
        server.base,
        prefetch=prefetch_for([fhir_patient(), oxycodone()]),
        drafts=[by_reference()],
    )
    response = post(client(), OS, body)
    assert missing_keys(response) == ["draftOrders"]
    assert "not that Medication" in response.json()["missing"][0]["reason"]


def test_draft_by_reference_resolved_inside_draft_orders_needs_no_fetch() -> None:
    body = request(
        "order-select",
        None,
        prefetch=prefetch_for([fhir_patient(), oxycodone()]),
        drafts=[by_reference()],
    )
    body["context"]["draftOrders"]["entry"].append({"resource": NALTREXONE_MEDICATION})
    assert criticals(cards_of(post(client(), OS, body)))


# ------------------------------------------------ 3. every shape of a failed prefetch

OO = operation_outcome("prefetch timed out")


@pytest.mark.parametrize(
    "value",
    [
        [OO],
        {"response": {"status": "500"}, "resource": OO},
        {"response": {"status": "200"}, "resource": OO},
        {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": OO}]},
        {
            "resourceType": "Bundle",
            "type": "batch-response",
            "entry": [{"response": {"status": "503"}}],
        },
    ],
    ids=["list", "wrapper-500", "wrapper-oo", "searchset-outcome", "entry-503"],
)
def test_a_failed_medications_prefetch_in_any_shape_is_412_without_a_server(value: Any) -> None:
    prefetch = prefetch_for([fhir_patient()]) | {"medications": value}
    body = request("order-select", None, prefetch=prefetch, drafts=[naltrexone_7243()])
    response = post(client(), OS, body)
    assert missing_keys(response) == ["medications"]
    assert "the EHR's prefetch failed" in response.json()["missing"][0]["reason"]


def test_a_failed_prefetch_in_a_list_is_fetched_and_the_opioid_found(
    fhir: Callable[..., LocalFhir],
) -> None:
    def route(path: str) -> Reply | None:
        return fhir_json(searchset([oxycodone()])) if path.startswith("MedicationRequest") else None

    server = fhir(route)
    prefetch = prefetch_for([fhir_patient()]) | {"medications": [OO]}
    body = request("order-select", server.base, prefetch=prefetch, drafts=[naltrexone_7243()])
    assert criticals(cards_of(post(client(), OS, body)))
    assert [p for p in server.paths() if p.startswith("MedicationRequest")] == ["MedicationRequest"]


def test_a_searchset_with_only_a_warning_outcome_is_data() -> None:
    warning = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "warning", "code": "informational", "diagnostics": "ignored _x"}],
    }
    medications = searchset([oxycodone()])
    medications["entry"].append({"resource": warning, "search": {"mode": "outcome"}})
    prefetch = prefetch_for([fhir_patient()]) | {"medications": medications}
    body = request("order-select", None, prefetch=prefetch, drafts=[naltrexone_7243()])
    assert criticals(cards_of(post(client(), OS, body)))


# ------------------------------------------------ 4. a prefetched search with more pages


def test_the_next_page_of_a_prefetched_search_is_read_and_its_opioid_found(
    fhir: Callable[..., LocalFhir],
) -> None:
    holder: list[LocalFhir] = []

    def route(path: str) -> Reply | None:
        if path.startswith("MedicationRequest") and "page=2" in path:
            return fhir_json(searchset([oxycodone()]))
        return None

    server = fhir(route)
    holder.append(server)
    first = searchset([]) | {
        "total": 120,
        "link": [{"relation": "next", "url": f"{server.base}/MedicationRequest?patient=p1&page=2"}],
    }
    prefetch = prefetch_for([fhir_patient()]) | {"medications": first}
    body = request("order-select", server.base, prefetch=prefetch, drafts=[naltrexone_7243()])
    assert criticals(cards_of(post(client(), OS, body)))
    assert server.paths() == ["MedicationRequest"]


def test_a_prefetched_search_with_more_pages_and_no_server_is_412() -> None:
    first = searchset([]) | {
        "link": [{"relation": "next", "url": "https://ehr.test/fhir/MedicationRequest?page=2"}]
    }
    prefetch = prefetch_for([fhir_patient()]) | {"medications": first}
    body = request("order-select", None, prefetch=prefetch, drafts=[naltrexone_7243()])
    response = post(client(), OS, body)
    assert missing_keys(response) == ["medications"]
    assert "one page of a longer search" in response.json()["missing"][0]["reason"]


# ------------------------------------------------ 5. malformed context or prefetch -> 400


def _bad(service: str, body: dict[str, Any], names: str) -> None:
    response = post(client(), service, body)
    assert response.status_code == 400, response.text
    assert names in response.json()["error"]


@pytest.mark.parametrize("service", [OS, SIGN])
def test_draft_orders_given_as_a_string_is_400_naming_it(service: str) -> None:
    hook = "order-select" if service == OS else "order-sign"
    body = request(hook, None, prefetch=prefetch_for([fhir_patient()]), drafts=[naltrexone_7243()])
    body["context"]["draftOrders"] = "abc"
    _bad(service, body, "context.draftOrders")


@pytest.mark.parametrize(
    "selections", [["ldn-draft"], ["MedicationRequest/other"], "MedicationRequest/ldn-draft"]
)
def test_selections_that_name_no_draft_are_400(selections: Any) -> None:
    body = request(
        "order-select", None, prefetch=prefetch_for([fhir_patient()]), drafts=[naltrexone_7243()]
    )
    body["context"]["selections"] = selections
    _bad(OS, body, "context.selections")


def test_a_naltrexone_draft_without_id_selected_by_its_full_url_is_checked() -> None:
    draft = naltrexone_7243()
    del draft["id"]
    body = request("order-select", None, prefetch=prefetch_for([fhir_patient(), oxycodone()]))
    body["context"]["draftOrders"] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": "urn:uuid:6b1f0c52-1f7e-4c1e-9a51-0d7b2b0c1a11", "resource": draft}],
    }
    body["context"]["selections"] = ["urn:uuid:6b1f0c52-1f7e-4c1e-9a51-0d7b2b0c1a11"]
    assert criticals(cards_of(post(client(), OS, body)))


@pytest.mark.parametrize("value", ["oops", 5, True, [1]])
def test_a_prefetch_value_that_is_no_resource_is_400_naming_the_key(value: Any) -> None:
    prefetch = prefetch_for([fhir_patient()]) | {"medications": value}
    body = request("order-select", None, prefetch=prefetch, drafts=[naltrexone_7243()])
    _bad(OS, body, "prefetch.medications")


# ------------------------------------------------ 9. feedback


def _feedback(items: list[Any], service: str = OS) -> Any:
    c = client()
    response = c.post(
        f"/cds-services/{service}/feedback",
        json={"feedback": items},
        headers={"Authorization": f"Bearer {token(service + '/feedback')}"},
    )
    return c, response


CARD = "3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c"
NOW = "2026-12-04T13:30:00Z"


def test_a_feedback_item_over_the_byte_limit_is_413_naming_the_limit() -> None:
    item = {
        "card": CARD,
        "outcome": "overridden",
        "outcomeTimestamp": NOW,
        "overrideReason": {"userComment": "x" * ITEM_MAX_BYTES},
    }
    c, response = _feedback([item])
    assert response.status_code == 413
    assert f"at most {ITEM_MAX_BYTES} bytes" in response.json()["error"]
    assert response.headers["access-control-allow-origin"] == "*"
    assert list(c.app.state.cds_feedback) == []


def test_a_client_service_field_never_overrides_the_path() -> None:
    item = {"card": CARD, "outcome": "accepted", "outcomeTimestamp": NOW, "service": "forged"}
    c, response = _feedback([item])
    assert response.status_code == 200
    (kept,) = list(c.app.state.cds_feedback)
    assert kept["service"] == OS


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("card", "c1", "the card's uuid"),
        ("card", CARD + "-x", "the card's uuid"),
        ("outcomeTimestamp", "not a time", "ISO 8601"),
        ("outcomeTimestamp", "2026-12-04", "ISO 8601"),
        ("outcomeTimestamp", "2026-13-04T10:00:00Z", "ISO 8601"),
    ],
)
def test_feedback_with_a_bad_card_uuid_or_timestamp_is_400(
    field: str, value: str, says: str
) -> None:
    item = {"card": CARD, "outcome": "accepted", "outcomeTimestamp": NOW, field: value}
    c, response = _feedback([item])
    assert response.status_code == 400
    assert says in response.json()["error"]
    assert list(c.app.state.cds_feedback) == []


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=ITEM_MAX_BYTES), min_size=1, max_size=80),
    max_bytes=st.integers(min_value=ITEM_MAX_BYTES, max_value=4 * ITEM_MAX_BYTES),
    maxlen=st.integers(min_value=1, max_value=20),
)
def test_the_feedback_log_never_holds_more_bytes_or_items_than_its_bounds(
    sizes: list[int], max_bytes: int, maxlen: int
) -> None:
    log = FeedbackLog(maxlen, max_bytes)
    for i, size in enumerate(sizes):
        log.add({"n": i}, size)
        assert log.bytes <= max_bytes and len(log) <= maxlen
        assert log[-1] == {"n": i}  # the newest is always kept
        assert log.bytes == sum(sizes[i - len(log) + 1 : i + 1])


# ------------------------------------------------ 14. URL, fhirServer, patientId, card text


def test_a_final_slash_on_the_service_url_is_the_same_service() -> None:
    meds = [oxycodone(), naltrexone_7243("n1", status="active")]
    body = request("patient-view", None, prefetch=prefetch_for([fhir_patient(), *meds]))
    c = client()
    response = c.post(
        f"/cds-services/{PV}/",
        json=body,
        headers={"Authorization": f"Bearer {token(PV + '/')}"},
    )
    assert criticals(cards_of(response))
    assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    ("server", "says"),
    [
        ("file:///etc/passwd", "is not an http(s) URL (its scheme is file:)"),
        ("{{fhirServerUrl}}", "is not an http(s) URL (it has no scheme)"),
        ("http://", "names no host"),
    ],
)
def test_a_fhir_server_that_is_no_http_url_is_named_precisely(server: str, says: str) -> None:
    body = request("patient-view", server)
    response = post(client(), PV, body)
    missing_keys(response)
    assert says in response.json()["missing"][0]["reason"]
    assert "names no fhirServer" not in response.text


def test_an_upper_case_http_scheme_is_an_http_fhir_server(fhir: Callable[..., LocalFhir]) -> None:
    server = fhir()
    body = request("patient-view", server.base.replace("http://", "HTTP://"))
    assert cards_of(post(client(), PV, body)) == []
    assert "MedicationRequest" in server.paths()


@pytest.mark.parametrize("pid", ["p1,p2", "x&patient=y", 123, "a" * 65, "p 1", ""])
def test_a_patient_id_that_is_no_fhir_id_is_400_naming_it(pid: Any) -> None:
    body = request("patient-view", None)
    body["context"]["patientId"] = pid
    _bad(PV, body, "context.patientId")


def test_a_patient_id_is_url_encoded_in_every_query() -> None:
    assert fill_template("X?patient={{context.patientId}}", {"patientId": "x&patient=y"}) == (
        "X?patient=x%26patient%3Dy"
    )
    assert fill_template("Patient/{{context.patientId}}", {"patientId": "Patient/a.b-1"}) == (
        "Patient/a.b-1"
    )


def test_an_opioid_coded_only_by_its_rxnorm_product_is_named_in_words_on_the_card() -> None:
    coded = oxycodone()
    coded["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": "1049621"}]}
    meds = [coded, naltrexone_7243("n1", status="active")]
    body = request("patient-view", None, prefetch=prefetch_for([fhir_patient(), *meds]))
    (summary,) = criticals(cards_of(post(client(), PV, body)))
    assert "Oxycodone Hydrochloride 5 MG Oral Tablet (RxNorm 1049621)" in summary
    assert not summary.rstrip().endswith("1049621")
