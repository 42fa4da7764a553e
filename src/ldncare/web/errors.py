"""Every error, in one place: JSON ``{"detail": [{"loc": [...], "msg": ...}]}`` under /api,
an HTML page (or a redirect to the login form) elsewhere."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ldncare.errors import LdncareError, NotFound
from ldncare.web.auth import Forbidden, NotAuthenticated
from ldncare.web.csrf import CsrfRejected
from ldncare.web.headers import SECURITY_HEADERS
from ldncare.web.templating import page

log = logging.getLogger(__name__)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api")


def _respond(request: Request, status: int, loc: list[Any], msg: str) -> Response:
    if request.url.path.startswith("/cds-services"):
        # CDS Hooks clients read {"error": ...} (see ldncare.cdshooks.service); a browser-based
        # EHR reads no status at all without the CORS headers, errors (405...) included.
        from ldncare.cdshooks.service import CORS_HEADERS

        return JSONResponse({"error": msg}, status_code=status, headers=CORS_HEADERS)
    if _is_api(request):
        return JSONResponse({"detail": [{"loc": loc, "msg": msg}]}, status_code=status)
    return page(request, "error.html.j2", status_code=status, status=status, error=msg)


def _field_loc(exc: LdncareError) -> list[Any]:
    if not exc.field:
        # A 404 is about what the URL names (a patient, a plan); other errors about the body.
        return ["path"] if isinstance(exc, NotFound) else ["body"]
    field = exc.field
    parts: list[Any] = ["body"]
    if field.startswith("path."):  # about the URL, e.g. an ambiguous patient reference
        parts, field = ["path"], field[5:]
    for part in field.replace("]", "").replace("[", ".").split("."):
        if part:
            parts.append(int(part) if part.isdigit() else part)
    return parts


def _allowed_methods(request: Request) -> str:
    """Every method documented for the request's path. Starlette's own ``Allow`` names only
    the methods of the first route that matched, and each of our routes has one method."""
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        parts = re.split(r"(\{[^}]+\})", template)
        pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        if re.fullmatch(pattern, request.url.path):
            methods.update(m.upper() for m in operations)
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        # Starlette answers a crash from its outermost layer, past the middleware that adds the
        # security headers; the answer says nothing of the cause (the log has it).
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        msg = "internal error; the server log has the details"
        if request.url.path.startswith("/cds-services"):
            body: dict[str, Any] = {"error": msg}
        else:
            body = {"detail": [{"loc": [], "msg": msg}]}
        return JSONResponse(body, status_code=500, headers=SECURITY_HEADERS)

    @app.exception_handler(LdncareError)
    async def _ldncare(request: Request, exc: LdncareError) -> Response:
        status = 404 if isinstance(exc, NotFound) else 422
        return _respond(request, status, _field_loc(exc), exc.message)

    @app.exception_handler(NotAuthenticated)
    async def _unauth(request: Request, exc: NotAuthenticated) -> Response:
        if _is_api(request):
            return JSONResponse(
                {"detail": [{"loc": ["cookie", "ldncare_session"], "msg": "log in first"}]},
                status_code=401,
            )
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return _respond(request, 403, ["session"], exc.message)

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, exc: CsrfRejected) -> Response:
        loc = ["header", "X-CSRF-Token"] if _is_api(request) else ["body", "csrf_token"]
        return _respond(request, 403, loc, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        detail = [
            {
                "loc": list(e.get("loc", ())),
                "msg": str(e.get("msg", "invalid")),
                "type": e.get("type"),
            }
            for e in exc.errors()
        ]
        if _is_api(request):
            return JSONResponse({"detail": detail}, status_code=422)
        first = detail[0] if detail else {"loc": [], "msg": "invalid input"}
        where = ".".join(str(p) for p in first["loc"])
        return page(
            request, "error.html.j2", status_code=422, status=422, error=f"{where}: {first['msg']}"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        msg = exc.detail if isinstance(exc.detail, str) else "request refused"
        response = _respond(request, exc.status_code, ["path"], msg)
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            if allowed:
                response.headers["Allow"] = allowed
        return response

    @app.exception_handler(OperationalError)
    async def _db(request: Request, exc: OperationalError) -> Response:
        log.warning("database unavailable: %s", str(exc).splitlines()[0])
        return _respond(request, 503, [], "the database is busy or unavailable; try again")
