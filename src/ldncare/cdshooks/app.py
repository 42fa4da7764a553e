"""A stand-alone FastAPI app serving only the CDS Hooks router (the main web app includes the
same router with ``app.include_router(build_router(settings))``)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from ldncare.cdshooks.service import CORS_HEADERS, CdsCalls, build_router
from ldncare.cdshooks.settings import CdsSettings


def create_cds_app(
    settings: CdsSettings | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    engine: Engine | None = None,
) -> FastAPI:
    """The CDS Hooks service on its own; ``transport`` stands in for the network in tests;
    ``engine`` (a migrated database) keeps JWT ids, cards shown and feedback there."""
    settings = settings or CdsSettings()
    app = FastAPI(title="ldncare CDS Hooks", docs_url=None, redoc_url=None)
    router = build_router(settings, transport=transport, engine=engine)
    app.add_middleware(CdsCalls, serve_call=router.serve_call)  # type: ignore[attr-defined]
    app.include_router(router)
    app.state.cds_feedback = router.feedback_log  # type: ignore[attr-defined]
    app.state.cds_state = router.state  # type: ignore[attr-defined]

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        # {"error": ...} as every CDS answer, with CORS headers (a 405 included).
        msg = exc.detail if isinstance(exc.detail, str) else "request refused"
        return JSONResponse(
            {"error": msg},
            status_code=exc.status_code,
            headers={**(exc.headers or {}), **CORS_HEADERS},
        )

    return app
