"""The CDS Hooks 2.0 HTTP surface: discovery, the three services and their feedback endpoints.

:func:`build_router` returns an ``APIRouter`` (prefix ``/cds-services``) that any FastAPI app
can include. Every response -- including errors -- carries the CORS headers the spec asks for,
so the router works without app-level middleware. Status codes:

- 200: a (possibly empty) ``{"cards": [...]}``; also whenever ldncare fails internally (logged)
  -- an EHR workflow must never break on us;
- 400: the body is not JSON, or ``hook``, ``hookInstance`` or ``context`` is missing, or the
  hook does not belong to the service (message in ``{"error": ...}``);
- 401: missing or invalid client JWT (unless the settings say ``demo``);
- 404: unknown service id.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import URL
from starlette.types import ASGIApp, Receive, Scope, Send

from ldncare.cdshooks.fetch import (
    PATIENT_TEMPLATES,
    bare_id,
    fetch_missing,
    resources_in,
    templates_to_fetch,
)
from ldncare.cdshooks.hooks import HookCall, order_cards, orders_to_check, patient_view_cards
from ldncare.cdshooks.jwt_check import JwtRejected, JwtVerifier
from ldncare.cdshooks.settings import CdsSettings
from ldncare.evidence.loader import load_evidence
from ldncare.evidence.vocabulary import load_vocabulary

log = logging.getLogger(__name__)

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Accept",
    "Access-Control-Max-Age": "600",
}
_CORS_HEADER_BYTES = [(k.lower().encode(), v.encode()) for k, v in CORS_HEADERS.items()]
#: Feedback items kept in memory (the newest).
FEEDBACK_KEPT = 10_000
#: A service call; feedback (``/{id}/feedback``) and discovery go through the router.
_CALL_PATH = re.compile(r"^/cds-services/([^/]+)$")


@dataclass(frozen=True)
class Service:
    id: str
    hook: str
    title: str
    description: str
    decide: Callable[[HookCall], list[dict[str, Any]]]
    #: Older hook names answered by this service (medication-prescribe became order-select).
    aliases: frozenset[str] = frozenset()
    #: ``(hook, context, prefetched resources) -> False`` when the call cannot give a card
    #: whatever the patient's record holds (an order of nothing ldncare checks): the rest of
    #: the record is then not fetched.
    has_work: Callable[[str, Mapping[str, Any], Sequence[Mapping[str, Any]]], bool] | None = None

    def discovery(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": dict(PATIENT_TEMPLATES),
        }


SERVICES: dict[str, Service] = {
    s.id: s
    for s in (
        Service(
            "ldncare-patient-view",
            "patient-view",
            "ldncare: low-dose naltrexone safety and review",
            "Alerts when naltrexone and an opioid are both active, when an LDN trial is due for "
            "review, and suggests considering LDN for pudendal neuralgia when nothing "
            "contraindicates it.",
            patient_view_cards,
        ),
        Service(
            "ldncare-order-select",
            "order-select",
            "ldncare: naltrexone, opioid and gabapentinoid orders",
            "Checks selected medication orders: naltrexone with an active opioid, an opioid for a "
            "patient on naltrexone, gabapentin or pregabalin above the renal dose band.",
            order_cards,
            frozenset({"medication-prescribe"}),
            has_work=orders_to_check,
        ),
        Service(
            "ldncare-order-sign",
            "order-sign",
            "ldncare: naltrexone, opioid and gabapentinoid orders at signing",
            "The same checks as order-select, on every draft order about to be signed.",
            order_cards,
            has_work=orders_to_check,
        ),
    )
}


_ERROR_SCHEMA = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {"error": {"type": "string"}},
            "required": ["error"],
        }
    }
}
#: Documented in the OpenAPI schema for every CDS Hooks route (the spec's status codes).
RESPONSES: dict[int | str, dict[str, Any]] = {
    204: {"description": "CORS preflight answered"},
    400: {"description": "Not a valid CDS Hooks request", "content": _ERROR_SCHEMA},
    401: {"description": "Missing or invalid client JWT", "content": _ERROR_SCHEMA},
    404: {"description": "No such CDS service", "content": _ERROR_SCHEMA},
    405: {"description": "Method not allowed", "content": _ERROR_SCHEMA},
    413: {"description": "The request body is over the size limit", "content": _ERROR_SCHEMA},
}


class _OrjsonResponse(JSONResponse):
    """JSON rendered by orjson: same compact UTF-8 output, several times faster."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _json(body: Any, status: int = 200) -> JSONResponse:
    return _OrjsonResponse(body, status_code=status, headers=CORS_HEADERS)


def _error(status: int, message: str) -> JSONResponse:
    return _json({"error": message}, status)


def _validate_request(body: Any, service: Service) -> str | None:
    if not isinstance(body, dict):
        return "the request body must be a JSON object"
    for field in ("hook", "hookInstance", "context"):
        if field not in body:
            return f"'{field}' is required in a CDS Hooks request"
    if not isinstance(body["hook"], str) or not isinstance(body["hookInstance"], str):
        return "'hook' and 'hookInstance' must be strings"
    if not isinstance(body["context"], dict):
        return "'context' must be an object"
    if body["hook"] != service.hook and body["hook"] not in service.aliases:
        return f"service {service.id!r} answers the {service.hook!r} hook, not {body['hook']!r}"
    if (
        "prefetch" in body
        and body["prefetch"] is not None
        and not isinstance(body["prefetch"], dict)
    ):
        return "'prefetch' must be an object"
    return None


def build_router(
    settings: CdsSettings | None = None, *, transport: httpx.AsyncBaseTransport | None = None
) -> APIRouter:
    """The ``/cds-services`` router. ``transport`` replaces the network in tests (FHIR, JWKS)."""
    settings = settings or CdsSettings()
    verifier = JwtVerifier(settings, transport=transport)
    # Load the evidence and vocabulary now (both cached), not on the first EHR call.
    load_evidence()
    load_vocabulary()
    router = APIRouter(prefix="/cds-services", tags=["cds-hooks"], responses=RESPONSES)
    # The latest feedback items, in memory: bounded, so a chatty (or hostile) client cannot
    # grow the process without limit.
    feedback_log: deque[dict[str, Any]] = deque(maxlen=FEEDBACK_KEPT)
    router.feedback_log = feedback_log  # type: ignore[attr-defined]
    if not settings.demo and not settings.public_url:
        log.warning(
            "LDNCARE_CDS_PUBLIC_URL is not set: the JWT audience is checked against the URL "
            "of each request, whose host the caller chooses; set it to the URL the EHR calls"
        )

    def public(url: str) -> str:
        """The endpoint URL the EHR signed (``aud``): ``public_url`` when set behind a proxy."""
        if settings.public_url:
            return settings.public_url.rstrip("/") + URL(url).path
        return url

    async def authorize(request: Request) -> JSONResponse | None:
        if settings.demo:
            return None
        try:
            await verifier.verify(
                request.headers.get("authorization"), public(str(request.url.replace(query="")))
            )
        except JwtRejected as exc:
            return _error(401, str(exc))
        return None

    async def read_body(request: Request) -> tuple[Any, JSONResponse | None]:
        raw = await request.body()
        try:
            return orjson.loads(raw), None
        except (UnicodeDecodeError, orjson.JSONDecodeError) as exc:
            return None, _error(400, f"the request body is not valid JSON: {exc}")

    @router.options("")
    @router.options("/{rest:path}")
    async def preflight(rest: str = "") -> Response:
        return Response(status_code=204, headers=CORS_HEADERS)

    @router.get("")
    async def discovery() -> JSONResponse:
        return _json({"services": [s.discovery() for s in SERVICES.values()]})

    @router.post("/{service_id}/feedback")
    async def feedback(service_id: str, request: Request) -> JSONResponse:
        if service_id not in SERVICES:
            return _error(404, f"no CDS service {service_id!r}")
        denied = await authorize(request)
        if denied is not None:
            return denied
        body, bad = await read_body(request)
        if bad is not None:
            return bad
        items = body.get("feedback") if isinstance(body, dict) else None
        if not isinstance(items, list) or not all(
            isinstance(f, dict) and isinstance(f.get("card"), str) and "outcome" in f for f in items
        ):
            return _error(400, "'feedback' must be a list of objects with 'card' and 'outcome'")
        for item in items:
            feedback_log.append({"service": service_id, **item})
        return _json({})

    async def serve_call(
        service_id: str, raw: bytes, authorization: str | None, url: str
    ) -> tuple[int, dict[str, Any]]:
        """One service call -> (status, JSON body). Shared by the route and ``CdsCalls``."""
        service = SERVICES.get(service_id)
        if service is None:
            return 404, {"error": f"no CDS service {service_id!r}"}
        if not settings.demo:
            try:
                await verifier.verify(authorization, public(url))
            except JwtRejected as exc:
                return 401, {"error": str(exc)}
        try:
            body = orjson.loads(raw)
        except (UnicodeDecodeError, orjson.JSONDecodeError) as exc:
            return 400, {"error": f"the request body is not valid JSON: {exc}"}
        problem = _validate_request(body, service)
        if problem is not None:
            return 400, {"error": problem}
        try:
            cards = await _answer(service, body, settings, transport)
        except Exception:  # never a 500 towards the EHR; the log keeps the traceback
            log.exception(
                "CDS service %s failed on hookInstance %s", service_id, body["hookInstance"]
            )
            cards = []
        return 200, {"cards": cards}

    @router.post("/{service_id}")
    async def call_service(service_id: str, request: Request) -> JSONResponse:
        status, payload = await serve_call(
            service_id,
            await request.body(),
            request.headers.get("authorization"),
            str(request.url.replace(query="")),
        )
        return _json(payload, status)

    router.serve_call = serve_call  # type: ignore[attr-defined]
    return router


class CdsCalls:
    """Service calls (``POST /cds-services/{id}``) answered in pure ASGI, ahead of the router.

    The EHR calls these on every chart opened and every order selected, so they skip the
    framework's routing, dependency solving and request objects (about a sixth of a call's
    time in the benchmarks). The answer is the route's own (``serve_call``): the route stays
    for the OpenAPI schema and for apps that include the router without this middleware.
    Added innermost, so the body limit and the security headers still apply.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        serve_call: Callable[[str, bytes, str | None, str], Awaitable[tuple[int, dict[str, Any]]]],
    ) -> None:
        self.app = app
        self.serve_call = serve_call

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            _CALL_PATH.match(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if match is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the EHR gave up: nobody to answer
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        authorization = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None
        )
        url = str(URL(scope=scope).replace(query=""))
        status, payload = await self.serve_call(
            match.group(1), b"".join(chunks), authorization, url
        )
        content = orjson.dumps(payload)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-length", str(len(content)).encode()),
                    (b"content-type", b"application/json"),
                    *_CORS_HEADER_BYTES,
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})


async def _answer(
    service: Service,
    body: Mapping[str, Any],
    settings: CdsSettings,
    transport: httpx.AsyncBaseTransport | None,
) -> list[dict[str, Any]]:
    context: Mapping[str, Any] = body["context"]
    prefetch = body.get("prefetch") or {}
    resources = [r for value in prefetch.values() for r in resources_in(value)]
    if (
        service.has_work is not None
        and templates_to_fetch(body, PATIENT_TEMPLATES)
        and not service.has_work(service.hook, context, resources)
    ):
        return []  # no round trip to the EHR's FHIR server for an order we have no check for
    resources += await fetch_missing(
        body, PATIENT_TEMPLATES, timeout=settings.fhir_timeout, transport=transport
    )
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for i, r in enumerate(resources):  # prefetch and server may both return a resource
        unique.setdefault((str(r.get("resourceType")), str(r.get("id") or f"#{i}")), r)
    call = HookCall(
        hook=service.hook,
        patient_id=bare_id(context.get("patientId")),
        context=context,
        resources=tuple(unique.values()),
        as_of=date.today(),
        app_url=settings.app_url,
    )
    # The decision is pure CPU, well under a millisecond once the evidence is loaded (build_router
    # loads it): run it on the event loop. A thread hop would cost more than the work itself and
    # buys nothing in one worker process, where the GIL serialises the two anyway.
    return service.decide(call)
