"""The CDS Hooks 2.0 HTTP surface: discovery, the three services and their feedback endpoints.

:func:`build_router` returns an ``APIRouter`` (prefix ``/cds-services``) that any FastAPI app
can include. Every response -- including errors -- carries the CORS headers the spec asks for,
so the router works without app-level middleware. Status codes:

- 200: a (possibly empty) ``{"cards": [...]}`` -- ldncare read everything it needed; also
  whenever ldncare fails internally (logged) -- an EHR workflow must never break on us;
- 400: the body is not JSON, or ``hook``, ``hookInstance`` or ``context`` is missing, or a
  context field the hook requires and ldncare reads is missing (``patientId``; ``draftOrders``
  for the order hooks, ``selections`` for order-select), or the hook does not belong to the
  service, or a feedback item is malformed (message in ``{"error": ...}``);
- 401: missing or invalid client JWT (unless the settings say ``demo``);
- 404: unknown service id;
- 412: ldncare could not read data it needs -- not prefetched (or prefetched as an
  OperationOutcome) and the FHIR server could not be asked or did not answer in time.
  CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/#prefetch-template): "If the CDS Service is
  unable to obtain required data because it cannot access the FHIR server and the request did
  not contain the necessary prefetch keys, the service SHALL respond with an HTTP 412
  Precondition Failed status code." An empty 200 would read as "checked, nothing found".
  The body says what was missing: ``{"error": ..., "missing": [{"prefetch", "query",
  "reason"}]}``;
- 415: the request's ``Content-Type`` is not ``application/json``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.datastructures import URL
from starlette.types import ASGIApp, Receive, Scope, Send

from ldncare.cdshooks.cards import with_smart_link
from ldncare.cdshooks.feedback import (
    ITEM_MAX_BYTES,
    KEPT_BYTES,
    KEPT_ITEMS,
    FeedbackLog,
    feedback_problem,
    kept,
)
from ldncare.cdshooks.fetch import (
    DRAFT_MEDICATION,
    PATIENT_TEMPLATES,
    FetchLimits,
    MissingData,
    bare_id,
    fetch_missing,
    resources_in,
    templates_to_fetch,
    unfinished_prefetch,
)
from ldncare.cdshooks.hooks import (
    DraftOrders,
    HookCall,
    medication_index,
    names_another_patient,
    order_cards,
    orders_to_check,
    patient_view_cards,
    unresolved_medications,
)
from ldncare.cdshooks.jwt_check import JwtRejected, JwtVerifier
from ldncare.cdshooks.settings import LOCAL_APP_URL, CdsSettings
from ldncare.cdshooks.state import CdsState
from ldncare.errors import EvidenceError
from ldncare.evidence.loader import load_evidence
from ldncare.evidence.vocabulary import load_vocabulary
from ldncare.fhir.patient_bundle import unidentified_medicines
from ldncare.fhir.references import full_urls, refers_to

log = logging.getLogger(__name__)

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Accept",
    "Access-Control-Max-Age": "600",
}
_CORS_HEADER_BYTES = [(k.lower().encode(), v.encode()) for k, v in CORS_HEADERS.items()]
#: Feedback items kept in memory (the newest), and bytes of their JSON at most.
FEEDBACK_KEPT = KEPT_ITEMS
FEEDBACK_KEPT_BYTES = KEPT_BYTES
#: Feedback items taken in one request.
FEEDBACK_ITEMS_PER_REQUEST = 100
#: A service call; feedback (``/{id}/feedback``) and discovery go through the router.
_CALL_PATH = re.compile(r"^/cds-services/([^/]+)/?$")  # the final slash integrators add too
#: Media types a CDS Hooks request body may declare (the spec's is application/json).
JSON_TYPES = frozenset({"application/json", "application/fhir+json"})
#: Context fields each hook's specification marks REQUIRED and ldncare reads: without them
#: there is nothing to check. ``userId`` is required by the hooks too but ldncare does not
#: read it, and real requests omit it (21 of the 93 readable ones in the test corpus), so
#: its absence is not refused. The pre-1.0 ``medications`` is read where ``draftOrders`` is missing.
REQUIRED_CONTEXT: dict[str, tuple[tuple[str, ...], ...]] = {
    "patient-view": (("patientId",),),
    "order-select": (("patientId",), ("draftOrders", "medications"), ("selections",)),
    "order-sign": (("patientId",), ("draftOrders", "medications")),
    "medication-prescribe": (("patientId",), ("medications", "draftOrders")),
}


class DataMissing(Exception):
    """ldncare could not read data the decision needs (answered 412)."""

    def __init__(self, missing: Sequence[MissingData]) -> None:
        self.missing = list(missing)
        super().__init__("; ".join(m.sentence() for m in self.missing))


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
    #: Returns what it read to tell (the draft orders), handed on so that it is read once.
    has_work: (
        Callable[
            [str, Mapping[str, Any], Sequence[Mapping[str, Any]], Mapping[int, str] | None],
            DraftOrders | None,
        ]
        | None
    ) = None

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
    412: {"description": "Data the service needs could not be read", "content": _ERROR_SCHEMA},
    413: {"description": "The request body is over the size limit", "content": _ERROR_SCHEMA},
    415: {"description": "The body is not declared application/json", "content": _ERROR_SCHEMA},
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
    context = body["context"]
    for names in REQUIRED_CONTEXT.get(body["hook"], ()):
        if not any(context.get(name) not in (None, "", [], {}) for name in names):
            return f"context.{names[0]} is required by the {body['hook']!r} hook"
    return (
        _patient_id_problem(context.get("patientId"))
        or _drafts_problem(body["hook"], context)
        or _prefetch_problem(body.get("prefetch"))
    )


#: A FHIR resource id (FHIR R4 datatypes, ``id``): what ``context.patientId`` must be.
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _patient_id_problem(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return f"context.patientId must be a FHIR id (a string), not {_kind(value)}"
    # "Patient/x" is how some EHRs (and the CDC opioid IG examples) write it.
    if not FHIR_ID.fullmatch(value.removeprefix("Patient/")):
        return (
            f"context.patientId {value[:80]!r} is not a FHIR id "
            "(1 to 64 of A-Z, a-z, 0-9, '-' and '.')"
        )
    return None


def _drafts_problem(hook: str, context: Mapping[str, Any]) -> str | None:
    """``draftOrders`` must be a Bundle (``medications``, pre-1.0: a Bundle or a list of
    resources); order-select ``selections`` must be references ("Type/id") to drafts in it."""
    for name in ("draftOrders", "medications"):
        value = context.get(name)
        if value is None:
            continue
        bundle = isinstance(value, dict) and value.get("resourceType") == "Bundle"
        if name == "draftOrders" and not bundle:
            return (
                f"context.draftOrders must be a FHIR Bundle of the draft orders, not {_kind(value)}"
            )
        if name == "medications" and not (bundle or isinstance(value, list)):
            return (
                "context.medications must be a FHIR Bundle or a list of resources, "
                f"not {_kind(value)}"
            )
    if hook != "order-select" or "selections" not in context:
        return None
    selections = context["selections"]
    if not isinstance(selections, list) or not all(isinstance(x, str) for x in selections):
        return (
            f'context.selections must be a list of references ("Type/id"), not {_kind(selections)}'
        )
    source = context.get("draftOrders")
    drafts = resources_in(source if source is not None else context.get("medications"))
    known = {f"{r.get('resourceType')}/{r.get('id')}" for r in drafts}
    known |= {
        f"MedicationRequest/{r.get('id')}"
        for r in drafts
        if r.get("resourceType") == "MedicationOrder"
    }
    entries = source.get("entry") if isinstance(source, dict) else None
    full_urls = {
        e["fullUrl"]
        for e in entries or []
        if isinstance(e, dict) and isinstance(e.get("fullUrl"), str)
    }
    for ref in selections:
        ref = ref.strip()
        if ref in full_urls:  # a draft selected by its Bundle fullUrl ("urn:uuid:...")
            continue
        if "/" not in ref:
            return (
                f"context.selections: {ref[:80]!r} is not a reference "
                f'("Type/id", e.g. MedicationRequest/{ref[:40]})'
            )
        if not any(refers_to(ref, *k.split("/", 1)) for k in known):
            return f"context.selections: {ref[:80]!r} names no order in context.draftOrders"
    return None


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        rtype = value.get("resourceType")
        return f"a {rtype}" if isinstance(rtype, str) else "an object without resourceType"
    names = {str: "a string", list: "a list", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), f"a {type(value).__name__}")


def _prefetch_problem(prefetch: Any) -> str | None:
    """Each prefetch value is a FHIR resource (a Bundle, an OperationOutcome...), the
    ``{"response", "resource"}`` wrapper, a list of them, or null (nothing found)."""
    if prefetch is None:
        return None
    if not isinstance(prefetch, dict):
        return "'prefetch' must be an object"
    for key, value in prefetch.items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if item is None:
                continue
            if not isinstance(item, dict) or not (
                isinstance(item.get("resourceType"), str)
                or "resource" in item
                or "response" in item
            ):
                return (
                    f"prefetch.{key} must be a FHIR resource or Bundle (or null), not {_kind(item)}"
                )
    return None


def json_content_type(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` header declares JSON (parameters such as charset allowed)."""
    if content_type is None:
        return False
    return content_type.split(";", 1)[0].strip().lower() in JSON_TYPES


def public_base(public_url: str) -> str:
    """``LDNCARE_CDS_PUBLIC_URL`` as the server's origin and path prefix, however written:
    integrators give the server (``https://cds.example.org``) or the CDS Hooks base
    (``https://cds.example.org/cds-services``, with or without a final slash)."""
    base = public_url.strip().rstrip("/")
    return base.removesuffix("/cds-services").rstrip("/")


def build_router(
    settings: CdsSettings | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    engine: Engine | None = None,
) -> APIRouter:
    """The ``/cds-services`` router. ``transport`` replaces the network in tests (FHIR, JWKS).

    With an ``engine`` (a migrated database), JWT ids, the cards shown and every feedback item
    are kept in it (:class:`~ldncare.cdshooks.state.CdsState`): shared by every worker."""
    settings = settings or CdsSettings()
    state = CdsState(engine, keep_days=settings.outcomes_keep_days) if engine else None
    verifier = JwtVerifier(
        settings, transport=transport, claim=state.claim_token if state else None
    )
    limits = FetchLimits(
        deadline=settings.fhir_deadline,
        max_bytes=settings.fhir_max_bytes,
        max_pages=settings.fhir_max_pages,
        # Without a JWT anyone may call: fetch only from the servers the operator allowed.
        allowed_servers=tuple(settings.demo_fhir_servers) if settings.demo else None,
    )
    # Load the evidence and vocabulary now (both cached), not on the first EHR call.
    load_evidence()
    load_vocabulary()
    router = APIRouter(prefix="/cds-services", tags=["cds-hooks"], responses=RESPONSES)
    # The latest feedback items, in memory: bounded, so a chatty (or hostile) client cannot
    # grow the process without limit.
    feedback_log = FeedbackLog(FEEDBACK_KEPT, FEEDBACK_KEPT_BYTES)
    router.feedback_log = feedback_log  # type: ignore[attr-defined]
    router.state = state  # type: ignore[attr-defined]
    if not settings.demo and not settings.public_url:
        log.warning(
            "LDNCARE_CDS_PUBLIC_URL is not set: the JWT audience is checked against the URL "
            "of each request, whose host the caller chooses; set it to the URL the EHR calls"
        )
    if not settings.demo and not settings.app_url and not settings.public_url:
        log.warning(
            "Neither LDNCARE_CDS_APP_URL nor LDNCARE_CDS_PUBLIC_URL is set: card links point to "
            "%s, which the clinician's browser cannot open; set LDNCARE_CDS_APP_URL",
            LOCAL_APP_URL,
        )

    def public(url: str) -> str:
        """The endpoint URL the EHR signed (``aud``): ``public_url`` when set behind a proxy."""
        if settings.public_url:
            return public_base(settings.public_url) + URL(url).path
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
        if not json_content_type(request.headers.get("content-type")):
            return _error(415, "the request body must be sent as Content-Type: application/json")
        body, bad = await read_body(request)
        if bad is not None:
            return bad
        items = body.get("feedback") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            return _error(400, "'feedback' must be a non-empty list of feedback items")
        if len(items) > FEEDBACK_ITEMS_PER_REQUEST:
            return _error(
                413,
                f"'feedback' holds {len(items)} items; at most {FEEDBACK_ITEMS_PER_REQUEST} "
                "are taken in one request",
            )
        sizes: list[int] = []
        for i, item in enumerate(items):
            size = len(orjson.dumps(item))
            if size > ITEM_MAX_BYTES:
                return _error(
                    413,
                    f"feedback[{i}] is {size} bytes; a feedback item may have at most "
                    f"{ITEM_MAX_BYTES} bytes (ITEM_MAX_BYTES)",
                )
            problem = feedback_problem(item)
            if problem is not None:
                return _error(400, f"feedback[{i}]: {problem}")
            sizes.append(size)
        checked = [kept(item, service_id) for item in items]
        if state is not None:
            # A card shown by another service is not this service's card (review M1).
            shown_by = await run_in_threadpool(state.card_services, [c["card"] for c in checked])
            for i, c in enumerate(checked):
                other = shown_by.get(str(c["card"]))
                if other is not None and other != service_id:
                    return _error(
                        400,
                        f"feedback[{i}]: card {c['card']} was shown by {other}, not {service_id}; "
                        f"send its feedback to /cds-services/{other}/feedback",
                    )
            # Written before the answer: an acknowledged feedback item is never lost.
            await run_in_threadpool(state.record_feedback, checked)
        for item, size in zip(checked, sizes, strict=True):
            feedback_log.add(item, size)
        return _json({})

    async def serve_call(
        service_id: str, raw: bytes, authorization: str | None, url: str, content_type: str | None
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
        if not json_content_type(content_type):
            return 415, {
                "error": "the request body must be sent as Content-Type: application/json, not "
                + (repr(content_type) if content_type else "without a Content-Type")
            }
        try:
            body = orjson.loads(raw)
        except (UnicodeDecodeError, orjson.JSONDecodeError) as exc:
            return 400, {"error": f"the request body is not valid JSON: {exc}"}
        problem = _validate_request(body, service)
        if problem is not None:
            return 400, {"error": problem}
        try:
            cards = await _answer(service, body, settings, limits, transport)
        except DataMissing as missing:
            return 412, {
                "error": "ldncare could not read data it needs for this check, so it did not "
                f"check: {missing}",
                "missing": [m.as_json() for m in missing.missing],
            }
        except Exception:
            # An empty card list would tell the EHR "checked, no conflict" when nothing was
            # checked, the silent failure issue #18 is about; a 500 says "not checked". The log
            # keeps the traceback; the body names no internals.
            log.exception(
                "CDS service %s failed on hookInstance %s", service_id, body["hookInstance"]
            )
            return 500, {
                "error": "ldncare failed while checking this request, so nothing was checked; "
                "treat it as not checked (the server log has the details)"
            }
        if state is not None and cards:
            state.cards_shown(service_id, str(body["hookInstance"]), cards)
        return 200, {"cards": cards}

    # The URL with a final slash is answered by ``CdsCalls`` (both apps install it) like this
    # one; an app with the router alone answers it 405 with the CORS headers.
    @router.post("/{service_id}")
    async def call_service(service_id: str, request: Request) -> JSONResponse:
        status, payload = await serve_call(
            service_id,
            await request.body(),
            request.headers.get("authorization"),
            str(request.url.replace(query="")),
            request.headers.get("content-type"),
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
        serve_call: Callable[
            [str, bytes, str | None, str, str | None], Awaitable[tuple[int, dict[str, Any]]]
        ],
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
        authorization = content_type = None
        for k, v in scope["headers"]:
            if k == b"authorization":
                authorization = v.decode("latin-1")
            elif k == b"content-type":
                content_type = v.decode("latin-1")
        url = str(URL(scope=scope).replace(query=""))
        status, payload = await self.serve_call(
            match.group(1), b"".join(chunks), authorization, url, content_type
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


async def _identify_medicines(
    service: Service,
    body: Mapping[str, Any],
    resources: list[dict[str, Any]],
    urls: Mapping[int, str],
    limits: FetchLimits,
    transport: httpx.AsyncBaseTransport | None,
) -> None:
    """An active medicine on record whose drug no resource at hand identifies (a Medication not
    prefetched, a conditional or identifier reference matching none) could be an opioid (or
    naltrexone): it is never dropped (review H1). Its ``Medication/{id}`` is read from
    fhirServer when the reference names one there (added to ``resources``); otherwise, or when
    the server does not answer with it, :class:`DataMissing` (412) names the reference."""
    today = date.today()
    pid = bare_id(body["context"].get("patientId"))
    # Resources naming another patient are skipped, as build_patient skips them.
    mine = [r for r in resources if pid is None or not names_another_patient(r, pid)]
    free = load_evidence().ldn.opioid_free_days
    if free is None:
        raise EvidenceError("ldn.yaml: opioid_free_days is required for the washout check")
    interval = free.long_acting
    unknown = unidentified_medicines(mine, medication_index(resources, urls), today, interval)
    if not unknown:
        return
    if service.has_work is not None and (
        service.has_work(service.hook, body["context"], resources, urls) is None
    ):
        return  # no order this service checks: the unknown drug changes no card
    fetched = await fetch_missing(
        body,
        PATIENT_TEMPLATES,
        limits=limits,
        transport=transport,
        medications=unknown,
        keys=[],
        more={},
        medication_key="medications",
    )
    if fetched.missing:
        raise DataMissing(fetched.missing)
    resources += fetched.resources
    still = unidentified_medicines(mine, medication_index(resources, urls), today, interval)
    if still:
        raise DataMissing(
            [
                MissingData(
                    "medications",
                    ref,
                    "the FHIR server's answer for an active medicine's medicationReference is "
                    "not that Medication",
                )
                for ref in still
            ]
        )


async def _answer(
    service: Service,
    body: Mapping[str, Any],
    settings: CdsSettings,
    limits: FetchLimits,
    transport: httpx.AsyncBaseTransport | None,
) -> list[dict[str, Any]]:
    """The cards; :class:`DataMissing` when a template the decision needs could not be read."""
    context: Mapping[str, Any] = body["context"]
    prefetch = body.get("prefetch") or {}
    resources = [r for value in prefetch.values() for r in resources_in(value)]
    # Each prefetched resource's fullUrl, so absolute and urn:uuid references resolve as on
    # import (one resolver: fhir/references.py).
    # Only a Medication's fullUrl is ever looked up (by a medicationReference): without one in
    # the prefetch -- the usual request -- the walk is skipped.
    urls = (
        full_urls(list(prefetch.values()))
        if any(r.get("resourceType") == "Medication" for r in resources)
        else {}
    )
    # A draft naming its drug by a Medication nobody sent: fetched with the rest, as the drug
    # (naltrexone, an opioid) decides whether there is anything to check.
    unresolved = unresolved_medications(context, resources, urls) if service.has_work else []
    keys = templates_to_fetch(body, PATIENT_TEMPLATES)
    more = unfinished_prefetch(body, PATIENT_TEMPLATES)
    drafts: DraftOrders | None = None
    if service.has_work is not None and not unresolved and (keys or more):
        drafts = service.has_work(service.hook, context, resources, urls)
        if drafts is None:
            return []  # no round trip to the EHR's FHIR server for an order we have no check for
    fetched = await fetch_missing(
        body,
        PATIENT_TEMPLATES,
        limits=limits,
        transport=transport,
        medications=unresolved,
        keys=keys,
        more=more,
    )
    if fetched.missing:
        # Partial data is not enough: the opioid that makes naltrexone dangerous may be in
        # exactly the query that failed.
        raise DataMissing(fetched.missing)
    resources += fetched.resources
    if unresolved:
        # The server answered, but not with the Medication referenced (an empty search, another
        # id): the drug of the order is still unknown, which is not "nothing to check".
        still = unresolved_medications(context, resources, urls)
        if still:
            raise DataMissing(
                [
                    MissingData(
                        DRAFT_MEDICATION,
                        ref,
                        "the FHIR server's answer for a draft order's medicationReference is "
                        "not that Medication",
                    )
                    for ref in still
                ]
            )
    await _identify_medicines(service, body, resources, urls, limits, transport)
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for i, r in enumerate(resources):  # prefetch and server may both return a resource
        unique.setdefault((str(r.get("resourceType")), str(r.get("id") or f"#{i}")), r)
    call = HookCall(
        hook=service.hook,
        patient_id=bare_id(context.get("patientId")),
        context=context,
        resources=tuple(unique.values()),
        as_of=date.today(),
        app_url=settings.links_base(),
        full_urls=urls,
        # Read before the fetch: every draft's Medication was resolved then (else `unresolved`).
        drafts=drafts,
    )
    # The decision is pure CPU, well under a millisecond once the evidence is loaded (build_router
    # loads it): run it on the event loop. A thread hop would cost more than the work itself and
    # buys nothing in one worker process, where the GIL serialises the two anyway.
    cards = service.decide(call)
    if (
        settings.smart_launch_url
        and call.patient_id
        and settings.smart_link_for(body.get("fhirServer"))
    ):
        cards = [with_smart_link(card, settings.smart_launch_url) for card in cards]
    return cards
