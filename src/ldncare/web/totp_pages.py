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
    begin_enrolment,
    check_password_again,
    confirm_enrolment,
    enrolment_in_progress,
    enrolment_key,
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
    return {"code": str(form.get("code") or "")[:64], "key": str(form.get("key") or "")[:64]}


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
    if found is None and attempt.refused:
        error = (
            "This account is disabled; ask your administrator."
            if attempt.refused == "disabled"
            else "This login has ended (the account was logged out everywhere or changed). "
            "Log in again."
        )
        response = _anonymous_page(request, "totp_code.html.j2", 403, error=error, ended=True)
        request.app.state.sessions.clear_pending(response)
        return response
    if found is None:
        return _anonymous_page(
            request, "totp_code.html.j2", 401, error="Wrong or already used code."
        )
    return _logged_in(request, found.id, found.session_generation, found.role)


def _enrol_page(
    request: Request, username: str, secret: str, action: str, status: int = 200, **ctx: Any
) -> Response:
    uri = totp.otpauth_uri(secret, username)
    ctx.update(secret=secret, uri=uri, action=action, key=enrolment_key(secret))
    if action == "/login/enrol":
        return _anonymous_page(request, "totp_enrol.html.j2", status, **ctx)
    return page(request, "totp_enrol.html.j2", status, **ctx)


_KEY_CHANGED = (
    "Setting up was started again elsewhere since that page was shown, so its key no longer "
    "counts. Add this new key instead (remove the old one from the app)."
)


@router.get("/login/enrol")
async def enrol_form(request: Request) -> Response:
    pending = _pending(request, "enrol")
    if pending is None:
        return _to_login()
    found = await run_in_threadpool(
        begin_enrolment, deps.engine(request), pending["u"], pending["g"]
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
    key = form["key"] if form else ""
    found = await run_in_threadpool(enrolment_in_progress, engine, pending["u"], pending["g"], key)
    if found is None:
        fresh = await run_in_threadpool(begin_enrolment, engine, pending["u"], pending["g"])
        if fresh is None:
            return _to_login()
        error = _KEY_CHANGED if form else "The form expired; please try again."
        return _enrol_page(request, *fresh, "/login/enrol", 409, error=error, required=True)
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
        key=key,
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
    return await _account_page(request)


async def _account_page(request: Request, status: int = 200, **ctx: Any) -> Response:
    user = deps.user(request)
    engine = deps.engine(request)
    row = await run_in_threadpool(user_by_id, engine, user.id)
    enabled = bool(row and row.totp_enabled)
    sso = bool(row and row.oidc_issuer)
    left = await run_in_threadpool(recovery_codes_left, engine, user.id) if enabled else 0
    return page(
        request,
        "account_totp.html.j2",
        status_code=status,
        enabled=enabled,
        sso=sso,
        codes_left=left,
        **ctx,
    )


@router.post("/account/totp/start")
async def account_start(request: Request) -> Response:
    """Setting up asks for the password again: a stolen session cookie alone cannot tie the
    account to someone else's phone."""
    user = deps.user(request)
    require_clinician(user)
    form = await request.form(max_files=0, max_fields=10)
    csrf.check_form(request, form)
    engine = deps.engine(request)
    password = str(form.get("password") or "")[:256]
    wait = await run_in_threadpool(
        check_password_again, engine, request.app.state.limiter, _ip(request), user, password
    )
    if wait:
        error = f"Too many failed attempts. Try again in {wait} s."
        return await _account_page(request, 429, error=error)
    if wait is not None:
        return await _account_page(request, 401, error="That is not your password.")
    found = await run_in_threadpool(begin_enrolment, engine, user.id, None)
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
    key = str(form.get("key") or "")[:64]
    done = await run_in_threadpool(
        confirm_enrolment,
        engine,
        request.app.state.limiter,
        _ip(request),
        user.id,
        None,
        str(form.get("code") or "")[:64],
        key=key,
    )
    if done.user is None:
        found = await run_in_threadpool(enrolment_in_progress, engine, user.id, None, key)
        if found is None:  # started again elsewhere since: start again here, with the password
            error = (
                "This setup page is no longer current (setting up was started again since, "
                "or never was). Start again."
            )
            return await _account_page(request, 409, error=error)
        status, error = 401, "That code does not match; check the phone's clock and try again."
        if done.retry_after:
            status, error = 429, f"Too many failed attempts. Try again in {done.retry_after} s."
        return _enrol_page(request, *found, "/account/totp/confirm", status, error=error)
    return page(request, "totp_codes.html.j2", codes=done.recovery_codes, next_url="/")
