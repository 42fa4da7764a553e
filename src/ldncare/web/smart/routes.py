"""The SMART on FHIR pages: launch, callback, the launch patient's plan, follow, end.

EHR launch: the EHR opens ``/smart/launch?iss=...&launch=...``; standalone launch: the clinician
opens ``/smart/launch`` (``iss`` optional when one EHR is configured) and picks the patient at
the EHR. Both continue at ``/smart/callback`` (the registered redirect URI), then
``/smart/patient`` shows the plan made from the EHR's record (SMART App Launch 2.x,
https://hl7.org/fhir/smart-app-launch/app-launch.html). Each failing step has its own page
(:mod:`ldncare.web.smart.errors`).
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ldncare.errors import InvalidInput
from ldncare.render.report import build_report
from ldncare.web import deps
from ldncare.web.service import EhrSource, follow_patient, linked_patient, plan_contract
from ldncare.web.smart import oauth
from ldncare.web.smart.ehr_record import AccessExpired, patient_from_record, read_record
from ldncare.web.smart.errors import (
    ConsentDenied,
    FhirServerDown,
    FormExpired,
    IssuerRefused,
    MissingScope,
    SessionExpired,
    SmartError,
    StateMismatch,
)
from ldncare.web.smart.scopes import missing_reads, requested_scopes
from ldncare.web.smart.sessions import SmartSession, SmartSessions
from ldncare.web.smart.settings import SmartSettings
from ldncare.web.templating import page
from ldncare.web.views import schedule_calendar

router = APIRouter(prefix="/smart", include_in_schema=False)
#: Seconds before ``expires_at`` at which an access token is renewed rather than used.
LEEWAY = 30


def _settings(request: Request) -> SmartSettings:
    settings: SmartSettings = request.app.state.smart
    return settings


def _sessions(request: Request) -> SmartSessions:
    sessions: SmartSessions = request.app.state.smart_sessions
    return sessions


def _error_page(request: Request, error: SmartError, *, end: bool = False) -> Response:
    response = page(
        request,
        "smart_error.html.j2",
        status_code=error.status,
        title=error.title,
        problem=error.message,
        kind=type(error).__name__,
        ended=end,
        retry=isinstance(error, FhirServerDown),
    )
    if end:
        _sessions(request).end(request, response)
    return response


def _issuer(request: Request, iss: str | None, *, standalone: bool) -> str:
    allowed = _settings(request).issuers
    if not iss:
        if standalone and len(allowed) == 1:
            return allowed[0]
        raise IssuerRefused(
            "the launch did not say which EHR it came from (no iss parameter); open ldncare "
            "from the EHR again"
        )
    iss = iss.rstrip("/")
    if iss not in allowed:
        raise IssuerRefused(
            "ldncare is not registered with the EHR at this address, so it did not contact it. "
            "An administrator can add it to LDNCARE_SMART_ALLOWED_ISSUERS (docs/SMART.md)."
        )
    return iss


@router.get("/launch")
async def launch(request: Request) -> Response:
    """Start an EHR launch (``iss`` and ``launch`` given) or a standalone launch."""
    params = request.query_params
    launch_value = params.get("launch") or None
    standalone = launch_value is None
    try:
        iss = _issuer(request, params.get("iss"), standalone=standalone)
        settings = _settings(request)
        discovery: oauth.DiscoveryCache = request.app.state.smart_discovery
        config = await discovery.get(iss, settings)
        scope = requested_scopes(standalone=standalone, v1=config.v1_scopes_only)
        verifier = oauth.new_verifier()
        url, state = await oauth.authorization_url(
            settings, config, iss=iss, scope=scope, code_verifier=verifier, launch=launch_value
        )
    except SmartError as exc:
        return _error_page(request, exc)
    response = RedirectResponse(url, status_code=302)
    _sessions(request).start(
        response,
        SmartSession(
            iss=iss,
            authorization_endpoint=config.authorization_endpoint,
            token_endpoint=config.token_endpoint,
            standalone=standalone,
            scope=scope,
            state=state,
            code_verifier=verifier,
            created=time.monotonic(),
            oidc_issuer=config.issuer,
            jwks_uri=config.jwks_uri,
        ),
    )
    return response


@router.get("/callback")
async def callback(request: Request) -> Response:
    """The redirect URI: check ``state``, then trade the code (and PKCE verifier) for tokens."""
    params = request.query_params
    session = _sessions(request).get(request)
    try:
        if session is None:
            raise StateMismatch(
                "no launch from this browser is waiting for an answer (it may have expired). "
                "Open ldncare from the EHR again."
            )
        state = params.get("state") or ""
        if not session.state or not secrets.compare_digest(state, session.state):
            raise StateMismatch(
                "the answer from the EHR does not match the launch this browser started. "
                "Open ldncare from the EHR again."
            )
        session.state = ""  # one answer per launch: a replayed callback is refused
        error = params.get("error")
        if error:
            message = oauth.CONSENT_ERRORS.get(
                error, f"The EHR refused the sign-in ({error[:64]})."
            )
            raise ConsentDenied(
                f"{message} ldncare read nothing. Ask the EHR administrator if you expected access."
            )
        code = params.get("code")
        if not code:
            raise StateMismatch("the EHR's answer has no authorization code")
        token = await oauth.exchange_code(
            _settings(request),
            session.token_endpoint,
            code=code,
            code_verifier=session.code_verifier,
        )
        # RFC 6749 5.1: no scope in the response means the requested scope was granted.
        token.setdefault("scope", session.scope)
        patient_id = token.get("patient")
        if not isinstance(patient_id, str) or not patient_id:
            raise MissingScope(
                "the EHR did not say which patient is open (no patient in the launch context)"
            )
        id_token = token.get("id_token")
        if isinstance(id_token, str) and session.oidc_issuer and session.jwks_uri:
            claims = await oauth.verify_id_token(
                id_token,
                issuer=session.oidc_issuer,
                jwks_uri=session.jwks_uri,
                settings=_settings(request),
            )
            fhir_user = claims.get("fhirUser")
            session.fhir_user = fhir_user[:512] if isinstance(fhir_user, str) else None
        missing = missing_reads(str(token["scope"]))
        if missing:
            raise MissingScope(
                "the EHR did not allow ldncare to read the patient's "
                + ", ".join(missing)
                + ". A plan made without them could miss a contraindication, so none is shown. "
                "Ask the EHR administrator to grant the scopes listed in docs/SMART.md."
            )
    except SmartError as exc:
        return _error_page(request, exc, end=True)
    session.token = token
    session.patient_id = patient_id
    session.card_topic = card_topic(token.get("appContext"))
    session.code_verifier = ""
    _sessions(request).establish(request)
    return RedirectResponse("/smart/patient", status_code=303)


async def _record(request: Request, session: SmartSession) -> dict[str, Any]:
    """The patient's record, renewing the access token when it expired (once)."""
    settings = _settings(request)
    assert session.token is not None and session.patient_id is not None
    expires_at = session.token.get("expires_at")
    if isinstance(expires_at, int | float) and expires_at - LEEWAY <= time.time():
        session.token = await oauth.refresh(settings, session.token_endpoint, session.token)
    try:
        return await read_record(
            session.iss, str(session.token["access_token"]), session.patient_id, settings
        )
    except AccessExpired:
        session.token = await oauth.refresh(settings, session.token_endpoint, session.token)
        return await read_record(
            session.iss, str(session.token["access_token"]), session.patient_id, settings
        )


def card_topic(app_context: object) -> str | None:
    """The card topic named by an ``appContext`` our CDS cards set (``{"topic", "display"}``);
    anything else an EHR passes is ignored."""
    if not isinstance(app_context, str) or len(app_context) > 2000:
        return None
    try:
        data = json.loads(app_context)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    display = data.get("display") or data.get("topic")
    return display[:200] if isinstance(display, str) and display else None


def _active(request: Request) -> SmartSession:
    session = _sessions(request).get(request)
    if session is None or session.token is None or session.patient_id is None:
        raise SessionExpired(
            "there is no open session with an EHR in this browser (it ended or expired). "
            "Open ldncare from the EHR again."
        )
    return session


@router.get("/patient")
async def launch_patient(request: Request) -> Response:
    """The plan of the patient in context, read from the EHR (nothing stored)."""
    try:
        session = _active(request)
        bundle = await _record(request, session)
    except SmartError as exc:
        return _error_page(request, exc, end=isinstance(exc, SessionExpired))
    assert session.patient_id is not None
    today = deps.today(request)
    try:
        patient = patient_from_record(bundle, session.patient_id)
        contract = await run_in_threadpool(
            plan_contract, patient, start=None, today=today, nantes=None
        )
    except InvalidInput as exc:
        return page(
            request,
            "smart_error.html.j2",
            status_code=422,
            title="The EHR's record could not be read",
            problem=f"{exc}. ldncare shows no plan rather than one made from a misread record.",
            kind="RecordUnreadable",
        )
    session.patient = patient  # for "follow": the record exactly as shown
    session.retrieved_at = datetime.now(UTC)
    # Only the clinic's own follow is shown, and only to its logged-in clinician: a launch
    # alone (no ldncare login) learns nothing about what ldncare stores.
    user = deps.optional_user(request)
    followed = (
        await run_in_threadpool(
            linked_patient, deps.engine(request), session.iss, session.patient_id, user.clinic_id
        )
        if user is not None and user.is_clinician
        else None
    )
    return page(
        request,
        "smart_patient.html.j2",
        patient=patient,
        iss=session.iss,
        contract=contract,
        report=build_report(contract),
        months=schedule_calendar(contract, today),
        smart_csrf=session.csrf,
        followed=followed,
        retrieved_at=session.retrieved_at,
        card_topic=session.card_topic,
        fhir_user=session.fhir_user,
    )


async def _smart_form(request: Request, session: SmartSession) -> None:
    form = await request.form(max_fields=5)
    supplied = form.get("csrf_token")
    if not isinstance(supplied, str) or not secrets.compare_digest(supplied, session.csrf):
        raise FormExpired(
            "the form has expired or did not come from this page; reload the page and try again"
        )


@router.post("/follow")
async def follow(request: Request) -> Response:
    """Store the patient shown (plan v1) with where it came from, for diary and review."""
    try:
        session = _active(request)
        await _smart_form(request, session)
    except SmartError as exc:
        return _error_page(request, exc)
    if session.patient is None or session.retrieved_at is None:
        return RedirectResponse("/smart/patient", status_code=303)
    user = deps.optional_user(request)
    if user is None or not user.is_clinician:
        return page(
            request,
            "smart_error.html.j2",
            status_code=401,
            title="Log in to ldncare to follow this patient",
            problem="Following stores the patient in ldncare under your clinic, so it needs "
            "your ldncare clinician account. Log in in this browser, then come back to this "
            "page and follow again; the plan above stays as it is.",
            kind="LoginNeeded",
            login=True,
        )
    assert session.patient_id is not None
    today = deps.today(request)
    patient = session.patient
    source = EhrSource(
        iss=session.iss,
        fhir_patient_id=session.patient_id,
        fhir_user=session.fhir_user,
        retrieved_at=session.retrieved_at,
    )
    try:
        contract = await run_in_threadpool(
            plan_contract, patient, start=None, today=today, nantes=None
        )
        patient_id = await run_in_threadpool(
            follow_patient,
            deps.engine(request),
            patient,
            source,
            plan_contract=contract,
            clinic_id=user.clinic_id,
            actor=user.actor,
        )
    except InvalidInput as exc:
        return page(
            request,
            "smart_error.html.j2",
            status_code=409,
            title="The patient could not be stored",
            problem=str(exc),
            kind="FollowRefused",
        )
    session.followed = patient_id
    return RedirectResponse(f"/patients/{patient_id}", status_code=303)


@router.post("/end")
async def end(request: Request) -> Response:
    """End the SMART session: its tokens are forgotten on the server."""
    session = _sessions(request).get(request)
    if session is not None:
        try:
            await _smart_form(request, session)
        except SmartError as exc:
            return _error_page(request, exc)
    response = page(
        request,
        "smart_error.html.j2",
        status_code=200,
        title="Session with the EHR ended",
        problem="ldncare no longer holds any access to the EHR for this browser.",
        kind="Ended",
    )
    _sessions(request).end(request, response)
    return response
