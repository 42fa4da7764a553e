"""Who may do what: ONE table of every route (API, pages, CDS Hooks, docs, static) × role.

The routes are read from the app itself, so a new route without a row here fails
``test_every_route_has_a_row``. Each role runs the whole table on a fresh database, in the
table's order, logged in with its own session cookie and CSRF token.

Codes: 401 API without a session; 303 a page redirecting (to /login when anonymous, to /me or
to the saved record after a form); 403 a role that may never do this (patients on clinician
routes, non-admins on the audit log, a form without the session's CSRF token); 404 a patient
outside the user's clinic or not their own, which looks exactly like a missing one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ldncare.cdshooks.fetch import PATIENT_TEMPLATES
from ldncare.core.diary import parse_entry
from ldncare.store.diary_csv import diary_to_csv
from tests.hardening.conftest import ROLES, Hospital, build_hospital
from tests.web.conftest import PASSWORD, TODAY, patient_file

ORDER = ("anonymous", "patient_a", "patient_b", "clinician_1", "clinician_2", "admin")


@dataclass(frozen=True)
class Req:
    """One request; ``{anna}`` in the path is patient A's id (clinic 1)."""

    path: str
    json: Any = None
    form: dict[str, str] | None = None  # the session's csrf_token is added
    content: bytes | None = None
    content_type: str | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def codes(*statuses: int) -> dict[str, int]:
    assert len(statuses) == len(ORDER)
    return dict(zip(ORDER, statuses, strict=True))


def everyone(status: int) -> dict[str, int]:
    return codes(*([status] * len(ORDER)))


DIARY_CSV = diary_to_csv([parse_entry({"day": "2026-02-27", "pain_avg": 4}, today=TODAY)]).encode()
NEW_PATIENT_FORM = {
    "external_id": "matrix-form",
    "name": "Matrix Form",
    "birth_date": "1980-01-01",
    "sex": "female",
    "conditions": "Pudendal neuralgia",
}
#: Every template answered "nothing found" (null): the call is checked without a FHIR server.
CDS_CALL = {
    "hook": "patient-view",
    "hookInstance": "m-1",
    "context": {"patientId": "x"},
    "prefetch": dict.fromkeys(PATIENT_TEMPLATES),
}

#                                                anon PA   PB   C1   C2   admin
API_PATIENT = codes(401, 200, 404, 200, 404, 200)  # patient A's own record
API_CLINICAL_WRITE = codes(401, 403, 403, 201, 404, 201)  # clinician-only write on patient A
PAGE_CLINICAL = codes(303, 403, 403, 200, 404, 200)
PAGE_CLINICAL_POST = codes(303, 403, 403, 303, 404, 303)
PAGE_OWN = codes(303, 200, 200, 404, 404, 404)  # the patient's own pages

MATRIX: dict[tuple[str, str], tuple[Req, dict[str, int]]] = {
    # --- public: docs, schema, static, health ----------------------------------------------------
    ("GET", "/healthz"): (Req("/healthz"), everyone(200)),
    ("GET", "/openapi.json"): (Req("/openapi.json"), everyone(200)),
    ("GET", "/docs"): (Req("/docs"), everyone(200)),
    ("GET", "/docs/oauth2-redirect"): (Req("/docs/oauth2-redirect"), everyone(200)),
    ("GET", "/static"): (Req("/static/ldncare.css"), everyone(200)),
    ("GET", "/static/apidocs"): (Req("/static/apidocs/swagger-ui-bundle.js"), everyone(200)),
    ("GET", "/favicon.ico"): (Req("/favicon.ico"), everyone(200)),
    # --- API: session ----------------------------------------------------------------------------
    ("GET", "/api/session"): (Req("/api/session"), everyone(200)),
    ("POST", "/api/session"): (
        Req("/api/session", json={"username": "bert", "password": PASSWORD}),
        everyone(200),
    ),
    ("DELETE", "/api/session"): (Req("/api/session"), codes(401, 204, 204, 204, 204, 204)),
    # --- API: patients ---------------------------------------------------------------------------
    ("GET", "/api/patients"): (Req("/api/patients"), codes(401, 200, 200, 200, 200, 200)),
    ("POST", "/api/patients"): (
        Req("/api/patients", json={"patient": patient_file("matrix-api")}),
        codes(401, 403, 403, 201, 201, 201),
    ),
    ("GET", "/api/patients/{patient_id}"): (Req("/api/patients/{anna}"), API_PATIENT),
    ("POST", "/api/patients/{patient_id}/assessments"): (
        Req("/api/patients/{anna}/assessments", json={"patient": patient_file("anna")}),
        API_CLINICAL_WRITE,
    ),
    ("GET", "/api/patients/{patient_id}/plans"): (Req("/api/patients/{anna}/plans"), API_PATIENT),
    ("GET", "/api/patients/{patient_id}/plans/latest"): (
        Req("/api/patients/{anna}/plans/latest"),
        API_PATIENT,
    ),
    ("POST", "/api/patients/{patient_id}/plans"): (
        Req("/api/patients/{anna}/plans", json={"reason": "access matrix"}),
        API_CLINICAL_WRITE,
    ),
    # --- API: diary (the patient writes their own) -----------------------------------------------
    ("GET", "/api/patients/{patient_id}/diary"): (Req("/api/patients/{anna}/diary"), API_PATIENT),
    ("POST", "/api/patients/{patient_id}/diary"): (
        Req("/api/patients/{anna}/diary", json={"day": "2026-03-01", "pain_avg": 5}),
        API_PATIENT,
    ),
    ("POST", "/api/patients/{patient_id}/diary/import"): (
        Req("/api/patients/{anna}/diary/import", content=DIARY_CSV, content_type="text/csv"),
        API_PATIENT,
    ),
    ("GET", "/api/patients/{patient_id}/diary.csv"): (
        Req("/api/patients/{anna}/diary.csv"),
        API_PATIENT,
    ),
    ("GET", "/api/patients/{patient_id}/response"): (
        Req("/api/patients/{anna}/response"),
        API_PATIENT,
    ),
    ("GET", "/api/patients/{patient_id}/handout.pdf"): (
        Req("/api/patients/{anna}/handout.pdf"),
        API_PATIENT,
    ),
    ("GET", "/api/patients/{patient_id}/calendar.ics"): (
        Req("/api/patients/{anna}/calendar.ics"),
        API_PATIENT,
    ),
    # --- API: review notes are for clinicians only ----------------------------------------------
    ("GET", "/api/patients/{patient_id}/review-notes"): (
        Req("/api/patients/{anna}/review-notes"),
        codes(401, 403, 403, 200, 404, 200),
    ),
    ("POST", "/api/patients/{patient_id}/review-notes"): (
        Req("/api/patients/{anna}/review-notes", json={"text": "matrix note"}),
        API_CLINICAL_WRITE,
    ),
    # --- API: evidence, questions, audit ---------------------------------------------------------
    # The bibliography is public knowledge (the same as `ldncare sources`).
    ("GET", "/api/sources"): (Req("/api/sources"), everyone(200)),
    ("GET", "/api/sources/{source_id}"): (Req("/api/sources/label_naltrexone"), everyone(200)),
    ("POST", "/api/ask"): (
        Req(
            "/api/ask",
            json={"question": "Can a patient on tramadol take LDN?", "patient_id": "{anna}"},
        ),
        codes(401, 200, 404, 200, 404, 200),
    ),
    ("GET", "/api/audit"): (Req("/api/audit"), codes(401, 403, 403, 403, 403, 200)),
    ("GET", "/api/admin/cds-cards"): (
        Req("/api/admin/cds-cards"),
        codes(401, 403, 403, 403, 403, 200),
    ),
    # --- pages: login and logout -----------------------------------------------------------------
    ("GET", "/login"): (Req("/login"), everyone(200)),
    # Anonymous has no session, hence no CSRF token: the form is refused as expired.
    ("POST", "/login"): (
        Req("/login", form={"username": "bert", "password": PASSWORD}),
        codes(403, 303, 303, 303, 303, 303),
    ),
    ("POST", "/logout"): (Req("/logout", form={}), codes(403, 303, 303, 303, 303, 303)),
    # Two-step login: without a half-done login (password first) the code and enrolment pages
    # send everyone back to /login.
    ("GET", "/login/code"): (Req("/login/code"), everyone(303)),
    ("POST", "/login/code"): (Req("/login/code", form={"code": "123456"}), everyone(303)),
    ("GET", "/login/enrol"): (Req("/login/enrol"), everyone(303)),
    ("POST", "/login/enrol"): (Req("/login/enrol", form={"code": "123456"}), everyone(303)),
    # Single sign-on: not set up on this server (no LDNCARE_OIDC_ISSUER).
    ("GET", "/login/sso"): (Req("/login/sso"), everyone(404)),
    ("GET", "/login/sso/callback"): (Req("/login/sso/callback?code=x&state=y"), everyone(404)),
    # Setting it up: staff accounts only.
    ("GET", "/account/totp"): (Req("/account/totp"), codes(303, 403, 403, 200, 200, 200)),
    ("POST", "/account/totp/start"): (  # no password typed again: refused (review L6)
        Req("/account/totp/start", form={}),
        codes(303, 403, 403, 401, 401, 401),
    ),
    ("POST", "/account/totp/confirm"): (  # no setup page of a started enrolment (review H1)
        Req("/account/totp/confirm", form={"code": "abc"}),
        codes(303, 403, 403, 409, 409, 409),
    ),
    # --- pages: clinician ------------------------------------------------------------------------
    ("GET", "/"): (Req("/"), codes(303, 303, 303, 200, 200, 200)),
    ("GET", "/patients/new"): (Req("/patients/new"), codes(303, 403, 403, 200, 200, 200)),
    ("POST", "/patients/new"): (
        Req("/patients/new", form=NEW_PATIENT_FORM),
        codes(303, 403, 403, 303, 303, 303),
    ),
    ("GET", "/patients/{patient_id}"): (Req("/patients/{anna}"), PAGE_CLINICAL),
    # The CDS Hooks card link (by external id): a redirect to the page for who may see it.
    ("GET", "/patients/by-external/{external_id}"): (
        Req("/patients/by-external/anna"),
        PAGE_CLINICAL_POST,
    ),
    ("GET", "/patients/{patient_id}/assess"): (Req("/patients/{anna}/assess"), PAGE_CLINICAL),
    ("POST", "/patients/{patient_id}/assess"): (
        Req("/patients/{anna}/assess", form={"conditions": "Pudendal neuralgia", "sex": "female"}),
        PAGE_CLINICAL_POST,
    ),
    ("GET", "/patients/{patient_id}/adjust"): (Req("/patients/{anna}/adjust"), PAGE_CLINICAL),
    ("POST", "/patients/{patient_id}/adjust"): (
        Req("/patients/{anna}/adjust", form={"reason": "access matrix"}),
        PAGE_CLINICAL_POST,
    ),
    ("POST", "/patients/{patient_id}/review"): (
        Req("/patients/{anna}/review", form={"text": "matrix page note"}),
        PAGE_CLINICAL_POST,
    ),
    ("POST", "/patients/{patient_id}/diary"): (
        Req("/patients/{anna}/diary", form={"day": "2026-02-28", "pain_avg": "3"}),
        PAGE_CLINICAL_POST,
    ),
    ("POST", "/patients/{patient_id}/diary/import"): (
        Req(
            "/patients/{anna}/diary/import",
            form={},
            files={"file": ("diary.csv", DIARY_CSV, "text/csv")},
        ),
        PAGE_CLINICAL_POST,
    ),
    # --- pages: the patient's own ----------------------------------------------------------------
    ("GET", "/me"): (Req("/me"), PAGE_OWN),
    ("GET", "/me/diary"): (Req("/me/diary"), PAGE_OWN),
    ("POST", "/me/diary"): (
        Req("/me/diary", form={"day": "2026-02-26", "pain_avg": "6"}),
        codes(303, 303, 303, 404, 404, 404),
    ),
    ("GET", "/me/help"): (Req("/me/help"), PAGE_OWN),
    ("GET", "/sources"): (Req("/sources"), codes(303, 200, 200, 200, 200, 200)),
    # --- pages: administrators ------------------------------------------------------------------
    ("GET", "/admin/users"): (Req("/admin/users"), codes(303, 403, 403, 403, 403, 200)),
    ("GET", "/admin/cds-cards"): (Req("/admin/cds-cards"), codes(303, 403, 403, 403, 403, 200)),
    ("POST", "/admin/users/{username}/disable"): (
        Req("/admin/users/clin2/disable", form={}),
        codes(303, 403, 403, 403, 403, 303),
    ),
    ("POST", "/admin/users/{username}/enable"): (
        Req("/admin/users/clin2/enable", form={}),
        codes(303, 403, 403, 403, 403, 303),
    ),
    ("GET", "/ask"): (
        Req("/ask?q=Can+a+patient+on+tramadol+take+LDN%3F&patient={anna}"),
        codes(303, 200, 404, 200, 404, 200),
    ),
    ("GET", "/sources/{source_id}"): (
        Req("/sources/label_naltrexone"),
        codes(303, 200, 200, 200, 200, 200),
    ),
    # --- CDS Hooks: a web session is no credential; only a client JWT is --------------------------
    ("GET", "/cds-services"): (Req("/cds-services"), everyone(200)),
    ("OPTIONS", "/cds-services"): (Req("/cds-services"), everyone(204)),
    ("OPTIONS", "/cds-services/{rest:path}"): (
        Req("/cds-services/ldncare-patient-view"),
        everyone(204),
    ),
    ("POST", "/cds-services/{service_id}"): (
        Req("/cds-services/ldncare-patient-view", json=CDS_CALL),
        everyone(401),
    ),
    ("POST", "/cds-services/{service_id}/feedback"): (
        Req("/cds-services/ldncare-patient-view/feedback", json={"feedback": []}),
        everyone(401),
    ),
}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every route the app serves, HEAD aside."""
    found: set[tuple[str, str]] = set()

    def add(path: str, route: Any) -> None:
        methods = getattr(route, "methods", None) or {"GET"}  # a Mount serves GET
        found.update((m, path) for m in methods if m != "HEAD")

    def walk(routes: list[Any]) -> None:
        for route in routes:
            if hasattr(route, "effective_candidates"):  # FastAPI's included router
                for candidate in route.effective_candidates():
                    if hasattr(candidate, "effective_candidates"):
                        walk([candidate])
                    else:
                        add(candidate.path, candidate.original_route)
            elif hasattr(route, "path"):
                add(route.path, route)

    walk(list(app.routes))
    return found


def test_every_route_has_a_row(hospital: Hospital) -> None:
    served = app_routes(hospital.app)
    missing = sorted(served - MATRIX.keys())
    stale = sorted(MATRIX.keys() - served)
    assert not missing, f"routes without a row in the access matrix: {missing}"
    assert not stale, f"rows for routes the app no longer serves: {stale}"


def _send(client: TestClient, method: str, req: Req, hospital: Hospital, role: str) -> Any:
    path = req.path.replace("{anna}", str(hospital.anna))
    login = hospital.logins[role]
    kwargs: dict[str, Any] = {"headers": dict(req.headers)}
    if req.json is not None:
        body = json.loads(json.dumps(req.json).replace("{anna}", str(hospital.anna)))
        kwargs["json"] = body
    if req.form is not None:
        kwargs["data"] = {**req.form, **({"csrf_token": login.csrf} if login.csrf else {})}
    if req.files is not None:
        kwargs["files"] = req.files
    if req.content is not None:
        kwargs["content"] = req.content
        kwargs["headers"]["Content-Type"] = req.content_type or "application/octet-stream"
    return client.request(method, path, **kwargs)


LOGOUTS = {("DELETE", "/api/session"), ("POST", "/logout")}


@pytest.mark.parametrize("role", ORDER)
def test_access_matrix(role: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LDNCARE_CDS_DEMO", raising=False)
    monkeypatch.delenv("LDNCARE_CDS_TRUSTED_ISSUERS", raising=False)
    hospital = build_hospital(tmp_path)
    wrong: list[str] = []
    for (method, template), (req, expected) in MATRIX.items():
        # A fresh client per request: a logout or login answer must not change the next row.
        with hospital.client(role) as client:
            r = _send(client, method, req, hospital, role)
        if (method, template) in LOGOUTS:  # it ended the account's sessions: start a new one
            hospital.log_in(role)
        if r.status_code != expected[role]:
            wrong.append(f"{method} {template}: {r.status_code} (expected {expected[role]})")
        elif r.status_code == 303 and role == "anonymous" and method == "GET":
            assert r.headers["location"] == "/login", template
    assert not wrong, f"{role} ({ROLES[role]}):\n" + "\n".join(wrong)


def test_refused_patient_reads_are_audited(hospital: Hospital) -> None:
    from ldncare.store import repository

    with hospital.client("clinician_2") as client:
        assert client.get(f"/api/patients/{hospital.anna}").status_code == 404
    denied = [
        a
        for a in repository.audit_entries(hospital.engine)
        if a.action == "denied" and a.who == "web:clin2"
    ]
    assert denied and denied[-1].entity_id == str(hospital.anna)


# --- CDS Hooks: the 401 above is the JWT check, and demo mode is the only way around it ------


ISSUER = "https://ehr.example.org"
CDS_SECRET = "a-test-only-shared-secret-of-enough-length"


def _token(service: str, **override: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": f"http://testserver/cds-services/{service}",
        "exp": now + 120,
        "iat": now,
        "jti": f"jti-{time.time_ns()}",
    }
    claims.update(override)
    return jwt.encode(claims, CDS_SECRET, "HS256")


@pytest.fixture
def cds_hospital(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Hospital:
    monkeypatch.delenv("LDNCARE_CDS_DEMO", raising=False)
    monkeypatch.setenv(
        "LDNCARE_CDS_TRUSTED_ISSUERS", json.dumps({ISSUER: {"hs256_secret": CDS_SECRET}})
    )
    return build_hospital(tmp_path)


CDS_CASES: list[tuple[str, Callable[[], dict[str, str]], int]] = [
    ("valid JWT", lambda: {"Authorization": f"Bearer {_token('ldncare-patient-view')}"}, 200),
    ("no header", lambda: {}, 401),
    ("not a JWT", lambda: {"Authorization": "Bearer not-a-jwt"}, 401),
    (
        "other audience",
        lambda: {"Authorization": f"Bearer {_token('ldncare-order-sign')}"},
        401,
    ),
    (
        "expired",
        lambda: {
            "Authorization": "Bearer "
            + _token("ldncare-patient-view", exp=int(time.time()) - 3600, iat=0)
        },
        401,
    ),
    (
        "untrusted issuer",
        lambda: {"Authorization": f"Bearer {_token('ldncare-patient-view', iss='https://evil')}"},
        401,
    ),
]


@pytest.mark.parametrize(("case", "headers", "status"), CDS_CASES, ids=[c[0] for c in CDS_CASES])
def test_cds_hooks_needs_a_valid_client_jwt(
    cds_hospital: Hospital, case: str, headers: Callable[[], dict[str, str]], status: int
) -> None:
    # Even a logged-in administrator's session does not replace the JWT.
    with cds_hospital.client("admin") as client:
        r = client.post("/cds-services/ldncare-patient-view", json=CDS_CALL, headers=headers())
    assert r.status_code == status, r.text
    if status == 401:
        assert r.json()["error"]


def test_cds_hooks_jwt_cannot_be_replayed(cds_hospital: Hospital) -> None:
    headers = {"Authorization": f"Bearer {_token('ldncare-patient-view')}"}
    with cds_hospital.client("anonymous") as client:
        first = client.post("/cds-services/ldncare-patient-view", json=CDS_CALL, headers=headers)
        assert first.status_code == 200, first.text
        r = client.post("/cds-services/ldncare-patient-view", json=CDS_CALL, headers=headers)
    assert r.status_code == 401 and "already used" in r.json()["error"]


def test_cds_hooks_without_jwt_only_in_demo_mode(tmp_path: Any) -> None:
    hospital = build_hospital(tmp_path, demo=True)
    with hospital.client("anonymous") as client:
        r = client.post("/cds-services/ldncare-patient-view", json=CDS_CALL)
    assert r.status_code == 200 and "cards" in r.json()
