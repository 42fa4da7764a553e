"""A stand-alone FastAPI app serving only the CDS Hooks router (the main web app includes the
same router with ``app.include_router(build_router(settings))``)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from ldncare.cdshooks.service import CdsCalls, build_router
from ldncare.cdshooks.settings import CdsSettings


def create_cds_app(
    settings: CdsSettings | None = None, *, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """The CDS Hooks service on its own; ``transport`` stands in for the network in tests."""
    settings = settings or CdsSettings()
    app = FastAPI(title="ldncare CDS Hooks", docs_url=None, redoc_url=None)
    router = build_router(settings, transport=transport)
    app.add_middleware(CdsCalls, serve_call=router.serve_call)  # type: ignore[attr-defined]
    app.include_router(router)
    app.state.cds_feedback = router.feedback_log  # type: ignore[attr-defined]
    return app
