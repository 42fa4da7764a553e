"""SMART on FHIR App Launch against a real protocol partner (tests/support/smart_ehr.py): an
authlib authorization server and a FHIR endpoint serving Synthea patients on a real socket.

The clinician opens ldncare from the EHR on a patient and sees that patient's plan with no
re-entry; every refusal (consent, state, PKCE, expired or used code, missing scope, FHIR server
down, expired access) gets its own page; tokens never reach the browser.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from ldncare.store.models import AuditRow, EhrLinkRow, PatientRow
from ldncare.web.app import create_app
from ldncare.web.settings import WebSettings
from ldncare.web.smart.sessions import SMART_COOKIE
from ldncare.web.smart.settings import SmartSettings
from tests.integration.test_cdshooks import (
    cards_of,
    hook_request,
    make_client,
    on_ldn_and_oxycodone,
    post,
)
from tests.shared_data import SYNTHEA
from tests.support.smart_ehr import CLIENT_ID, RESOURCE_TYPES, SmartEhr, load_patients
from tests.web.conftest import TODAY, seed_people

#: Synthea patients: Dirk Kuhlman takes meperidine (an opioid) and carbamazepine; Buster Hoeger.
DIRK = "948e608d-e408-4788-8cf2-8157c49c2940"
DIRK_FILE = SYNTHEA / "Dirk_Kuhlman_1e503533-b8c2-42cb-a6d5-bbd7d70d07ad.json"
BUSTER_FILE = SYNTHEA / "Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json"
BUSTER = json.loads(BUSTER_FILE.read_text())["entry"][0]["resource"]["id"]


@pytest.fixture(scope="module")
def ehr() -> Iterator[SmartEhr]:
    with SmartEhr(load_patients([DIRK_FILE, BUSTER_FILE]), page_size=10) as running:
        yield running


@dataclass
class Ldncare:
    client: TestClient
    ehr: SmartEhr
    #: Every response the browser saw, for the "no token in the browser" check.
    seen: list[httpx.Response] = field(default_factory=list)

    def get(self, url: str) -> httpx.Response:
        response = self.client.get(url, follow_redirects=False)
        self.seen.append(response)
        return response

    def start(self, launch: str | None, iss: str | None = None) -> str:
        """Open the launch URL; returns where ldncare sends the browser (the EHR)."""
        query = {"iss": iss or self.ehr.fhir_base}
        if launch is not None:
            query["launch"] = launch
        response = self.get("/smart/launch?" + "&".join(f"{k}={v}" for k, v in query.items()))
        assert response.status_code == 302, response.text
        return response.headers["location"]

    def at_ehr(self, authorize_url: str) -> dict[str, str]:
        """The browser at the EHR's authorization endpoint: the query it brings back."""
        response = httpx.get(authorize_url, follow_redirects=False)
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.startswith("http://testserver/smart/callback")
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def callback(self, answer: dict[str, str]) -> httpx.Response:
        return self.get("/smart/callback?" + "&".join(f"{k}={v}" for k, v in answer.items()))

    def launch(self, patient: str | None) -> httpx.Response:
        """A whole launch (EHR launch on ``patient``, standalone when None): the plan page."""
        launch = self.ehr.new_launch(patient) if patient else None
        response = self.callback(self.at_ehr(self.start(launch)))
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/smart/patient"
        return self.get("/smart/patient")


@pytest.fixture
def ldncare(ehr: SmartEhr, tmp_path: Path) -> Iterator[Ldncare]:
    ehr.deny, ehr.grant_scope, ehr.fhir_status, ehr.refresh = False, None, None, True
    ehr.pkce_methods = ["S256"]
    ehr.forge_id_token = False
    ehr.fhir_delay = 0.0
    settings = WebSettings(
        database_url=f"sqlite:///{tmp_path / 'web.db'}", secret_key="k" * 48, cookie_secure=False
    )
    smart = SmartSettings(
        client_id=CLIENT_ID,
        redirect_uri="http://testserver/smart/callback",
        allowed_issuers=ehr.fhir_base,
    )
    app = create_app(settings, clock=lambda: TODAY, smart=smart)
    seed_people(app.state.engine)
    with TestClient(app) as client:
        yield Ldncare(client, ehr)


def _problem(response: httpx.Response) -> str:
    marker = 'id="smart-problem" data-kind="'
    start = response.text.index(marker) + len(marker)
    return response.text[start : response.text.index('"', start)]


# --- launches that work ------------------------------------------------------------------------


def test_ehr_launch_on_a_patient_taking_meperidine_shows_his_plan_without_reentry(
    ldncare: Ldncare,
) -> None:
    page = ldncare.launch(DIRK)
    assert page.status_code == 200, page.text
    assert "Dirk" in page.text
    assert "Meperidine" in page.text  # his opioid, read from the EHR
    assert "Carbamazepine" in page.text or "Tegretol" in page.text
    # The plan itself: the opioid makes LDN wait (the screening's own finding, not re-typed).
    assert 'id="eligibility"' in page.text
    assert "opioid" in page.text.lower()
    assert "Follow this patient in ldncare" in page.text


def test_a_card_link_from_the_ehr_opens_ldncare_on_the_cards_topic(ldncare: Ldncare) -> None:
    # The card the CDS service gives for a patient on LDN with oxycodone, with its smart link.
    body = hook_request("patient-view", resources=on_ldn_and_oxycodone())
    launch_url = "http://testserver/smart/launch"
    # The EHR calling is one the SMART launch accepts (else no smart link, review L1).
    client = make_client(smart_launch_url=launch_url, smart_issuers=[body["fhirServer"]])
    cards = cards_of(post(client, "ldncare-patient-view", body))
    card = next(c for c in cards if c["indicator"] == "critical")
    link = next(link for link in card["links"] if link["type"] == "smart")
    assert link["url"] == launch_url
    # The EHR launches the link on the patient open in its chart, passing the appContext on.
    launch = ldncare.ehr.new_launch(DIRK, app_context=link["appContext"])
    answer = ldncare.at_ehr(ldncare.start(launch))
    assert ldncare.callback(answer).status_code == 303
    page = ldncare.get("/smart/patient")
    assert page.status_code == 200
    topic = card["source"]["topic"]["display"]
    assert f"Opened from an ldncare card: {topic}" in page.text.replace("&#39;", "'")


def test_the_clinician_named_by_the_verified_id_token_is_recorded_with_the_patient(
    ldncare: Ldncare,
) -> None:
    page = ldncare.launch(DIRK)
    practitioner = f"{ldncare.ehr.fhir_base}/Practitioner/dr-test"
    assert f'<code id="fhir-user">{practitioner}</code>' in page.text
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    ldncare.client.post(
        "/api/session", json={"username": "clin1", "password": "correct horse battery"}
    )
    r = ldncare.client.post("/smart/follow", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    engine = ldncare.client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as s:
        assert s.scalars(select(EhrLinkRow.fhir_user)).one() == practitioner


def test_an_id_token_signed_with_a_key_the_ehr_does_not_publish_is_refused(
    ldncare: Ldncare,
) -> None:
    ldncare.ehr.forge_id_token = True
    answer = ldncare.at_ehr(ldncare.start(ldncare.ehr.new_launch(DIRK)))
    page = ldncare.callback(answer)
    assert page.status_code == 401
    assert _problem(page) == "TokenRefused"
    assert "identity token did not verify" in page.text


def test_a_long_record_is_read_page_by_page_on_the_same_server(ldncare: Ldncare) -> None:
    before = len(ldncare.ehr.fhir_requests)
    page = ldncare.launch(DIRK)
    assert page.status_code == 200
    paged = [p for p, _ in ldncare.ehr.fhir_requests[before:] if "_offset=" in p]
    assert paged, "Dirk's record is longer than one page of 10: next links must be followed"
    assert all(auth.startswith("Bearer ") for _, auth in ldncare.ehr.fhir_requests[before:])


def test_standalone_launch_lets_the_clinician_pick_the_patient_at_the_ehr(
    ldncare: Ldncare,
) -> None:
    ldncare.ehr.picked_patient = BUSTER
    try:
        page = ldncare.launch(None)
    finally:
        ldncare.ehr.picked_patient = DIRK
    assert page.status_code == 200, page.text
    assert "Buster" in page.text


def test_the_authorization_request_carries_pkce_s256_state_aud_and_the_launch(
    ldncare: Ldncare,
) -> None:
    launch = ldncare.ehr.new_launch(DIRK)
    query = parse_qs(urlsplit(ldncare.start(launch)).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43  # base64url of a SHA-256
    assert len(query["state"][0]) >= 20
    assert query["aud"] == [ldncare.ehr.fhir_base]
    assert query["launch"] == [launch]
    scopes = query["scope"][0].split()
    for needed in (
        "openid",
        "fhirUser",
        "launch",
        "patient/MedicationRequest.rs",
        "patient/Medication.rs",
    ):
        assert needed in scopes
    assert "launch/patient" not in scopes


def test_no_token_reaches_the_browser_in_any_body_header_or_cookie(ldncare: Ldncare) -> None:
    ldncare.launch(DIRK)
    secrets_issued = [
        value
        for token in ldncare.ehr.tokens.values()
        for value in (token.access_token, token.refresh_token)
        if value
    ]
    assert secrets_issued
    for response in ldncare.seen:
        exposed = response.text + json.dumps(dict(response.headers))
        for secret in secrets_issued:
            assert secret not in exposed
    for cookie in ldncare.client.cookies.jar:
        for secret in secrets_issued:
            assert secret not in (cookie.value or "")
    set_cookie = ldncare.seen[0].headers["set-cookie"]  # the launch's: the one SMART cookie
    assert set_cookie.startswith(f"{SMART_COOKIE}=")
    assert "HttpOnly" in set_cookie and "Path=/smart" in set_cookie


def test_an_expired_access_token_is_refreshed_and_the_plan_still_shows(
    ldncare: Ldncare,
) -> None:
    ldncare.launch(DIRK)
    issued = ldncare.ehr.token_requests
    ldncare.ehr.expire_tokens()
    page = ldncare.get("/smart/patient")
    assert page.status_code == 200, page.text
    assert "Meperidine" in page.text
    assert ldncare.ehr.token_requests == issued + 1  # one refresh


def test_an_expired_access_token_without_a_refresh_token_ends_the_session(
    ldncare: Ldncare,
) -> None:
    ldncare.ehr.refresh = False
    ldncare.launch(DIRK)
    ldncare.ehr.expire_tokens()
    page = ldncare.get("/smart/patient")
    assert page.status_code == 401
    assert _problem(page) == "SessionExpired"
    assert ldncare.get("/smart/patient").status_code == 401  # the session is gone


def test_following_stores_the_patient_with_where_the_record_came_from(
    ldncare: Ldncare,
) -> None:
    page = ldncare.launch(DIRK)
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = ldncare.client.post("/smart/follow", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 401  # an ldncare clinician account is needed to store
    login = ldncare.client.post(
        "/api/session", json={"username": "clin1", "password": "correct horse battery"}
    )
    assert login.status_code == 200
    r = ldncare.client.post("/smart/follow", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303, r.text
    number = int(r.headers["location"].rsplit("/", 1)[1])
    engine = ldncare.client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as s:
        row = s.get(PatientRow, number)
        assert row is not None and row.external_id == DIRK and row.clinic_id == "clinic-1"
        link = s.scalars(select(EhrLinkRow)).one()
        assert (link.iss, link.fhir_patient_id, link.patient_id) == (
            ldncare.ehr.fhir_base,
            DIRK,
            number,
        )
        assert link.created_by == "web:clin1"
        assert s.scalars(select(AuditRow).where(AuditRow.entity == "ehr_link")).one()
    shown = ldncare.client.get(f"/patients/{number}")
    assert shown.status_code == 200 and "Meperidine" in shown.text
    # Following again opens the same record rather than storing a second one.
    again = ldncare.client.post("/smart/follow", data={"csrf_token": csrf}, follow_redirects=False)
    assert again.headers["location"] == f"/patients/{number}"


def _login(ldncare: Ldncare, username: str) -> None:
    ldncare.client.post(
        "/api/session", json={"username": username, "password": "correct horse battery"}
    ).raise_for_status()


def test_a_second_clinic_follows_its_own_copy_and_never_sees_the_first_clinics_record(
    ldncare: Ldncare,
) -> None:
    page = ldncare.launch(DIRK)
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    _login(ldncare, "clin1")  # clinic-1 follows Dirk
    r = ldncare.client.post("/smart/follow", data={"csrf_token": csrf}, follow_redirects=False)
    clinic1_number = int(r.headers["location"].rsplit("/", 1)[1])
    ldncare.client.delete("/api/session")
    ldncare.client.cookies.clear()

    # A launch without an ldncare login learns nothing of what ldncare stores.
    anonymous = ldncare.launch(DIRK)
    assert "(followed)" not in anonymous.text
    assert f"/patients/{clinic1_number}" not in anonymous.text
    # clin2 (clinic-2) is offered to follow, not clinic-1's record.
    _login(ldncare, "clin2")
    page = ldncare.get("/smart/patient")
    assert "(followed)" not in page.text
    assert f"/patients/{clinic1_number}" not in page.text
    assert 'id="follow"' in page.text
    follow_form = 'action="/smart/follow"><input type="hidden" name="csrf_token" value="'
    csrf = page.text.split(follow_form)[1].split('"')[0]
    r = ldncare.client.post("/smart/follow", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303, r.text
    clinic2_number = int(r.headers["location"].rsplit("/", 1)[1])
    assert clinic2_number != clinic1_number
    assert ldncare.client.get(f"/patients/{clinic2_number}").status_code == 200
    again = ldncare.get("/smart/patient")
    assert f'href="/patients/{clinic2_number}">Open in ldncare (followed)' in again.text
    engine = ldncare.client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as s:
        links = {(link.clinic_id, link.patient_id) for link in s.scalars(select(EhrLinkRow))}
    assert links == {("clinic-1", clinic1_number), ("clinic-2", clinic2_number)}


def test_follow_without_the_page_token_is_refused(ldncare: Ldncare) -> None:
    ldncare.launch(DIRK)
    r = ldncare.client.post("/smart/follow", data={"csrf_token": "forged"})
    assert r.status_code == 400
    assert _problem(r) == "FormExpired"
    assert "This page has expired" in r.text
    assert "sign-in link" not in r.text


def test_end_with_a_stale_page_token_says_the_page_expired(ldncare: Ldncare) -> None:
    ldncare.launch(DIRK)
    r = ldncare.client.post("/smart/end", data={"csrf_token": "from-an-old-tab"})
    assert r.status_code == 400
    assert _problem(r) == "FormExpired"
    assert "This page has expired" in r.text


def test_ending_the_session_forgets_the_tokens(ldncare: Ldncare) -> None:
    page = ldncare.launch(DIRK)
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    sessions = ldncare.client.app.state.smart_sessions  # type: ignore[attr-defined]
    held = sessions.held()
    r = ldncare.client.post("/smart/end", data={"csrf_token": csrf})
    assert r.status_code == 200
    assert sessions.held() == held - 1
    assert ldncare.get("/smart/patient").status_code == 401


# --- refusals ----------------------------------------------------------------------------------


def test_consent_denied_at_the_ehr_gets_a_clear_page_and_reads_nothing(ldncare: Ldncare) -> None:
    ldncare.ehr.deny = True
    reads = len(ldncare.ehr.fhir_requests)
    answer = ldncare.at_ehr(ldncare.start(ldncare.ehr.new_launch(DIRK)))
    assert answer["error"] == "access_denied"
    page = ldncare.callback(answer)
    assert page.status_code == 403
    assert _problem(page) == "ConsentDenied"
    assert "did not allow" in page.text
    assert 'id="smart-ended"' in page.text
    assert len(ldncare.ehr.fhir_requests) == reads


def test_a_callback_with_another_state_is_refused_before_the_code_is_used(
    ldncare: Ldncare,
) -> None:
    answer = ldncare.at_ehr(ldncare.start(ldncare.ehr.new_launch(DIRK)))
    issued = ldncare.ehr.token_requests
    page = ldncare.callback({**answer, "state": "not-the-state-we-sent"})
    assert page.status_code == 400
    assert _problem(page) == "StateMismatch"
    assert ldncare.ehr.token_requests == issued  # the code was never traded


def test_a_callback_in_a_browser_that_started_no_launch_is_refused(ldncare: Ldncare) -> None:
    answer = ldncare.at_ehr(ldncare.start(ldncare.ehr.new_launch(DIRK)))
    ldncare.client.cookies.clear()
    page = ldncare.callback(answer)
    assert page.status_code == 400
    assert _problem(page) == "StateMismatch"


def test_a_replayed_callback_is_refused(ldncare: Ldncare) -> None:
    answer = ldncare.at_ehr(ldncare.start(ldncare.ehr.new_launch(DIRK)))
    assert ldncare.callback(answer).status_code == 303
    again = ldncare.callback(answer)
    assert again.status_code == 400
    assert _problem(again) == "StateMismatch"


def test_a_pkce_verifier_that_does_not_match_is_refused_by_the_ehr(ldncare: Ldncare) -> None:
    answer = ldncare.at_ehr(ldncare.start(ldncare.ehr.new_launch(DIRK)))
    sessions = ldncare.client.app.state.smart_sessions  # type: ignore[attr-defined]
    session = next(iter(sessions._pending.values()))
    session.code_verifier = "x" * 48  # not the verifier the challenge was made from
    page = ldncare.callback(answer)
    assert page.status_code == 401
    assert _problem(page) == "TokenRefused"
    assert "invalid_grant" in page.text


def test_an_expired_authorization_code_is_refused(ldncare: Ldncare) -> None:
    answer = ldncare.at_ehr(ldncare.start(ldncare.ehr.new_launch(DIRK)))
    ldncare.ehr.codes[answer["code"]].expires_at = 0
    page = ldncare.callback(answer)
    assert page.status_code == 401
    assert _problem(page) == "TokenRefused"


def test_an_authorization_code_used_once_is_refused_the_second_time(ldncare: Ldncare) -> None:
    answer = ldncare.at_ehr(ldncare.start(ldncare.ehr.new_launch(DIRK)))
    first = ldncare.callback(answer)
    assert first.status_code == 303
    # A second launch in the same browser, answered with the first (already used) code.
    second = ldncare.at_ehr(ldncare.start(ldncare.ehr.new_launch(DIRK)))
    page = ldncare.callback({**second, "code": answer["code"]})
    assert page.status_code == 401
    assert _problem(page) == "TokenRefused"


def test_a_grant_without_medication_requests_shows_no_plan(ldncare: Ldncare) -> None:
    ldncare.ehr.grant_scope = "openid fhirUser launch patient/Patient.rs patient/Condition.rs"
    answer = ldncare.at_ehr(ldncare.start(ldncare.ehr.new_launch(DIRK)))
    page = ldncare.callback(answer)
    assert page.status_code == 403
    assert _problem(page) == "MissingScope"
    assert "MedicationRequest" in page.text
    assert "Meperidine" not in page.text


def test_a_grant_without_medication_shows_no_plan_since_included_drugs_may_be_dropped(
    ldncare: Ldncare,
) -> None:
    """Every type the plan reads granted except Medication: an EHR may then drop the
    Medications ``_include`` brings, and an opioid named only there would be missed."""
    ldncare.ehr.grant_scope = "openid fhirUser launch " + " ".join(
        f"patient/{t}.rs" for t in RESOURCE_TYPES
    )
    answer = ldncare.at_ehr(ldncare.start(ldncare.ehr.new_launch(DIRK)))
    page = ldncare.callback(answer)
    assert page.status_code == 403
    assert _problem(page) == "MissingScope"
    assert "Medication" in page.text
    assert "Meperidine" not in page.text


def test_a_fhir_server_that_is_down_gets_a_clear_page(ldncare: Ldncare) -> None:
    launch = ldncare.ehr.new_launch(DIRK)
    answer = ldncare.at_ehr(ldncare.start(launch))
    assert ldncare.callback(answer).status_code == 303
    ldncare.ehr.fhir_status = 503
    page = ldncare.get("/smart/patient")
    assert page.status_code == 502
    assert _problem(page) == "FhirServerDown"
    assert "503" in page.text
    # The session stays: once the EHR answers again, the same page shows the plan.
    assert 'id="smart-ended"' not in page.text
    ldncare.ehr.fhir_status = None
    assert "Meperidine" in ldncare.get("/smart/patient").text


def test_a_fhir_server_that_hangs_gets_a_clear_page_within_the_timeout(
    ehr: SmartEhr, tmp_path: Path
) -> None:
    smart = SmartSettings(
        client_id=CLIENT_ID,
        redirect_uri="http://testserver/smart/callback",
        allowed_issuers=ehr.fhir_base,
        timeout_seconds=0.5,
    )
    settings = WebSettings(
        database_url=f"sqlite:///{tmp_path / 'w.db'}", secret_key="k" * 48, cookie_secure=False
    )
    with TestClient(create_app(settings, smart=smart)) as client:
        slow = Ldncare(client, ehr)
        answer = slow.at_ehr(slow.start(ehr.new_launch(DIRK)))
        assert slow.callback(answer).status_code == 303
        ehr.fhir_delay = 2.0
        try:
            page = slow.get("/smart/patient")
        finally:
            ehr.fhir_delay = 0.0
    assert page.status_code == 502
    assert _problem(page) == "FhirServerDown"
    assert "did not answer" in page.text and "in time" in page.text


def test_a_launch_from_an_unregistered_ehr_contacts_nothing(ldncare: Ldncare) -> None:
    page = ldncare.get("/smart/launch?iss=https://elsewhere.example/fhir&launch=abc")
    assert page.status_code == 400
    assert _problem(page) == "IssuerRefused"
    assert SMART_COOKIE not in page.headers.get("set-cookie", "")


def test_an_ehr_that_is_unreachable_at_launch_gets_a_clear_page(tmp_path: Path) -> None:
    smart = SmartSettings(
        client_id=CLIENT_ID,
        redirect_uri="http://testserver/smart/callback",
        allowed_issuers="http://127.0.0.1:9/fhir",
    )
    settings = WebSettings(database_url=f"sqlite:///{tmp_path / 'w.db'}", demo=True)
    with TestClient(create_app(settings, smart=smart)) as client:
        page = client.get("/smart/launch?iss=http://127.0.0.1:9/fhir&launch=x")
    assert page.status_code == 502
    assert _problem(page) == "DiscoveryFailed"


def test_an_ehr_that_does_not_announce_pkce_s256_is_not_used(ldncare: Ldncare) -> None:
    ldncare.ehr.pkce_methods = ["plain"]
    page = ldncare.get(f"/smart/launch?iss={ldncare.ehr.fhir_base}&launch=x")
    assert page.status_code == 502
    assert _problem(page) == "DiscoveryFailed"
    assert "S256" in page.text


def test_without_smart_settings_there_is_no_launch_endpoint(tmp_path: Path) -> None:
    settings = WebSettings(database_url=f"sqlite:///{tmp_path / 'w.db'}", demo=True)
    with TestClient(create_app(settings, smart=SmartSettings())) as client:
        assert client.get("/smart/launch?iss=x&launch=y").status_code == 404
        assert client.get("/smart/callback?code=x&state=y").status_code == 404
