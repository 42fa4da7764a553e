"""CDS Hooks 2.0 service: discovery, the three hooks (with prefetch and with the FHIR-server
fallback against a fake server), JWT, CORS, malformed requests, and every real request under
tests/fixtures/cds-hooks answered without a 500."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from ldncare.cdshooks import CdsSettings, create_cds_app, hooks, validate_card, validate_response
from ldncare.cdshooks.fetch import PATIENT_TEMPLATES, resources_in
from tests.shared_data import CDS_HOOKS

DATA = CDS_HOOKS
FHIR = "https://fhir.test/r4"
ISSUER = "https://ehr.test"
SECRET = "test-secret-that-is-long-enough-for-hs256"
BASE = "http://testserver"
TODAY = date.today()

# --------------------------------------------------------------------------- FHIR factories


def fhir_patient(
    pid: str = "p1", birth: str = "1975-04-02", gender: str = "female"
) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": birth, "gender": gender}


def condition(text: str, pid: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": f"c-{uuid.uuid4().hex[:8]}",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"text": text},
        "subject": {"reference": f"Patient/{pid}"},
    }


def med_request(
    text: str,
    *,
    rid: str | None = None,
    status: str = "active",
    authored: date | None = None,
    dose_mg: float | None = None,
    per_day: int = 1,
    pid: str = "p1",
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid or f"m-{uuid.uuid4().hex[:8]}",
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {"text": text},
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": (authored or TODAY).isoformat(),
    }
    if dose_mg is not None:
        resource["dosageInstruction"] = [
            {
                "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [
                    {
                        "doseQuantity": {
                            "value": dose_mg,
                            "unit": "mg",
                            "system": "http://unitsofmeasure.org",
                            "code": "mg",
                        }
                    }
                ],
            }
        ]
    return resource


def egfr(value: float, pid: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o-{uuid.uuid4().hex[:8]}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "33914-3"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": (TODAY - timedelta(days=10)).isoformat(),
        "valueQuantity": {"value": value, "unit": "mL/min/{1.73_m2}"},
    }


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def prefetch_for(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """Prefetch under our own keys, as an EHR honouring our discovery would send it."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(r)
    patient = by_type.get("Patient", [None])[0]
    return {
        "patient": patient,
        "conditions": searchset(by_type.get("Condition", [])),
        "medications": searchset(by_type.get("MedicationRequest", [])),
        "statements": searchset([]),
        "allergies": searchset([]),
        "labs": searchset(by_type.get("Observation", [])),
        "weight": searchset([]),
    }


def hook_request(
    hook: str,
    *,
    resources: list[dict[str, Any]] | None = None,
    drafts: list[dict[str, Any]] | None = None,
    with_prefetch: bool = True,
    pid: str = "p1",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": FHIR,
        "fhirAuthorization": {
            "access_token": "fhir-token-123",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/*.read",
            "subject": "ldncare",
        },
        "context": {"userId": "Practitioner/1", "patientId": pid},
    }
    if drafts is not None:
        body["context"]["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": d} for d in drafts],
        }
        if hook == "order-select":
            body["context"]["selections"] = [f"MedicationRequest/{d['id']}" for d in drafts]
    if with_prefetch and resources is not None:
        body["prefetch"] = prefetch_for(resources)
    return body


# --------------------------------------------------------------------------- fake FHIR server


class FakeFhir:
    """A tiny FHIR server: read by id and search by patient, for the fallback path."""

    def __init__(self, resources: list[dict[str, Any]] | None = None) -> None:
        self.resources = resources or []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not str(request.url).startswith(FHIR):
            return httpx.Response(404)
        path = request.url.path.removeprefix("/r4/")
        rtype, _, rid = path.partition("/")
        if rid:
            for r in self.resources:
                if r["resourceType"] == rtype and r["id"] == rid:
                    return httpx.Response(200, json=r)
            return httpx.Response(404, json={"resourceType": "OperationOutcome"})
        found = [r for r in self.resources if r["resourceType"] == rtype]
        return httpx.Response(200, json=searchset(found))


def make_client(
    handler: Callable[[httpx.Request], httpx.Response] | None = None,
    **settings: Any,
) -> TestClient:
    config = CdsSettings(
        trusted_issuers={ISSUER: {"hs256_secret": SECRET}},
        app_url="https://ldncare.test",
        **settings,
    )
    transport = httpx.MockTransport(handler or FakeFhir())
    return TestClient(create_cds_app(config, transport=transport))


def token(service: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "ehr-client",
        "aud": f"{BASE}/cds-services/{service}",
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET, "HS256")


def post(client: TestClient, service: str, body: Any, **claims: Any) -> httpx.Response:
    return client.post(
        f"/cds-services/{service}",
        json=body,
        headers={"Authorization": f"Bearer {token(service, **claims)}"},
    )


def cards_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert validate_response(body) == []
    return list(body["cards"])


# --------------------------------------------------------------------------- patients


def on_ldn_and_oxycodone() -> list[dict[str, Any]]:
    return [
        fhir_patient(),
        condition("Pudendal neuralgia"),
        med_request("naltrexone 4.5 mg capsule (compounded)", authored=TODAY - timedelta(weeks=10)),
        med_request("oxycodone hydrochloride 5 mg oral tablet"),
    ]


def pn_without_contraindications() -> list[dict[str, Any]]:
    return [fhir_patient(), condition("Pudendal neuralgia")]


# --------------------------------------------------------------------------- discovery, CORS


def test_discovery_lists_three_services_with_prefetch() -> None:
    response = make_client().get("/cds-services")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    services = {s["id"]: s for s in response.json()["services"]}
    assert {s: services[s]["hook"] for s in services} == {
        "ldncare-patient-view": "patient-view",
        "ldncare-order-select": "order-select",
        "ldncare-order-sign": "order-sign",
    }
    for s in services.values():
        assert s["title"] and s["description"]
        assert s["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert s["prefetch"]["conditions"] == "Condition?patient={{context.patientId}}"
        # stopped and completed orders too: the opioid washout needs them
        assert "status=active,on-hold,unknown,stopped,completed" in s["prefetch"]["medications"]
        assert "http://loinc.org|33914-3" in s["prefetch"]["labs"]


def test_cors_preflight_allows_authorization_header() -> None:
    response = make_client().options(
        "/cds-services/ldncare-order-sign",
        headers={"Origin": "https://ehr.test", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] == "*"
    assert "Authorization" in response.headers["access-control-allow-headers"]
    assert "Content-Type" in response.headers["access-control-allow-headers"]


# --------------------------------------------------------------------------- patient-view


def test_patient_on_ldn_and_opioid_gets_critical_card_and_review_due() -> None:
    body = hook_request("patient-view", resources=on_ldn_and_oxycodone())
    cards = cards_of(post(make_client(), "ldncare-patient-view", body))
    indicators = sorted(c["indicator"] for c in cards)
    assert indicators == ["critical", "info"]
    critical = next(c for c in cards if c["indicator"] == "critical")
    assert "oxycodone" in critical["summary"].lower()
    assert "ldn.opioid.active" in critical["detail"]
    assert critical["links"][0]["url"] == "https://ldncare.test/patients/by-external/p1"
    review = next(c for c in cards if c["indicator"] == "info")
    assert review["summary"].startswith("LDN review due")
    assert "10 weeks" in review["summary"]


def test_patient_view_without_prefetch_fetches_from_fhir_server() -> None:
    fake = FakeFhir(on_ldn_and_oxycodone())
    body = hook_request("patient-view", resources=None, with_prefetch=False)
    cards = cards_of(post(make_client(fake), "ldncare-patient-view", body))
    assert any(c["indicator"] == "critical" for c in cards)
    assert fake.requests, "the fallback never queried the FHIR server"
    assert all(r.headers["authorization"] == "Bearer fhir-token-123" for r in fake.requests)
    assert any(r.url.path == "/r4/Patient/p1" for r in fake.requests)


def test_ldn_started_four_weeks_ago_is_not_due_for_review() -> None:
    resources = [
        fhir_patient(),
        med_request("naltrexone 3 mg capsule", authored=TODAY - timedelta(weeks=4)),
    ]
    cards = cards_of(
        post(
            make_client(), "ldncare-patient-view", hook_request("patient-view", resources=resources)
        )
    )
    assert not any(c["summary"].startswith("LDN review due") for c in cards)


def test_naltrexone_50mg_is_not_reviewed_as_ldn() -> None:
    resources = [
        fhir_patient(),
        med_request(
            "naltrexone hydrochloride 50 mg oral tablet", authored=TODAY - timedelta(weeks=20)
        ),
    ]
    cards = cards_of(
        post(
            make_client(), "ldncare-patient-view", hook_request("patient-view", resources=resources)
        )
    )
    assert cards == []


def test_pn_patient_without_contraindications_gets_consider_ldn_card() -> None:
    body = hook_request("patient-view", resources=pn_without_contraindications())
    cards = cards_of(post(make_client(), "ldncare-patient-view", body))
    assert len(cards) == 1
    assert cards[0]["indicator"] == "info"
    assert "Consider low-dose naltrexone" in cards[0]["summary"]
    assert cards[0]["source"]["label"] == "ldncare"


def test_pn_patient_on_tramadol_gets_no_consider_ldn_card() -> None:
    resources = [*pn_without_contraindications(), med_request("tramadol 50 mg oral tablet")]
    cards = cards_of(
        post(
            make_client(), "ldncare-patient-view", hook_request("patient-view", resources=resources)
        )
    )
    assert cards == []


# --------------------------------------------------------------------------- order hooks


def test_naltrexone_ordered_with_active_opioid_is_critical() -> None:
    resources = [fhir_patient(), med_request("hydrocodone 10 mg / acetaminophen 325 mg tablet")]
    draft = med_request("naltrexone 1.5 mg capsule", rid="ldn-draft", status="draft")
    body = hook_request("order-select", resources=resources, drafts=[draft])
    cards = cards_of(post(make_client(), "ldncare-order-select", body))
    assert [c["indicator"] for c in cards] == ["critical"]
    card = cards[0]
    assert "hydrocodone" in card["summary"].lower()
    assert card["selectionBehavior"] == "at-most-one"
    action = card["suggestions"][0]["actions"][0]
    assert action == {
        "type": "delete",
        "description": "Remove the naltrexone order",
        "resourceId": "MedicationRequest/ldn-draft",
    }


def test_naltrexone_ordered_without_opioid_gives_no_card() -> None:
    draft = med_request("naltrexone 1.5 mg capsule", rid="ldn-draft", status="draft")
    body = hook_request("order-sign", resources=pn_without_contraindications(), drafts=[draft])
    assert cards_of(post(make_client(), "ldncare-order-sign", body)) == []


def test_opioid_ordered_for_patient_on_ldn_is_critical_via_fhir_fallback() -> None:
    fake = FakeFhir(
        [
            fhir_patient(),
            med_request("naltrexone 4.5 mg capsule", authored=TODAY - timedelta(weeks=2)),
        ]
    )
    draft = med_request("tramadol 50 mg oral tablet", rid="tram", status="draft")
    body = hook_request("order-sign", drafts=[draft], with_prefetch=False)
    cards = cards_of(post(make_client(fake), "ldncare-order-sign", body))
    assert [c["indicator"] for c in cards] == ["critical"]
    assert "tramadol" in cards[0]["summary"].lower()
    assert cards[0]["suggestions"][0]["actions"][0]["resourceId"] == "MedicationRequest/tram"


def test_order_of_nothing_ldncare_checks_fetches_no_record() -> None:
    """An amoxicillin order on a patient on LDN and oxycodone: no card, no FHIR round trip."""
    fake = FakeFhir([fhir_patient(), *on_ldn_and_oxycodone()[1:]])
    draft = med_request("amoxicillin 500 mg oral capsule", rid="amox", status="draft")
    for service in ("ldncare-order-select", "ldncare-order-sign"):
        body = hook_request(service.removeprefix("ldncare-"), drafts=[draft], with_prefetch=False)
        assert cards_of(post(make_client(fake), service, body)) == []
    assert fake.requests == []
    # The same request with an opioid order does fetch the record, and warns.
    opioid = med_request("tramadol 50 mg oral tablet", rid="tram", status="draft")
    body = hook_request("order-select", drafts=[draft, opioid], with_prefetch=False)
    cards = cards_of(post(make_client(fake), "ldncare-order-select", body))
    assert [c["indicator"] for c in cards] == ["critical"]
    assert fake.requests


def test_order_cards_read_no_patient_for_an_order_of_nothing_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unread(*args: object) -> object:
        raise AssertionError("the patient was read for an order ldncare does not check")

    monkeypatch.setattr(hooks, "build_patient", unread)
    draft = med_request("amoxicillin 500 mg oral capsule", rid="amox", status="draft")
    body = hook_request("order-sign", resources=on_ldn_and_oxycodone(), drafts=[draft])
    call = hooks.HookCall(
        hook="order-sign",
        patient_id="p1",
        context=body["context"],
        resources=tuple(r for v in body["prefetch"].values() for r in resources_in(v)),
        as_of=TODAY,
        app_url="https://ldncare.test",
    )
    assert hooks.order_cards(call) == []
    assert not hooks.orders_to_check("order-sign", body["context"])


def test_opioid_drafted_alongside_counts_against_the_selected_naltrexone() -> None:
    naltrexone = med_request("naltrexone 4.5 mg capsule", rid="nal", status="draft")
    oxycodone = med_request("oxycodone 5 mg oral tablet", rid="oxy", status="draft")
    body = hook_request("order-select", resources=[fhir_patient()], drafts=[naltrexone, oxycodone])
    body["context"]["selections"] = ["MedicationRequest/nal"]
    cards = cards_of(post(make_client(), "ldncare-order-select", body))
    assert [c["indicator"] for c in cards] == ["critical"]
    assert "oxycodone" in cards[0]["summary"]
    assert cards[0]["suggestions"][0]["actions"][0]["resourceId"] == "MedicationRequest/nal"
    # The other way round: the opioid is selected, naltrexone is drafted alongside.
    body["context"]["selections"] = ["MedicationRequest/oxy"]
    cards = cards_of(post(make_client(), "ldncare-order-select", body))
    assert [c["summary"] for c in cards] == [
        "Opioid ordered (oxycodone 5 mg oral tablet) together with a naltrexone order"
    ]
    assert "Naltrexone ordered alongside: naltrexone 4.5 mg capsule." in cards[0]["detail"]


def test_dstu2_medication_order_selection_is_checked() -> None:
    naltrexone = med_request("naltrexone 4.5 mg capsule", rid="nal", status="draft")
    naltrexone["resourceType"] = "MedicationOrder"
    resources = [fhir_patient(), med_request("oxycodone hydrochloride 5 mg oral tablet")]
    body = hook_request("order-select", resources=resources, drafts=[naltrexone])
    body["context"]["selections"] = ["MedicationOrder/nal"]
    cards = cards_of(post(make_client(), "ldncare-order-select", body))
    assert [c["indicator"] for c in cards] == ["critical"]


def test_selections_naming_no_medication_order_check_nothing() -> None:
    gabapentin = med_request(
        "gabapentin 600 mg oral capsule", rid="gaba", status="draft", dose_mg=600, per_day=3
    )
    body = hook_request("order-select", resources=[fhir_patient(), egfr(20)], drafts=[gabapentin])
    # The lab order is a draft too (CDS Hooks 2.0: selections reference draftOrders).
    lab = {"resourceType": "ServiceRequest", "id": "lab-1", "status": "draft", "intent": "order"}
    body["context"]["draftOrders"]["entry"].append({"resource": lab})
    body["context"]["selections"] = ["ServiceRequest/lab-1"]
    assert cards_of(post(make_client(), "ldncare-order-select", body)) == []
    body["context"]["selections"] = ["MedicationRequest/gaba"]
    assert [
        c["indicator"] for c in cards_of(post(make_client(), "ldncare-order-select", body))
    ] == ["warning"]


def test_naltrexone_named_by_medication_reference_is_recognised() -> None:
    medication = {
        "resourceType": "Medication",
        "id": "med-nal",
        "code": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "7243",
                    "display": "naltrexone",
                }
            ]
        },
    }
    draft = med_request("unused", rid="nal", status="draft")
    del draft["medicationCodeableConcept"]
    draft["medicationReference"] = {"reference": "Medication/med-nal"}
    resources = [fhir_patient(), med_request("oxycodone hydrochloride 5 mg oral tablet")]
    # The Medication may come with the drafts or in the prefetch.
    body = hook_request("order-sign", resources=resources, drafts=[draft, medication])
    cards = cards_of(post(make_client(), "ldncare-order-sign", body))
    assert [c["indicator"] for c in cards] == ["critical"]
    body = hook_request("order-sign", resources=resources, drafts=[draft])
    body["prefetch"]["medications"]["entry"].append({"resource": medication})
    assert [c["indicator"] for c in cards_of(post(make_client(), "ldncare-order-sign", body))] == [
        "critical"
    ]


def test_opioid_stopped_three_days_ago_by_its_bounds_period_blocks_naltrexone() -> None:
    stopped = med_request("oxycodone 5 mg oral tablet", status="stopped", dose_mg=5, per_day=4)
    stopped["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {
        "start": (TODAY - timedelta(days=30)).isoformat(),
        "end": (TODAY - timedelta(days=3)).isoformat(),
    }
    draft = med_request("naltrexone 4.5 mg capsule", rid="nal", status="draft")
    body = hook_request("order-sign", resources=[fhir_patient(), stopped], drafts=[draft])
    cards = cards_of(post(make_client(), "ldncare-order-sign", body))
    assert [c["indicator"] for c in cards] == ["critical"]
    assert "stopped on" in cards[0]["summary"]


def test_resources_about_another_patient_are_not_read() -> None:
    elsewhere = [condition("Pudendal neuralgia", pid="someone-else")]
    body = hook_request("patient-view", resources=[fhir_patient(), *elsewhere])
    assert cards_of(post(make_client(), "ldncare-patient-view", body)) == []
    body = hook_request("patient-view", resources=pn_without_contraindications())
    assert [
        c["indicator"] for c in cards_of(post(make_client(), "ldncare-patient-view", body))
    ] == ["info"]
    # Someone else's opioid does not block this patient's naltrexone order.
    draft = med_request("naltrexone 4.5 mg capsule", rid="nal", status="draft")
    other = med_request("oxycodone 5 mg oral tablet", pid="someone-else")
    body = hook_request("order-sign", resources=[fhir_patient(), other], drafts=[draft])
    assert cards_of(post(make_client(), "ldncare-order-sign", body)) == []


@pytest.mark.parametrize(
    ("timing", "daily"),
    [
        ({"code": {"coding": [{"code": "TID"}]}}, Decimal(1800)),
        ({"code": {"coding": [{"code": "BID"}]}, "repeat": {}}, Decimal(1200)),
        ({"repeat": {"timeOfDay": ["08:00:00", "20:00:00"]}}, Decimal(1200)),
        ({"repeat": {"when": ["MORN", "AFT", "EVE"]}}, Decimal(1800)),
        ({"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}}, Decimal(1800)),
        ({"repeat": {"period": 8, "periodUnit": "h"}}, Decimal(1800)),  # once per period
        ({"repeat": {"period": 2, "periodUnit": "d"}}, Decimal(300)),
        (
            {"code": {"coding": [{"code": "TID"}]}, "repeat": {"period": 12, "periodUnit": "h"}},
            Decimal(1200),
        ),
        ({"code": {"coding": [{"code": "WK"}]}}, None),  # weekly: no daily dose to check
        ({"code": {"text": "as directed"}}, None),
        ({}, Decimal(600)),
    ],
)
def test_ordered_daily_dose_reads_timing_codes_and_events(
    timing: dict[str, Any], daily: Decimal | None
) -> None:
    order = med_request("gabapentin 600 mg capsule", status="draft", dose_mg=600)
    order["dosageInstruction"][0]["timing"] = timing
    assert hooks.ordered_daily_mg(order) == daily


def test_gabapentin_above_renal_band_gets_warning_with_a_dose_the_capsule_gives() -> None:
    resources = [fhir_patient(), egfr(25)]
    draft = med_request(
        "gabapentin 600 mg oral capsule", rid="gaba", status="draft", dose_mg=600, per_day=3
    )
    body = hook_request("order-sign", resources=resources, drafts=[draft])
    cards = cards_of(post(make_client(), "ldncare-order-sign", body))
    assert [c["indicator"] for c in cards] == ["warning"]
    card = cards[0]
    assert "1800 mg/day" in card["summary"] and "700 mg/day" in card["summary"]
    revised = card["suggestions"][0]["actions"][0]["resource"]
    assert card["suggestions"][0]["actions"][0]["type"] == "update"
    dose = revised["dosageInstruction"][0]
    # 700 mg/day is the band's maximum, but 600 mg capsules give 600 mg, not 700 mg.
    assert dose["doseAndRate"][0]["doseQuantity"]["value"] == 600
    assert dose["timing"]["repeat"]["frequency"] == 1


def test_gabapentin_within_renal_band_gives_no_card() -> None:
    resources = [fhir_patient(), egfr(25)]
    draft = med_request("gabapentin 300 mg oral capsule", rid="gaba", status="draft", dose_mg=300)
    body = hook_request("order-sign", resources=resources, drafts=[draft])
    assert cards_of(post(make_client(), "ldncare-order-sign", body)) == []


def test_fhir_server_down_answers_412_naming_what_is_missing() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    draft = med_request("tramadol 50 mg oral tablet", rid="tram", status="draft")
    body = hook_request("order-sign", drafts=[draft], with_prefetch=False)
    response = post(make_client(down), "ldncare-order-sign", body)
    # Not 200 {"cards": []}: the EHR must not read "not checked" as "checked, no conflict".
    assert response.status_code == 412, response.text
    missing = response.json()["missing"]
    assert [m["prefetch"] for m in missing] == list(PATIENT_TEMPLATES)
    assert all("ConnectError" in m["reason"] for m in missing)
    assert "medications: the FHIR server could not be read" in response.json()["error"]


# --------------------------------------------------------------------------- JWT


def test_missing_jwt_is_401_with_message() -> None:
    body = hook_request("patient-view", resources=pn_without_contraindications())
    response = make_client().post("/cds-services/ldncare-patient-view", json=body)
    assert response.status_code == 401
    assert "Bearer" in response.json()["error"]
    assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://evil.test"}, "not trusted"),
        ({"aud": f"{BASE}/cds-services/ldncare-order-sign"}, "audience"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 3700}, "expired"),
        ({"jti": None}, "jti"),
        ({"jti": ""}, "jti"),  # integrator review L1: an empty id protects against no replay
        ({"jti": "   "}, "jti"),
    ],
)
def test_bad_jwt_is_401(claims: dict[str, Any], reason: str) -> None:
    body = hook_request("patient-view", resources=pn_without_contraindications())
    response = post(make_client(), "ldncare-patient-view", body, **claims)
    assert response.status_code == 401
    assert reason in response.json()["error"]


def test_jwt_with_wrong_signature_is_401() -> None:
    body = hook_request("patient-view", resources=pn_without_contraindications())
    now = int(time.time())
    forged = jwt.encode(
        {"iss": ISSUER, "aud": f"{BASE}/cds-services/ldncare-patient-view", "exp": now + 60,
         "iat": now, "jti": "x"},
        "another-secret-that-is-long-enough-for-hs256", "HS256",
    )  # fmt: skip
    response = make_client().post(
        "/cds-services/ldncare-patient-view",
        json=body,
        headers={"Authorization": f"Bearer {forged}"},
    )
    assert response.status_code == 401


def test_replayed_jti_is_401() -> None:
    client = make_client()
    body = hook_request("patient-view", resources=pn_without_contraindications())
    same = token("ldncare-patient-view")
    headers = {"Authorization": f"Bearer {same}"}
    assert (
        client.post("/cds-services/ldncare-patient-view", json=body, headers=headers).status_code
        == 200
    )
    again = client.post("/cds-services/ldncare-patient-view", json=body, headers=headers)
    assert again.status_code == 401
    assert "already used" in again.json()["error"]


def test_rs384_jwt_verified_with_issuer_jwks_url() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "alg": "RS384", "use": "sig"})
    fake = FakeFhir()

    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) == "https://ehr.test/jwks.json":
            return httpx.Response(200, json={"keys": [jwk]})
        return fake(request)

    config = CdsSettings(trusted_issuers={ISSUER: "https://ehr.test/jwks.json"})
    client = TestClient(create_cds_app(config, transport=httpx.MockTransport(handler)))
    now = int(time.time())
    signed = jwt.encode(
        {"iss": ISSUER, "aud": f"{BASE}/cds-services/ldncare-patient-view", "exp": now + 300,
         "iat": now, "jti": str(uuid.uuid4())},
        key, "RS384", headers={"kid": "k1"},
    )  # fmt: skip
    body = hook_request("patient-view", resources=pn_without_contraindications())
    ok = client.post(
        "/cds-services/ldncare-patient-view",
        json=body,
        headers={"Authorization": f"Bearer {signed}"},
    )
    assert ok.status_code == 200, ok.text


def _jwks_client(keys: list[dict[str, Any]]) -> TestClient:
    config = CdsSettings(trusted_issuers={ISSUER: {"keys": keys}})
    return TestClient(create_cds_app(config))


def _signed(key: Any, alg: str, headers: dict[str, Any] | None = None, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": f"{BASE}/cds-services/ldncare-patient-view",
               "exp": now + 300, "iat": now, "jti": str(uuid.uuid4()), **claims}  # fmt: skip
    return jwt.encode(payload, key, alg, headers=headers)


def _view(client: TestClient, token: str) -> httpx.Response:
    body = hook_request("patient-view", resources=pn_without_contraindications())
    return client.post(
        "/cds-services/ldncare-patient-view",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


def test_es256_token_against_an_rsa_key_is_401_not_500() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    jwk["kid"] = "k1"
    forged = _signed(ec.generate_private_key(ec.SECP256R1()), "ES256", {"kid": "k1"})
    response = _view(_jwks_client([jwk]), forged)
    assert response.status_code == 401
    assert "no EC key 'k1' for ES256" in response.json()["error"]
    assert response.headers["access-control-allow-origin"] == "*"


def test_token_without_kid_is_checked_against_every_key_of_its_type() -> None:
    first, second = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in "ab")
    jwks = []
    for i, key in enumerate((first, second)):
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        jwk["kid"] = f"k{i}"
        jwks.append(jwk)
    client = _jwks_client(jwks)
    assert _view(client, _signed(second, "RS256")).status_code == 200
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = _view(client, _signed(stranger, "RS256"))
    assert refused.status_code == 401
    assert "Signature verification failed" in refused.json()["error"]
    # Signed by the second key but expired: the reason is the expiry, not the first key.
    now = int(time.time())
    expired = _view(client, _signed(second, "RS256", exp=now - 3600, iat=now - 3700))
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]


def test_inline_jwks_without_a_keys_list_is_401_not_500() -> None:
    client = TestClient(create_cds_app(CdsSettings(trusted_issuers={ISSUER: {"keys": None}})))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = _view(client, _signed(key, "RS256", {"kid": "k1"}))
    assert response.status_code == 401
    assert "no 'keys' list" in response.json()["error"]


def test_token_living_over_five_minutes_is_401() -> None:
    now = int(time.time())
    response = post(
        make_client(),
        "ldncare-patient-view",
        hook_request("patient-view", resources=pn_without_contraindications()),
        exp=now + 600,
        iat=now,
    )
    assert response.status_code == 401
    assert "over 300 s" in response.json()["error"]


def test_expired_token_ids_are_forgotten_at_most_once_a_second() -> None:
    import asyncio

    from ldncare.cdshooks.jwt_check import JwtVerifier

    verifier = JwtVerifier(CdsSettings(trusted_issuers={ISSUER: {"hs256_secret": SECRET}}))
    audience = f"{BASE}/cds-services/ldncare-patient-view"
    asyncio.run(verifier.verify(f"Bearer {token('ldncare-patient-view')}", audience))
    now = time.time()
    verifier._forget_expired(now + 0.5)  # within the second: not even looked at
    assert len(verifier._seen_jti) == 1
    verifier._forget_expired(now + 2)  # looked at: the token is still valid
    assert len(verifier._seen_jti) == 1
    verifier._forget_expired(now + 300 + 61 + 5)  # past exp + leeway
    assert verifier._seen_jti == {}


def test_demo_mode_needs_no_jwt() -> None:
    client = make_client(demo=True)
    body = hook_request("patient-view", resources=pn_without_contraindications())
    assert client.post("/cds-services/ldncare-patient-view", json=body).status_code == 200


# --------------------------------------------------------------------------- malformed, feedback


def test_invalid_json_is_400_with_message() -> None:
    response = make_client(demo=True).post(
        "/cds-services/ldncare-order-sign",
        content=b'{"hook": "order-sign",',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


@pytest.mark.parametrize("missing", ["hook", "hookInstance", "context"])
def test_missing_required_field_is_400(missing: str) -> None:
    body = hook_request("order-sign", drafts=[])
    del body[missing]
    response = make_client(demo=True).post("/cds-services/ldncare-order-sign", json=body)
    assert response.status_code == 400
    assert missing in response.json()["error"]


def test_wrong_hook_for_service_is_400_and_unknown_service_404() -> None:
    client = make_client(demo=True)
    body = hook_request("patient-view", resources=pn_without_contraindications())
    assert client.post("/cds-services/ldncare-order-sign", json=body).status_code == 400
    assert client.post("/cds-services/no-such-service", json=body).status_code == 404


def test_unreadable_resources_never_give_500() -> None:
    body = hook_request("patient-view", resources=pn_without_contraindications())
    body["prefetch"]["medications"] = {
        "resourceType": "Bundle",
        "entry": [{"resource": {"resourceType": "MedicationRequest", "status": 7}}],
    }
    body["prefetch"]["patient"] = {"resourceType": "Patient", "id": "p1", "gender": "robot"}
    response = make_client(demo=True).post("/cds-services/ldncare-patient-view", json=body)
    cards_of(response)


def test_feedback_is_stored() -> None:
    client = make_client()
    feedback = {
        "feedback": [
            {"card": str(uuid.uuid4()), "outcome": "accepted",
             "acceptedSuggestions": [{"id": str(uuid.uuid4())}],
             "outcomeTimestamp": "2026-01-01T10:00:00Z"}
        ]
    }  # fmt: skip
    url = "/cds-services/ldncare-order-sign/feedback"
    response = client.post(
        url,
        json=feedback,
        headers={"Authorization": f"Bearer {token('ldncare-order-sign/feedback')}"},
    )
    assert response.status_code == 200
    assert client.app.state.cds_feedback[0]["outcome"] == "accepted"  # type: ignore[attr-defined]
    auth = {"Authorization": f"Bearer {token('ldncare-order-sign/feedback')}"}
    bad = client.post(url, json={"feedback": [{"outcome": "accepted"}]}, headers=auth)
    assert bad.status_code == 400


def test_validate_card_catches_spec_violations() -> None:
    good = {"summary": "ok", "indicator": "info", "source": {"label": "x"}}
    assert validate_card(good) == []
    assert validate_card({**good, "summary": "x" * 140})
    assert validate_card({**good, "indicator": "hard-stop"})
    assert validate_card({**good, "source": {}})
    assert validate_card({**good, "suggestions": [{"label": "a", "actions": []}]})
    assert validate_card({**good, "links": [{"label": "l", "url": "/rel", "type": "absolute"}]})
    for example in json.loads((DATA / "inferno-fixtures" / "valid_cards.json").read_text()):
        example = json.loads(json.dumps(example).replace("INFERNO_PLACEHOLDER", "https://x.test"))
        assert validate_card(example) == [], example["summary"]


# --------------------------------------------------------------------------- real requests

SERVICE_FOR_HOOK = {
    "patient-view": "ldncare-patient-view",
    "order-select": "ldncare-order-select",
    "medication-prescribe": "ldncare-order-select",
    "order-sign": "ldncare-order-sign",
}


def _load(path: Path) -> tuple[Any, str]:
    """(parsed JSON or None, raw text), stripping the one stray trailing '}' some files carry."""
    text = path.read_text(encoding="utf-8")
    for candidate in (text, text.rstrip().removesuffix("}")):
        try:
            return json.loads(candidate), candidate
        except json.JSONDecodeError:
            continue
    return None, text


def real_requests() -> Iterator[Path]:
    yield from sorted((DATA / "opioid-cds-requests" / "requests").rglob("*.json"))
    yield from sorted((DATA / "pddi-requests").glob("*.json"))
    for index in sorted(DATA.glob("spec-examples-*/_index.json")):
        for item in json.loads(index.read_text()):
            if item["kind"] == "request" and item["hook"] in SERVICE_FOR_HOOK:
                yield index.parent / item["file"]
    for name in ("order_select_hook_request.json", "order_sign_hook_request.json"):
        yield DATA / "inferno-fixtures" / name


REAL = list(real_requests())
#: The FHIR servers the corpus requests name, besides http://localhost:8080/fhir (loopback,
#: allowed in demo mode by default).
CORPUS_SERVERS = [
    "http://fhir.example.com",
    "http://fhir.example.org:9080",
    "http://hooks.smarthealthit.org:9080",
]


def knows_nothing_more(request: httpx.Request) -> httpx.Response:
    """A FHIR server with nothing beyond what a corpus request prefetched: the Patient it is
    asked for, no other record. The corpus requests prefetch under their own keys, so ldncare
    asks for its templates; a server that answers lets the call be checked."""
    path = request.url.path
    if "/Patient/" in path:
        return httpx.Response(200, json=fhir_patient(path.rsplit("/", 1)[-1]))
    return httpx.Response(200, json=searchset([]))


@pytest.fixture(scope="module")
def demo_client() -> TestClient:
    return make_client(
        knows_nothing_more, demo=True, demo_fhir_servers=["loopback", *CORPUS_SERVERS]
    )


def refused_for_a_reason(body: dict[str, Any], response: httpx.Response) -> bool:
    """The corpus requests ldncare cannot check, refused as CDS Hooks 2.0 says: a patient-view
    without the required ``context.patientId`` (400), and a request whose ``fhirServer`` is an
    unfilled template, so nothing can be fetched (412 naming every template)."""
    if response.status_code == 400:
        return "patientId" not in body["context"] and "context.patientId" in response.text
    if response.status_code == 412:
        return not str(body.get("fhirServer")).startswith("http") and len(
            response.json()["missing"]
        ) == len(PATIENT_TEMPLATES)
    return False


def test_real_request_corpus_is_complete() -> None:
    assert len([p for p in REAL if "opioid-cds" in str(p)]) == 67
    assert len([p for p in REAL if "pddi" in str(p)]) == 21
    assert len(REAL) >= 67 + 21 + 9 + 2


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_real_request_gets_valid_response_and_no_ldn_card(
    path: Path, demo_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="ldncare.cdshooks")
    body, raw = _load(path)
    if body is None:
        # A few opioid-CDS files have a stray '}' inside the JSON, not only at the end: such a
        # request is malformed and must get a 400 with a message -- never a 500.
        some = SERVICE_FOR_HOOK["order-sign"]
        response = demo_client.post(
            f"/cds-services/{some}",
            content=raw.encode(),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400
        assert "JSON" in response.json()["error"]
        return
    service = SERVICE_FOR_HOOK[body["hook"]]
    response = demo_client.post(f"/cds-services/{service}", json=body)
    if response.status_code != 200:
        assert refused_for_a_reason(body, response), response.text
        return
    cards = cards_of(response)
    # The catch-all (empty cards + logged traceback) must not be what answered.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # None of these patients is on naltrexone or has pudendal neuralgia, and none orders it.
    assert cards == [], [c["summary"] for c in cards]


def test_opioid_cds_order_is_read_as_an_opioid_draft() -> None:
    from ldncare.cdshooks.hooks import draft_orders

    folder = DATA / "opioid-cds-requests" / "requests" / "OpioidCDSREC01"
    path = folder / "request-example-rec-01-in-outpatient-opioid.json"
    body, _ = _load(path)
    drafts = draft_orders(body["hook"], body["context"]).checked
    assert drafts and all("opioid" in d.classes for d in drafts)


def test_real_requests_answered_counts(demo_client: TestClient) -> None:
    answered = malformed = 0
    refused: dict[int, int] = {}
    for path in REAL:
        body, _ = _load(path)
        if body is None:
            malformed += 1
            continue
        response = demo_client.post(f"/cds-services/{SERVICE_FOR_HOOK[body['hook']]}", json=body)
        if response.status_code == 200:
            answered += 1
        else:
            refused[response.status_code] = refused.get(response.status_code, 0) + 1
    # 3 spec-example patient-views carry no patientId; 1 names fhirServer "{{fhirServerUrl}}".
    assert (answered, malformed, refused) == (len(REAL) - 10, 6, {400: 3, 412: 1})
