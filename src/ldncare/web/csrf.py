"""CSRF protection: one token per session, checked on every state-changing request.

Forms carry it in a hidden ``csrf_token`` field; the JSON API in an ``X-CSRF-Token`` header
(``GET /api/session`` returns it). The session cookie is SameSite=Lax as a second line.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

HEADER = "X-CSRF-Token"
FIELD = "csrf_token"


class CsrfRejected(Exception):
    """The token is missing or does not match the session's (403)."""


def _matches(request: Request, supplied: object) -> bool:
    expected = getattr(request.state, "csrf", "")
    return (
        isinstance(supplied, str)
        and bool(expected)
        and secrets.compare_digest(supplied.encode(), str(expected).encode())
    )


def check_form(request: Request, form: Mapping[str, Any]) -> None:
    if not _matches(request, form.get(FIELD)):
        raise CsrfRejected("the form has expired or did not come from this site; reload it")


def check_header(request: Request) -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if not _matches(request, request.headers.get(HEADER)):
        raise CsrfRejected(
            f"missing or wrong {HEADER} header; read the token from GET /api/session"
        )
