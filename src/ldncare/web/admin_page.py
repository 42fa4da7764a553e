"""The administrators' pages: every account, and disabling or enabling one; how each CDS Hooks
card fares (``/admin/cds-cards``, the same figures as ``GET /api/admin/cds-cards``).

The page and ``ldncare user disable|enable`` call the same :mod:`ldncare.web.accounts`
functions: disabling ends every session of the account, enabling never revives one, and each
change is audited with the administrator as ``who``. Password resets and role changes stay on
the command line.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ldncare.cdshooks.cards import OVERRIDE_REASONS
from ldncare.errors import InvalidInput
from ldncare.web import csrf, deps
from ldncare.web.accounts import list_accounts, set_active
from ldncare.web.auth import require_admin
from ldncare.web.service import CardFare
from ldncare.web.templating import page

router = APIRouter(include_in_schema=False)  # an HTML page, not part of the JSON API

_MESSAGES = {
    "disabled": "Account disabled; its sessions have ended.",
    "enabled": "Account enabled.",
}


@router.get("/admin/users")
async def accounts_page(request: Request) -> Response:
    user = deps.user(request)
    require_admin(user)
    accounts = await run_in_threadpool(list_accounts, deps.engine(request))
    message = _MESSAGES.get(request.query_params.get("msg", ""))
    return page(request, "admin_users.html.j2", accounts=accounts, message=message)


async def _change(request: Request, username: str, active: bool) -> Response:
    user = deps.user(request)
    require_admin(user)
    form = await request.form(max_files=0, max_fields=10)
    csrf.check_form(request, form)
    if not active and username.strip().lower() == user.username:
        raise InvalidInput("you cannot disable your own account", field="username")
    await run_in_threadpool(set_active, deps.engine(request), username, active, actor=user.actor)
    return RedirectResponse(
        f"/admin/users?msg={'enabled' if active else 'disabled'}", status_code=303
    )


@router.post("/admin/users/{username}/disable")
async def disable_account(request: Request, username: str) -> Response:
    return await _change(request, username, False)


@router.post("/admin/users/{username}/enable")
async def enable_account(request: Request, username: str) -> Response:
    return await _change(request, username, True)


async def card_outcomes(request: Request) -> list[CardFare]:
    """How each CDS card fares (administrators only): what the page and the API show."""
    require_admin(deps.user(request))
    state = getattr(request.app.state, "cds_state", None)
    if state is None:
        return []
    fares: list[CardFare] = await run_in_threadpool(state.outcomes)
    return fares


@router.get("/admin/cds-cards")
async def cds_cards_page(request: Request) -> Response:
    fares = await card_outcomes(request)
    return page(
        request, "admin_cds_cards.html.j2", fares=fares, reason_names=dict(OVERRIDE_REASONS)
    )
