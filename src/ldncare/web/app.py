"""The FastAPI application: settings, database, session middleware, routers. Nothing else."""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from datetime import date
from importlib import resources
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ldncare.store.db import database_url, open_engine
from ldncare.web import admin_page, api, ask_page, errors, pages, sso, totp_pages
from ldncare.web.auth import Limiter, LoginLimiter, Sessions, load_user
from ldncare.web.headers import SECURITY_HEADER_BYTES
from ldncare.web.headers import SECURITY_HEADERS as SECURITY_HEADERS  # where it used to live
from ldncare.web.limits import BodyLimit
from ldncare.web.settings import WebSettings
from ldncare.web.smart.settings import SmartSettings

log = logging.getLogger(__name__)

#: The interactive API docs (Swagger UI) are served from the package, so /docs works on a closed
#: network: script and style from /static/apidocs/ (the fastapi-offline package ships them), the
#: favicon from /favicon.ico. The page starts Swagger UI with one inline script, allowed by its
#: hash (see _docs_page); it shows no patient data.
DOCS_ASSETS = "/static/apidocs"
_DOCS_STATIC = Path(fastapi_offline.__file__).parent / "static"
FAVICON = "/favicon.ico"


_SECURITY_HEADER_BYTES = SECURITY_HEADER_BYTES
_CSP = b"content-security-policy"


class SessionAndHeaders:
    """Per request: the signed session -> ``request.state.user`` / ``.csrf``; security headers.

    Requests without a session (CDS Hooks calls, health checks, anonymous pages) skip the thread
    hop and the database: under EHR load that is most requests. /static/ is served as is.
    Headers the route set itself are kept (set-default semantics).
    """

    def __init__(self, app: ASGIApp, *, owner: FastAPI, engine: Engine) -> None:
        self.app = app
        self.owner = owner
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        sessions: Sessions = self.owner.state.sessions
        data = sessions.read(Request(scope))
        has_user = data is not None and isinstance(data.get("u"), int)
        state = scope.setdefault("state", {})
        state["user"] = await run_in_threadpool(load_user, self.engine, data) if has_user else None
        state["csrf"] = data["c"] if data else ""
        docs = scope["path"] == "/docs" and self.owner.state.docs_csp

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                if docs and _CSP not in present:
                    headers.append((_CSP, self.owner.state.docs_csp))
                    present.add(_CSP)
                headers += [(k, v) for k, v in _SECURITY_HEADER_BYTES if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def login_limiter(engine: Engine, settings: WebSettings) -> Limiter:
    """The database's limiter on PostgreSQL (shared by every worker and machine); in memory
    on SQLite, where one server serves (``--workers N`` on SQLite: a quota per worker)."""
    if engine.dialect.name == "postgresql":
        from ldncare.store.login_limits import DbLoginLimiter

        return DbLoginLimiter(engine, settings.login_max_failures, settings.login_window_seconds)
    return LoginLimiter(settings.login_max_failures, settings.login_window_seconds)


def create_app(
    settings: WebSettings | None = None,
    *,
    clock: Callable[[], date] = date.today,
    smart: SmartSettings | None = None,
) -> FastAPI:
    """The web app for ``settings`` (default: from the environment). ``clock`` gives "today";
    ``smart`` configures the SMART on FHIR launch (default: from the environment; off unless
    configured)."""
    settings = (settings or WebSettings()).checked()
    smart = smart or SmartSettings()
    engine = open_engine(settings.database_url or database_url())
    app = FastAPI(
        title="ldncare",
        version="0.1.0",
        description="Clinical decision support for low-dose naltrexone: JSON API and pages.",
        docs_url=None,  # served below from the package's own assets, not from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.clock = clock
    app.state.sessions = Sessions(
        settings.secret_key,
        max_age=settings.session_max_age_seconds,
        secure=settings.cookie_secure,
    )
    app.state.limiter = login_limiter(engine, settings)
    app.state.sso = sso.client_from_settings(settings)
    app.state.demo_logins = []

    # Innermost (added first): CDS Hooks service calls answered before the router.
    from ldncare.cdshooks.service import CdsCalls

    cds_router = _cds_router(settings, engine, smart)
    app.state.cds_state = cds_router.state  # type: ignore[attr-defined]
    app.add_middleware(CdsCalls, serve_call=cds_router.serve_call)  # type: ignore[attr-defined]
    # Pure ASGI (not @app.middleware("http"), whose BaseHTTPMiddleware costs a task, a stream
    # and a copy of the response per request: several times the cost of /healthz itself).
    app.add_middleware(SessionAndHeaders, owner=app, engine=engine)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, bool]:
        """Liveness for load balancers (and the baseline of the HTTP benchmarks)."""
        return {"ok": True}

    errors.install(app)
    # Outermost: bodies over the limit are refused with 413 before anything reads them.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    static = resources.files("ldncare.web") / "static"
    _add_docs(app, static_path=Path(str(static)))
    # Before /static: a mount matches every path under it.
    app.mount(DOCS_ASSETS, StaticFiles(directory=_DOCS_STATIC), name="apidocs")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    # Routes match in order: the EHR-facing CDS Hooks first, so its calls skip the page routes.
    app.include_router(cds_router)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(ask_page.router)
    app.include_router(admin_page.router)
    app.include_router(totp_pages.router)
    app.include_router(sso.router)
    _add_smart(app, settings, smart)
    return app


def _add_smart(app: FastAPI, settings: WebSettings, smart: SmartSettings) -> None:
    """The /smart/ routes, only when ldncare was registered in an EHR (docs/SMART.md)."""
    if not smart.enabled:
        return
    from ldncare.web.smart import routes
    from ldncare.web.smart.oauth import DiscoveryCache
    from ldncare.web.smart.sessions import SmartSessions

    app.state.smart = smart
    app.state.smart_sessions = SmartSessions(
        settings.secret_key, max_age=smart.session_max_age_seconds, secure=settings.cookie_secure
    )
    app.state.smart_discovery = DiscoveryCache(smart.discovery_ttl_seconds)
    app.include_router(routes.router)


def _docs_page(openapi_url: str) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title="ldncare API",
        oauth2_redirect_url="/docs/oauth2-redirect",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=FAVICON,
        # No badge from the online validator: nothing on the page leaves this host.
        swagger_ui_parameters={"validatorUrl": None},
    )


def _inline_script_csp(page: bytes) -> bytes:
    """The /docs policy: only this origin, plus the page's own inline script(s) by hash."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in re.findall(rb"<script>(.*?)</script>", page, flags=re.S)
    )
    return (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        f"script-src 'self' {hashes}; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ).encode()


def _add_docs(app: FastAPI, *, static_path: Path) -> None:
    """/docs (Swagger UI), its OAuth2 redirect page and /favicon.ico, all served locally."""
    page = bytes(_docs_page(app.openapi_url or "/openapi.json").body)
    app.state.docs_csp = _inline_script_csp(page)
    favicon = static_path / "favicon.ico"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(FAVICON, include_in_schema=False)
    async def favicon_ico() -> FileResponse:
        return FileResponse(
            favicon, media_type="image/x-icon", headers={"Cache-Control": "max-age=86400"}
        )


#: What ``ldncare serve --workers N`` gives uvicorn: each worker calls it to build its app.
WORKER_FACTORY = "ldncare.web.app:create_worker_app"
_DEMO_LOGINS = "LDNCARE_DEMO_LOGINS"


def worker_environment(
    settings: WebSettings, demo_logins: list[tuple[str, str, str]]
) -> dict[str, str]:
    """Environment variables that make every worker's :class:`WebSettings` equal ``settings``
    (the checked ones: in demo mode, the random session key made once by the parent)."""
    env = {
        f"LDNCARE_{name.upper()}": value if isinstance(value, str) else json.dumps(value)
        for name, value in settings.model_dump().items()
        if value is not None
    }
    if demo_logins:
        env[_DEMO_LOGINS] = json.dumps(demo_logins)
    return env


def create_worker_app() -> FastAPI:
    """The app of one ``ldncare serve --workers N`` worker, from the environment the parent set.

    The parent already migrated the database and loaded the demo; loaded modules, evidence
    and vocabulary are frozen out of the collector as in a single-process ``serve``.
    """
    app = create_app(WebSettings())
    app.state.demo_logins = [
        tuple(login) for login in json.loads(os.environ.get(_DEMO_LOGINS, "[]"))
    ]
    gc.collect()
    gc.freeze()
    return app


def _cds_router(
    settings: WebSettings, engine: Engine, smart: SmartSettings | None = None
) -> APIRouter:
    """The CDS Hooks service under /cds-services; demo mode turns its JWT check off. JWT ids,
    cards shown and feedback are kept in the app's database (shared by every worker); with SMART
    configured, cards on a patient link to the SMART launch (issue #21)."""
    from ldncare.cdshooks.service import build_router
    from ldncare.cdshooks.settings import CdsSettings

    cds = CdsSettings()
    if settings.demo:
        cds = cds.model_copy(update={"demo": True})
    if smart is not None and smart.enabled and not cds.smart_launch_url:
        cds = cds.model_copy(update={"smart_launch_url": smart.launch_url})
    if smart is not None and smart.enabled and not cds.smart_issuers:
        # A smart link only for an EHR the launch accepts (LDNCARE_SMART_ALLOWED_ISSUERS).
        cds = cds.model_copy(update={"smart_issuers": list(smart.issuers)})
    return build_router(cds, engine=engine)
