"""Issue #18: how each CDS Hooks card fares. Every card the service returns and every feedback
item are kept in the database; administrators see, per service and card topic, the cards shown,
accepted, overridden and why (grouped by reason) on /admin/cds-cards and in
GET /api/admin/cds-cards. Nobody else may see them; a comment is shown as text, never as HTML."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from ldncare.store import cds as store
from ldncare.web.app import create_app
from ldncare.web.settings import WebSettings
from tests.integration.followup_db import db_url  # noqa: F401
from tests.web.conftest import PASSWORD, seed_people

ISSUER = "https://ehr.test"
SECRET = "outcomes-test-secret-long-enough-for-hs256"
BASE = "http://testserver"
PATIENT_VIEW = "ldncare-patient-view"


def _token(service: str) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": f"{BASE}/cds-services/{service}", "exp": now + 120,
              "iat": now, "jti": str(uuid.uuid4())}  # fmt: skip
    return jwt.encode(claims, SECRET, "HS256")


def _on_ldn_and_oxycodone() -> dict[str, Any]:
    """A chart opened for a woman with pudendal neuralgia on LDN who was also given oxycodone:
    the critical naltrexone-with-opioid card."""

    def med(text: str) -> dict[str, Any]:
        return {"resourceType": "MedicationRequest", "id": uuid.uuid4().hex[:8],
                "status": "active", "intent": "order", "subject": {"reference": "Patient/p1"},
                "medicationCodeableConcept": {"text": text}}  # fmt: skip

    def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "searchset",
                "entry": [{"resource": r} for r in resources]}  # fmt: skip

    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": {
            "patient": {
                "resourceType": "Patient",
                "id": "p1",
                "gender": "female",
                "birthDate": "1975-04-02",
            },
            "conditions": bundle(),
            "medications": bundle(med("Naltrexone 4.5 mg capsule"), med("Oxycodone 5 mg tablet")),
            "statements": bundle(),
            "allergies": bundle(),
            "labs": bundle(),
            "weight": bundle(),
        },
    }


class Clinic:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def show_card(self) -> dict[str, Any]:
        r = self.client.post(
            f"/cds-services/{PATIENT_VIEW}",
            json=_on_ldn_and_oxycodone(),
            headers={"Authorization": f"Bearer {_token(PATIENT_VIEW)}"},
        )
        assert r.status_code == 200, r.text
        card: dict[str, Any] = next(c for c in r.json()["cards"] if c["indicator"] == "critical")
        return card

    def feedback(
        self, card: dict[str, Any], outcome: str, *, status: int = 200, service: str = PATIENT_VIEW,
        **extra: Any,
    ) -> str:  # fmt: skip
        item = {"card": card["uuid"], "outcome": outcome,
                "outcomeTimestamp": "2026-12-04T13:52:00Z", **extra}  # fmt: skip
        r = self.client.post(
            f"/cds-services/{service}/feedback",
            json={"feedback": [item]},
            headers={"Authorization": f"Bearer {_token(service + '/feedback')}"},
        )
        assert r.status_code == status, r.text
        return r.text

    def login(self, username: str) -> None:
        self.client.cookies.clear()
        r = self.client.post("/api/session", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text


@pytest.fixture
def clinic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Clinic]:
    monkeypatch.setenv("LDNCARE_CDS_TRUSTED_ISSUERS",
                       json.dumps({ISSUER: {"hs256_secret": SECRET}}))  # fmt: skip
    monkeypatch.setenv("LDNCARE_CDS_PUBLIC_URL", BASE)
    settings = WebSettings(database_url=f"sqlite:///{tmp_path / 'web.db'}", secret_key="k" * 48,
                           cookie_secure=False)  # fmt: skip
    app = create_app(settings, clock=lambda: date(2026, 3, 2))
    seed_people(app.state.engine)
    with TestClient(app) as client:
        yield Clinic(client)


def _fare(rows: list[dict[str, Any]], topic: str) -> dict[str, Any]:
    return next(r for r in rows if r["topic"] == topic)


def test_admin_sees_three_opioid_cards_shown_one_accepted_two_overridden_and_why(
    clinic: Clinic,
) -> None:
    first, second, third = (clinic.show_card() for _ in range(3))
    clinic.feedback(first, "accepted")
    reason = {"system": "https://ldncare.org/cds/override-reason", "code": "record-out-of-date"}
    clinic.feedback(second, "overridden", overrideReason={"reason": reason,
                    "userComment": "oxycodone stopped last week"})  # fmt: skip
    clinic.feedback(third, "overridden")

    clinic.login("root")
    rows = clinic.client.get("/api/admin/cds-cards").json()
    fare = _fare(rows, "ldn-opioid-conflict")
    assert fare["service"] == PATIENT_VIEW
    assert (fare["shown"], fare["accepted"], fare["overridden"]) == (3, 1, 2)
    assert {r["code"]: r["count"] for r in fare["override_reasons"]} == {
        "record-out-of-date": 1,
        "no reason": 1,
    }
    assert fare["comments"] == [
        {"reason": "record-out-of-date", "comment": "oxycodone stopped last week"}
    ]
    page = clinic.client.get("/admin/cds-cards")
    assert page.status_code == 200
    assert "ldn-opioid-conflict" in page.text and "The record is out of date: 1" in page.text


def test_an_ehr_retrying_feedback_counts_each_card_once_by_its_latest_outcome(
    clinic: Clinic,
) -> None:
    """Integrator review M1: EHRs retry feedback; one card is one outcome (the latest)."""
    accepted_twice, overridden_twice, changed_mind = (clinic.show_card() for _ in range(3))
    reason = {"system": "https://ldncare.org/cds/override-reason", "code": "record-out-of-date"}
    for _ in range(2):
        clinic.feedback(accepted_twice, "accepted")
        clinic.feedback(overridden_twice, "overridden", overrideReason={"reason": reason})
    clinic.feedback(changed_mind, "accepted")
    clinic.feedback(changed_mind, "overridden")
    clinic.login("root")
    fare = _fare(clinic.client.get("/api/admin/cds-cards").json(), "ldn-opioid-conflict")
    assert (fare["shown"], fare["accepted"], fare["overridden"]) == (3, 1, 2)
    assert {r["code"]: r["count"] for r in fare["override_reasons"]} == {
        "record-out-of-date": 1,
        "no reason": 1,
    }


def test_feedback_on_a_card_of_another_service_is_refused_naming_the_right_one(
    clinic: Clinic,
) -> None:
    card = clinic.show_card()  # shown by the patient-view service
    text = clinic.feedback(card, "overridden", status=400, service="ldncare-order-select")
    assert PATIENT_VIEW in text and card["uuid"] in text
    clinic.login("root")
    rows = clinic.client.get("/api/admin/cds-cards").json()
    assert all(r["service"] != "ldncare-order-select" for r in rows)
    assert _fare(rows, "ldn-opioid-conflict")["overridden"] == 0


def test_an_override_reason_outside_the_offered_system_is_refused(clinic: Clinic) -> None:
    card = clinic.show_card()
    evil = {"reason": {"system": "http://evil", "code": "zzz"}}
    text = clinic.feedback(card, "overridden", status=400, overrideReason=evil)
    assert "https://ldncare.org/cds/override-reason" in text
    clinic.login("root")
    fare = _fare(clinic.client.get("/api/admin/cds-cards").json(), "ldn-opioid-conflict")
    assert fare["overridden"] == 0 and fare["override_reasons"] == []


def test_an_override_comment_with_markup_is_shown_as_text(clinic: Clinic) -> None:
    card = clinic.show_card()
    clinic.feedback(card, "overridden", overrideReason={
        "userComment": '<script>alert("x")</script><img src=x onerror=alert(1)>'})  # fmt: skip
    clinic.login("root")
    page = clinic.client.get("/admin/cds-cards").text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


@pytest.mark.parametrize("who", ["clin1", "anna"])
def test_a_clinician_or_a_patient_cannot_see_the_card_outcomes(clinic: Clinic, who: str) -> None:
    clinic.feedback(clinic.show_card(), "overridden", overrideReason={"userComment": "secret"})
    clinic.login(who)
    assert clinic.client.get("/admin/cds-cards").status_code == 403
    r = clinic.client.get("/api/admin/cds-cards")
    assert r.status_code == 403 and "secret" not in r.text


def test_without_a_session_the_card_outcomes_are_refused(clinic: Clinic) -> None:
    clinic.show_card()
    clinic.client.cookies.clear()
    assert clinic.client.get("/api/admin/cds-cards").status_code == 401
    page = clinic.client.get("/admin/cds-cards", follow_redirects=False)
    assert page.status_code in (303, 401) and "ldn-opioid-conflict" not in page.text


# --------------------------------------------------------------------------- the store itself


def test_feedback_on_a_card_never_recorded_counts_under_unknown_card(db_url: str) -> None:  # noqa: F811
    from ldncare.store.db import make_engine

    engine = make_engine(db_url)
    shown = store.ShownCard(str(uuid.uuid4()), "svc", "renal-dose", "warning", "h1",
                            store.datetime.now(store.UTC))  # fmt: skip
    store.record_cards(engine, [shown, shown])  # the same uuid twice is one card
    store.record_feedback(engine, [
        {"card": shown.uuid, "service": "svc", "outcome": "accepted",
         "outcomeTimestamp": "2026-12-04T13:52:00Z",
         "acceptedSuggestions": [{"id": "s1"}]},
        {"card": str(uuid.uuid4()), "service": "svc", "outcome": "overridden",
         "outcomeTimestamp": "2026-12-04T13:52:00Z"},
    ])  # fmt: skip
    fares = {f.topic: f for f in store.card_outcomes(engine)}
    engine.dispose()
    assert (fares["renal-dose"].shown, fares["renal-dose"].accepted) == (1, 0 + 1)
    unknown = fares[store.UNKNOWN_TOPIC]
    assert (unknown.shown, unknown.overridden, unknown.reasons) == (0, 1, {"no reason": 1})


def test_a_token_id_is_claimed_once_until_it_expires(db_url: str) -> None:  # noqa: F811
    from ldncare.store.db import make_engine

    engine = make_engine(db_url)
    now = time.time()
    assert store.claim_token(engine, ISSUER, "j1", now + 60, now)
    assert not store.claim_token(engine, ISSUER, "j1", now + 60, now)
    assert store.claim_token(engine, "https://other.test", "j1", now + 60, now)  # per issuer
    # Once the token has expired its row may be taken over (and the purge removes it).
    assert store.claim_token(engine, ISSUER, "j1", now + 200, now + 61)
    assert store.purge_tokens(engine, now + 1000) == 2
    engine.dispose()
