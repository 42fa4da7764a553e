"""CDS Hooks: what a request must be (issue #18, item 5) -- content type, the context each
hook requires, feedback as CDS Hooks 2.0 defines it, CORS on every error, the public URL."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from ldncare.cdshooks import CdsSettings, create_cds_app
from ldncare.cdshooks.cards import OVERRIDE_CODES, OVERRIDE_SYSTEM
from ldncare.cdshooks.feedback import how_cards_fare
from ldncare.cdshooks.fetch import PATIENT_TEMPLATES
from ldncare.cdshooks.service import public_base
from tests.integration.test_cdshooks import ISSUER, SECRET, make_client, med_request, token

NOTHING_ON_RECORD = dict.fromkeys(PATIENT_TEMPLATES)  # every template answered: nothing found


def call(hook: str, **context: Any) -> dict[str, Any]:
    return {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", **context},
        "prefetch": NOTHING_ON_RECORD,
    }


def drafts(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


def send(
    client: TestClient, service: str, body: Any, content_type: str | None = "application/json"
) -> Any:
    import json

    headers = {"Authorization": f"Bearer {token(service)}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return client.post(f"/cds-services/{service}", content=json.dumps(body), headers=headers)


# --------------------------------------------------------------------------- content type


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_not_declared_json_is_415(content_type: str | None) -> None:
    body = call("patient-view", patientId="p1")
    response = send(make_client(), "ldncare-patient-view", body, content_type)
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]
    assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/fhir+json"]
)
def test_json_content_types_are_accepted(content_type: str) -> None:
    body = call("patient-view", patientId="p1")
    response = send(make_client(), "ldncare-patient-view", body, content_type)
    assert response.status_code == 200, response.text


# --------------------------------------------------------------------------- context per hook


@pytest.mark.parametrize(
    ("service", "hook", "context", "named"),
    [
        ("ldncare-patient-view", "patient-view", {}, "patientId"),
        ("ldncare-order-sign", "order-sign", {"patientId": "p1"}, "draftOrders"),
        (
            "ldncare-order-select",
            "order-select",
            {"patientId": "p1", "draftOrders": drafts(med_request("naltrexone 1.5 mg", rid="n"))},
            "selections",
        ),
        (
            "ldncare-order-select",
            "order-select",
            {
                "draftOrders": drafts(med_request("naltrexone 1.5 mg", rid="n")),
                "selections": ["MedicationRequest/n"],
            },
            "patientId",
        ),
    ],
)
def test_a_hook_without_its_required_context_is_400_naming_the_field(
    service: str, hook: str, context: dict[str, Any], named: str
) -> None:
    response = send(make_client(), service, call(hook, **context))
    assert response.status_code == 400
    assert f"context.{named} is required by the '{hook}' hook" in response.json()["error"]


def test_a_pre_1_0_order_sign_with_medications_is_still_read() -> None:
    body = call("order-sign", patientId="p1", medications=drafts(med_request("tramadol 50 mg")))
    assert send(make_client(), "ldncare-order-sign", body).status_code == 200


# --------------------------------------------------------------------------- feedback

NOW = "2026-12-04T13:05:00Z"
CARD = "5d0c6f2e-8a41-4b7e-9c3d-2f1e0a9b8c7d"


def feedback(client: TestClient, *items: dict[str, Any]) -> Any:
    service = "ldncare-order-select"
    return client.post(
        f"/cds-services/{service}/feedback",
        json={"feedback": list(items)},
        headers={"Authorization": f"Bearer {token(service + '/feedback')}"},
    )


def test_an_overridden_card_with_a_coded_reason_is_recorded() -> None:
    client = make_client()
    item = {
        "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
        "outcome": "overridden",
        "outcomeTimestamp": NOW,
        "overrideReason": {
            "reason": {"system": OVERRIDE_SYSTEM, "code": "record-out-of-date"},
            "userComment": "oxycodone stopped 10 days ago",
        },
    }
    accepted = {
        "card": "0c1b2a39-5e4f-4d8a-9b7c-6a5d4e3f2a12",
        "outcome": "accepted",
        "outcomeTimestamp": NOW,
        "acceptedSuggestions": [{"id": "s1"}],
    }
    assert feedback(client, item, accepted).status_code == 200
    log = list(client.app.state.cds_feedback)  # type: ignore[attr-defined]
    assert [(f["outcome"], f["service"]) for f in log] == [
        ("overridden", "ldncare-order-select"),
        ("accepted", "ldncare-order-select"),
    ]
    assert log[0]["overrideReason"]["reason"]["code"] == "record-out-of-date"


@pytest.mark.parametrize(
    ("item", "says"),
    [
        (
            {"card": CARD, "outcome": "dismissed", "outcomeTimestamp": NOW},
            "'accepted' or 'overridden'",
        ),
        ({"card": CARD, "outcome": "accepted"}, "outcomeTimestamp"),
        (
            {
                "card": CARD,
                "outcome": "accepted",
                "outcomeTimestamp": NOW,
                "overrideReason": {"userComment": "x"},
            },
            "no 'overrideReason'",
        ),
        (
            {
                "card": CARD,
                "outcome": "overridden",
                "outcomeTimestamp": NOW,
                "overrideReason": {"reason": "not a coding"},
            },
            "a Coding",
        ),
        (
            {
                "card": CARD,
                "outcome": "overridden",
                "outcomeTimestamp": NOW,
                "acceptedSuggestions": [{"id": "s"}],
            },
            "accepts no suggestions",
        ),
        ({"outcome": "accepted", "outcomeTimestamp": NOW}, "'card' uuid"),
        (  # a reason from a system no card offers (integrator review M1)
            {
                "card": CARD,
                "outcome": "overridden",
                "outcomeTimestamp": NOW,
                "overrideReason": {"reason": {"system": "http://evil", "code": "zzz"}},
            },
            "override reason system must be",
        ),
        (  # a coded reason without a system is not one the cards offer either
            {
                "card": CARD,
                "outcome": "overridden",
                "outcomeTimestamp": NOW,
                "overrideReason": {"reason": {"code": "record-out-of-date"}},
            },
            "override reason system must be",
        ),
    ],
)
def test_malformed_feedback_is_400_and_nothing_is_recorded(item: dict[str, Any], says: str) -> None:
    client = make_client()
    response = feedback(client, item)
    assert response.status_code == 400
    assert says in response.json()["error"]
    assert list(client.app.state.cds_feedback) == []  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- CORS on errors


def test_method_not_allowed_carries_cors_headers() -> None:
    response = make_client().get("/cds-services/ldncare-patient-view")
    assert response.status_code == 405
    assert response.headers["access-control-allow-origin"] == "*"
    assert "error" in response.json()


# --------------------------------------------------------------------------- public URL


@pytest.mark.parametrize(
    "public_url",
    [
        "https://cds.example.org",
        "https://cds.example.org/",
        "https://cds.example.org/cds-services",
        "https://cds.example.org/cds-services/",
    ],
)
def test_public_url_with_or_without_the_cds_services_base_accepts_the_ehr_token(
    public_url: str,
) -> None:
    config = CdsSettings(trusted_issuers={ISSUER: {"hs256_secret": SECRET}}, public_url=public_url)
    client = TestClient(create_cds_app(config))
    service = "ldncare-patient-view"
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "ehr",
        "aud": f"https://cds.example.org/cds-services/{service}",
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    response = client.post(
        f"/cds-services/{service}",
        json=call("patient-view", patientId="p1"),
        headers={"Authorization": f"Bearer {jwt.encode(claims, SECRET, 'HS256')}"},
    )
    assert response.status_code == 200, response.text


def test_public_url_behind_a_path_prefix_keeps_the_prefix() -> None:
    assert public_base("https://h.example/ehr-cds/cds-services/") == "https://h.example/ehr-cds"
    assert public_base("https://h.example/ehr-cds") == "https://h.example/ehr-cds"


# --------------------------------------------------------------------------- override reasons


def test_a_clinician_overrides_a_critical_card_with_one_of_its_coded_reasons() -> None:
    client = make_client()
    service = "ldncare-order-select"
    body = call(
        "order-select",
        patientId="p1",
        draftOrders=drafts(med_request("naltrexone 1.5 mg", rid="n", status="draft")),
        selections=["MedicationRequest/n"],
    )
    body["prefetch"] = {
        **NOTHING_ON_RECORD,
        "medications": drafts(med_request("oxycodone 5 mg oral tablet")),
    }
    (card,) = send(client, service, body).json()["cards"]
    offered = card["overrideReasons"]
    assert {r["code"] for r in offered} == OVERRIDE_CODES
    assert all(r["system"] == OVERRIDE_SYSTEM and r["display"] for r in offered)
    chosen = next(r for r in offered if r["code"] == "record-out-of-date")
    item = {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": NOW,
        "overrideReason": {"reason": chosen, "userComment": "oxycodone stopped last month"},
    }
    accepted = {
        "card": card["uuid"],
        "outcome": "accepted",
        "outcomeTimestamp": NOW,
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
    }
    assert feedback(client, item, accepted, item | {"overrideReason": None}).status_code == 200
    fare = how_cards_fare(client.app.state.cds_feedback)  # type: ignore[attr-defined]
    assert fare == {
        service: {
            "accepted": 1,
            "overridden": 2,
            "reasons": {"record-out-of-date": 1, "no reason": 1},
        }
    }


def test_an_override_code_ldncare_never_offered_is_400_listing_the_accepted_codes() -> None:
    item = {
        "card": CARD,
        "outcome": "overridden",
        "outcomeTimestamp": NOW,
        "overrideReason": {"reason": {"system": OVERRIDE_SYSTEM, "code": "too-many-alerts"}},
    }
    response = feedback(make_client(), item)
    assert response.status_code == 400
    assert "'too-many-alerts' is not one ldncare offers" in response.json()["error"]
    assert "record-out-of-date" in response.json()["error"]


def test_feedback_not_declared_json_is_415_and_not_recorded() -> None:
    client = make_client()
    service = "ldncare-patient-view"
    response = client.post(
        f"/cds-services/{service}/feedback",
        content=b'{"feedback": [{"card": "c", "outcome": "accepted"}]}',
        headers={
            "Authorization": f"Bearer {token(service + '/feedback')}",
            "Content-Type": "text/plain",
        },
    )
    assert response.status_code == 415
    assert response.headers["access-control-allow-origin"] == "*"
    assert list(client.app.state.cds_feedback) == []  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- internal failure


def test_a_failure_inside_the_check_is_a_500_not_an_empty_card_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`{"cards": []}` means "checked, no conflict"; a check that crashed checked nothing."""
    import ldncare.cdshooks.service as service

    async def broken(*_args: Any, **_kwargs: Any) -> list[dict[str, Any]]:
        raise KeyError("resourceType")

    monkeypatch.setattr(service, "_answer", broken)
    body = call("patient-view", patientId="p1")
    response = send(make_client(), "ldncare-patient-view", body)
    assert response.status_code == 500
    assert "not checked" in response.json()["error"]
    assert "resourceType" not in response.text  # no internals towards the EHR
