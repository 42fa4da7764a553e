"""Second factor pages: the code asked after the password, enrolment (during a login when the
settings require it, or from the account page), and the recovery codes shown once.

The half-done login lives in its own short-lived signed cookie (``ldncare_2fa``, see
:class:`ldncare.web.auth.Sessions`); the session cookie is written only once the code is right.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ldncare.web import csrf, deps, totp
from ldncare.web.accounts import recovery_codes_left, user_by_id
from ldncare.web.auth import (
    attempt_second_factor,
    confirm_enrolment,
    enrolment_secret,
    new_token,
    require_clinician,
)
from ldncare.web.templating import page

router = APIRouter(include_in_schema=False)


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _anonymous_page(request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
    """A page of the login flow: the anonymous session's CSRF token, made if missing."""
    token = request.state.csrf or new_token()
    response = page(request, name, status_code=status, csrf=token, user=None, **ctx)
    if not request.state.csrf:
        request.app.state.sessions.write(response, None, token)
    return response


def _pending(request: Request, stage: str) -> dict[str, Any] | None:
    data = request.app.state.sessions.read_pending(request)
    return data if data is not None and data.get("s") == stage else None


async def _login_form(request: Request) -> dict[str, str] | None:
    form = await request.form(max_files=0, max_fields=10)
    if not request.state.csrf or form.get("csrf_token") != request.state.csrf:
        return None
    return {"code": str(form.get("code") or "")[:64]}


def _logged_in(request: Request, user_id: int, generation: int, role: str) -> Response:
    response = RedirectResponse("/me" if role == "patient" else "/", status_code=303)
    request.app.state.sessions.clear_pending(response)
    request.app.state.sessions.write(response, user_id, generation=generation)
    return response


def _to_login() -> Response:
    return RedirectResponse("/login", status_code=303)


@router.get("/login/code")
async def code_form(request: Request) -> Response:
    if _pending(request, "code") is None:
        return _to_login()
    return _anonymous_page(request, "totp_code.html.j2")


@router.post("/login/code")
async def code_submit(request: Request) -> Response:
    pending = _pending(request, "code")
    if pending is None:
        return _to_login()
    form = await _login_form(request)
    if form is None:
        return _anonymous_page(
            request, "totp_code.html.j2", 403, error="The form expired; please try again."
        )
    attempt = await run_in_threadpool(
        attempt_second_factor,
        deps.engine(request),
        request.app.state.limiter,
        _ip(request),
        pending["u"],
        pending["g"],
        form["code"],
    )
    if attempt.retry_after:
        error = f"Too many failed attempts. Try again in {attempt.retry_after} s."
        return _anonymous_page(request, "totp_code.html.j2", 429, error=error)
    found = attempt.user
    if found is None:
        return _anonymous_page(
            request, "totp_code.html.j2", 401, error="Wrong or already used code."
        )
    return _logged_in(request, found.id, found.session_generation, found.role)


def _enrol_page(
    request: Request, username: str, secret: str, action: str, status: int = 200, **ctx: Any
) -> Response:
    uri = totp.otpauth_uri(secret, username)
    if action == "/login/enrol":
        return _anonymous_page(
            request, "totp_enrol.html.j2", status, secret=secret, uri=uri, action=action, **ctx
        )
    return page(request, "totp_enrol.html.j2", status, secret=secret, uri=uri, action=action, **ctx)


@router.get("/login/enrol")
async def enrol_form(request: Request) -> Response:
    pending = _pending(request, "enrol")
    if pending is None:
        return _to_login()
    found = await run_in_threadpool(
        enrolment_secret, deps.engine(request), pending["u"], pending["g"]
    )
    if found is None:
        return _to_login()
    return _enrol_page(request, found[0], found[1], "/login/enrol", required=True)


@router.post("/login/enrol")
async def enrol_submit(request: Request) -> Response:
    pending = _pending(request, "enrol")
    if pending is None:
        return _to_login()
    form = await _login_form(request)
    engine = deps.engine(request)
    found = await run_in_threadpool(enrolment_secret, engine, pending["u"], pending["g"])
    if found is None:
        return _to_login()
    if form is None:
        error = "The form expired; please try again."
        return _enrol_page(request, *found, "/login/enrol", 403, error=error, required=True)
    done = await run_in_threadpool(
        confirm_enrolment,
        engine,
        request.app.state.limiter,
        _ip(request),
        pending["u"],
        pending["g"],
        form["code"],
    )
    if done.user is None:
        status, error = 401, "That code does not match; check the phone's clock and try again."
        if done.retry_after:
            status, error = 429, f"Too many failed attempts. Try again in {done.retry_after} s."
        return _enrol_page(request, *found, "/login/enrol", status, error=error, required=True)
    user = done.user
    response = _anonymous_page(
        request, "totp_codes.html.j2", codes=done.recovery_codes, next_url="/"
    )
    request.app.state.sessions.clear_pending(response)
    request.app.state.sessions.write(response, user.id, generation=user.session_generation)
    return response


# --- the account page (logged in) ----------------------------------------------------------------


@router.get("/account/totp")
async def account_page(request: Request) -> Response:
    user = deps.user(request)
    require_clinician(user)
    engine = deps.engine(request)
    row = await run_in_threadpool(user_by_id, engine, user.id)
    enabled = bool(row and row.totp_enabled)
    left = await run_in_threadpool(recovery_codes_left, engine, user.id) if enabled else 0
    return page(request, "account_totp.html.j2", enabled=enabled, codes_left=left)


@router.post("/account/totp/start")
async def account_start(request: Request) -> Response:
    user = deps.user(request)
    require_clinician(user)
    form = await request.form(max_files=0, max_fields=10)
    csrf.check_form(request, form)
    found = await run_in_threadpool(enrolment_secret, deps.engine(request), user.id, None)
    if found is None:
        return RedirectResponse("/account/totp", status_code=303)
    return _enrol_page(request, found[0], found[1], "/account/totp/confirm")


@router.post("/account/totp/confirm")
async def account_confirm(request: Request) -> Response:
    user = deps.user(request)
    require_clinician(user)
    form = await request.form(max_files=0, max_fields=10)
    csrf.check_form(request, form)
    engine = deps.engine(request)
    done = await run_in_threadpool(
        confirm_enrolment,
        engine,
        request.app.state.limiter,
        _ip(request),
        user.id,
        None,
        str(form.get("code") or "")[:64],
    )
    if done.user is None:
        found = await run_in_threadpool(enrolment_secret, engine, user.id, None)
        if found is None:
            return RedirectResponse("/account/totp", status_code=303)
        status, error = 401, "That code does not match; check the phone's clock and try again."
        if done.retry_after:
            status, error = 429, f"Too many failed attempts. Try again in {done.retry_after} s."
        return _enrol_page(request, *found, "/account/totp/confirm", status, error=error)
    return page(request, "totp_codes.html.j2", codes=done.recovery_codes, next_url="/")
