"""Collect the FHIR data a hook needs: prefetch first, the EHR's FHIR server for the rest.

Prefetch values arrive in every shape real EHRs use: a resource, a searchset Bundle, the
older ``{"response": ..., "resource": ...}`` wrapper, or ``null`` (nothing found). Keys are the
EHR's own (``item1``, ``patientToGreet``), so resources are gathered from *all* values, and a
template counts as answered when a key of ours is present, even if null -- unless its value is
an OperationOutcome: CDS Hooks 2.0 lets an EHR report a failed prefetch that way ("If the CDS
Client encounters errors prefetching the requested data, OperationOutcome(s) SHOULD be used to
communicate those errors", https://cds-hooks.hl7.org/2.0/#prefetch-template), so such a key is
as missing as an absent one and is fetched.

A missing template is fetched from ``fhirServer`` with ``fhirAuthorization.access_token`` as a
Bearer token. The queries run concurrently under one overall deadline (``FetchLimits``); each
response is read up to a byte cap; a searchset's ``next`` links are followed up to a page limit
and only on the same server. Whatever could not be read -- no server to ask, a server outside
the demo allow-list, a timeout, an HTTP error, bad JSON, a response over the cap, more pages
than the limit, the deadline -- is reported in :attr:`Fetched.missing`, never skipped
silently: the service answers 412 with that list (see ``service.py``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from ldncare.fhir.patient_bundle import BODY_WEIGHT, LAB_LOINC, LOINC, PREGNANCY_STATUS
from ldncare.fhir.references import parse_reference

log = logging.getLogger(__name__)

#: Our prefetch templates (advertised in discovery), by key.
PATIENT_TEMPLATES: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    # Stopped and completed orders too: an opioid stopped a few days ago still contraindicates
    # naltrexone (the washout rule) and needs its end date.
    "medications": "MedicationRequest?patient={{context.patientId}}"
    "&status=active,on-hold,unknown,stopped,completed",
    "statements": "MedicationStatement?patient={{context.patientId}}",
    "allergies": "AllergyIntolerance?patient={{context.patientId}}",
    # Every lab the screening reads, by the LOINC codes the FHIR reader maps (patient_bundle).
    "labs": "Observation?patient={{context.patientId}}&code="
    + ",".join(f"{LOINC}|{code}" for code in (*LAB_LOINC, PREGNANCY_STATUS))
    + "&_sort=-date&_count=100",
    "weight": f"Observation?patient={{{{context.patientId}}}}&code={LOINC}|{BODY_WEIGHT}"
    "&_sort=-date&_count=1",
}
#: Templates sorted newest first: the first page holds what the core reads (the latest
#: result), so their ``next`` links are not followed.
NEWEST_FIRST = frozenset({"labs", "weight"})
#: The allow-list entry that admits any server on this machine (localhost, 127.0.0.0/8, ::1).
LOOPBACK = "loopback"

_TOKEN = re.compile(r"\{\{\s*context\.(\w+)\s*\}\}")


@dataclass(frozen=True)
class FetchLimits:
    """Bounds of the FHIR fallback (from ``CdsSettings``)."""

    #: Seconds for all fallback queries together, pages included.
    deadline: float = 3.0
    #: Bytes read from one response at most.
    max_bytes: int = 5_000_000
    #: Pages read for one query at most (the first included).
    max_pages: int = 5
    #: ``fhirServer`` values that may be fetched from; ``None`` = any (the JWT vouches for the
    #: client). Entries are base URLs or :data:`LOOPBACK`.
    allowed_servers: tuple[str, ...] | None = None


@dataclass(frozen=True)
class MissingData:
    """One prefetch template ldncare needed and could not read."""

    key: str
    query: str | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"prefetch": self.key, "query": self.query, "reason": self.reason}

    def sentence(self) -> str:
        return f"{self.key}: {self.reason}"


@dataclass(frozen=True)
class Fetched:
    resources: list[dict[str, Any]] = field(default_factory=list)
    missing: list[MissingData] = field(default_factory=list)


class _Unreadable(Exception):
    """A fallback query that gave no usable answer; the message says why."""


def bare_id(value: Any) -> str | None:
    """``"Patient/123"`` -> ``"123"``; ``"123"`` -> ``"123"``."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().rsplit("/", 1)[-1]


def fill_template(template: str, context: Mapping[str, Any]) -> str | None:
    """Replace ``{{context.x}}`` tokens; ``None`` when a token has no simple value."""
    missing = False

    def sub(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        value = bare_id(context.get(name)) if name == "patientId" else context.get(name)
        if not isinstance(value, str):
            missing = True
            return ""
        # Encoded: a value can never add search parameters ("x&patient=y") or values ("p1,p2").
        return quote(value, safe="")

    filled = _TOKEN.sub(sub, template)
    return None if missing else filled


def is_operation_outcome(value: Any) -> bool:
    """Whether ``value`` is an OperationOutcome resource."""
    return isinstance(value, Mapping) and value.get("resourceType") == "OperationOutcome"


#: OperationOutcome issue severities that mean the search failed (information and warning
#: issues ride along with good results, e.g. a search parameter the server ignored).
_FAILED = frozenset({"error", "fatal"})


def _grave(outcome: Mapping[str, Any]) -> bool:
    issues = outcome.get("issue")
    return any(
        isinstance(i, Mapping) and i.get("severity") in _FAILED
        for i in (issues if isinstance(issues, list) else [])
    )


def _failed_status(response: Any) -> str | None:
    status = response.get("status") if isinstance(response, Mapping) else None
    if isinstance(status, int):
        status = str(status)
    if isinstance(status, str) and status.strip() and not status.strip().startswith("2"):
        return status.strip()
    return None


def prefetch_failure(value: Any) -> str | None:
    """Why a prefetch value reports a failed prefetch (CDS Hooks 2.0: "OperationOutcome(s)
    SHOULD be used"), or ``None`` when it is data. The shapes read as a failure:

    - an OperationOutcome, or a list holding one;
    - the ``{"response": {"status": "500"}, "resource": ...}`` wrapper with a status other
      than 2xx, or wrapping an OperationOutcome;
    - a Bundle with an entry whose ``response.status`` is not 2xx, or whose resource is an
      OperationOutcome with an ``error`` or ``fatal`` issue (a searchset's ``outcome`` entry
      with only warnings is data).
    """
    if isinstance(value, list):
        for item in value:
            why = prefetch_failure(item)
            if why is not None:
                return why
        return None
    if not isinstance(value, Mapping):
        return None
    rtype = value.get("resourceType")
    if rtype == "OperationOutcome":
        return _oo_text(value)
    if rtype == "Bundle":
        entries = value.get("entry")
        for entry in entries if type(entries) is list else []:
            if type(entry) is not dict:
                continue
            resource = entry.get("resource")
            # The common entry (a resource, no response) is passed over at once: a prefetch
            # holds a hundred of them and this runs on every call.
            response = entry.get("response")
            if response is None and (
                type(resource) is not dict or resource.get("resourceType") != "OperationOutcome"
            ):
                continue
            status = _failed_status(response)
            if status is not None:
                return f"HTTP {status}: " + (
                    _oo_text(resource) if is_operation_outcome(resource) else "no details"
                )
            if (
                isinstance(resource, Mapping)
                and is_operation_outcome(resource)
                and _grave(resource)
            ):
                return _oo_text(resource)
        return None
    if rtype is None and ("response" in value or "resource" in value):
        status = _failed_status(value.get("response"))
        resource = value.get("resource")
        if status is not None:
            return f"HTTP {status}: " + (
                _oo_text(resource) if is_operation_outcome(resource) else "no details"
            )
        return prefetch_failure(resource) if is_operation_outcome(resource) else None
    return None


def resources_in(value: Any) -> list[dict[str, Any]]:
    """Every FHIR resource inside a prefetch value, flattening Bundles and wrappers, in order.

    A loop with a stack, not recursive generators: a prefetch holds a hundred resources or
    more, and a generator per entry was about a twentieth of a whole CDS call.
    """
    found: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is list:
            stack.extend(reversed(item))
            continue
        if type(item) is not dict:
            continue
        rtype = item.get("resourceType")
        if rtype == "Bundle":
            entries = item.get("entry")
            if type(entries) is list:
                stack.extend(e.get("resource") for e in reversed(entries) if type(e) is dict)
        elif type(rtype) is str:
            found.append(item)
        elif "resource" in item:  # {"response": {...}, "resource": {...}}
            stack.append(item["resource"])
    return found


def templates_to_fetch(request: Mapping[str, Any], templates: Mapping[str, str]) -> list[str]:
    """Keys of the templates the request did not answer: absent from the prefetch, or answered
    with an OperationOutcome (a failed prefetch)."""
    prefetch = request.get("prefetch")
    prefetch = prefetch if isinstance(prefetch, Mapping) else {}
    return [
        key
        for key in templates
        if key not in prefetch or prefetch_failure(prefetch[key]) is not None
    ]


def unfinished_prefetch(request: Mapping[str, Any], templates: Mapping[str, str]) -> dict[str, str]:
    """``key -> next URL`` of the prefetched searchsets of ours that are one page of a longer
    search (a ``next`` link): the rest is read from the FHIR server like a fallback query's
    pages. Templates sorted newest first need only their first page."""
    prefetch = request.get("prefetch")
    prefetch = prefetch if isinstance(prefetch, Mapping) else {}
    out: dict[str, str] = {}
    for key in templates:
        value = prefetch.get(key)
        if key in NEWEST_FIRST or type(value) is not dict or "link" not in value:
            continue
        url = _next_link(value) if value.get("resourceType") == "Bundle" else None
        if url is not None and prefetch_failure(value) is None:
            out[key] = url
    return out


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_allowed(server: str, allowed: Sequence[str] | None) -> bool:
    """Whether ``server`` is on the allow-list (``None``: every server is)."""
    if allowed is None:
        return True
    for entry in allowed:
        if entry == LOOPBACK:
            if _is_loopback(urlsplit(server).hostname):
                return True
            continue
        base = entry.rstrip("/")
        if server.rstrip("/") == base or server.startswith(base + "/"):
            return True
    return False


def _oo_text(value: Any) -> str:
    issues = value.get("issue") if isinstance(value, Mapping) else None
    for issue in issues if isinstance(issues, list) else []:
        if isinstance(issue, Mapping):
            details = issue.get("details")
            text = issue.get("diagnostics") or (
                details.get("text") if isinstance(details, Mapping) else None
            )
            if isinstance(text, str) and text.strip():
                return " ".join(text.split())[:200]
    return "no details"


async def _read_json(client: httpx.AsyncClient, url: str, max_bytes: int) -> Any:
    async with client.stream("GET", url) as response:
        if response.status_code != 200:
            raise _Unreadable(f"the FHIR server answered HTTP {response.status_code}")
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise _Unreadable(f"the response is over the {max_bytes} byte limit")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise _Unreadable(f"the response is over the {max_bytes} byte limit")
            chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise _Unreadable(f"the response is not JSON ({exc})") from None


def _next_link(bundle: Any) -> str | None:
    links = bundle.get("link") if isinstance(bundle, Mapping) else None
    for link in links if isinstance(links, list) else []:
        if isinstance(link, Mapping) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None


def _on_server(url: str, base: str) -> bool:
    """Whether a ``next`` link stays on the server: under its base URL, or relative to it (a
    protocol-relative ``//host/...`` names another host)."""
    parts = urlsplit(url)
    return url.startswith(base) or not (parts.scheme or parts.netloc)


async def _query(
    client: httpx.AsyncClient, base: str, key: str, query: str, limits: FetchLimits, pages: int = 0
) -> list[dict[str, Any]]:
    """All resources of one template's query, pages included (within the limits). ``pages``:
    pages already read (the prefetch was the first page, ``query`` its ``next`` link)."""
    found: list[dict[str, Any]] = []
    url: str | None = query
    while url is not None:
        # The access token goes only to the server the EHR named: a next link elsewhere is
        # not followed, and the result would be incomplete, so it counts as missing.
        if pages and not _on_server(url, base):
            raise _Unreadable(f"a next link leads off the FHIR server ({url[:100]})")
        if pages == limits.max_pages:
            raise _Unreadable(f"the search has more than {limits.max_pages} pages")
        body = await _read_json(client, url, limits.max_bytes)
        pages += 1
        if is_operation_outcome(body):
            raise _Unreadable(f"the FHIR server answered an OperationOutcome: {_oo_text(body)}")
        failed = prefetch_failure(body)
        if failed is not None:
            raise _Unreadable(f"the FHIR server's search reports an error: {failed}")
        found.extend(resources_in(body))
        url = None if key in NEWEST_FIRST else _next_link(body)
    return found


#: The ``missing`` key of a Medication a draft order references and no resource of the request
#: holds (read from the FHIR server as ``Medication/{id}``).
DRAFT_MEDICATION = "draftOrders"
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _medication_on_server(reference: str, base: str) -> str | None:
    """The read (``Medication/{id}``) that fetches what ``reference`` names from the server at
    ``base``: a relative reference (versioned or not) or an absolute one on that server, parsed
    by :mod:`ldncare.fhir.references`; None for any other (another server, urn:uuid,
    conditional: not fetched, so answered 412)."""
    ref = parse_reference(reference)
    if ref is None or ref.resource_type != "Medication" or ref.id is None:
        return None
    if not _FHIR_ID.fullmatch(ref.id):
        return None
    if ref.kind == "absolute" and (ref.base or "").rstrip("/") + "/" != base:
        return None
    if ref.kind not in ("relative", "absolute"):
        return None
    return f"Medication/{ref.id}"


def fhir_server_problem(server: Any) -> str | None:
    """Why ``fhirServer`` cannot be asked (``None``: it is an http(s) URL with a host)."""
    if server is None:
        return "the request names no fhirServer to ask"
    if not isinstance(server, str):
        return f"fhirServer must be an http(s) URL, not {type(server).__name__}"
    parts = urlsplit(server.strip())
    if parts.scheme.lower() not in ("http", "https"):
        shown = f"its scheme is {parts.scheme}:" if parts.scheme else "it has no scheme"
        return f"fhirServer {server[:100]!r} is not an http(s) URL ({shown})"
    if not parts.hostname:
        return f"fhirServer {server[:100]!r} names no host"
    return None


def _whose(key: str) -> str:
    return "a draft order's" if key == DRAFT_MEDICATION else "an active medicine's"


async def fetch_missing(
    request: Mapping[str, Any],
    templates: Mapping[str, str],
    *,
    limits: FetchLimits,
    transport: httpx.AsyncBaseTransport | None = None,
    medications: Sequence[str] = (),
    keys: Sequence[str] | None = None,
    more: Mapping[str, str] | None = None,
    medication_key: str = DRAFT_MEDICATION,
) -> Fetched:
    """Resources for the templates the EHR did not prefetch, the rest of prefetched searches
    with more pages, and the Medications of ``medications`` (references of draft orders that
    no resource of the request holds); and what could not be read. ``keys`` and ``more``:
    :func:`templates_to_fetch` and :func:`unfinished_prefetch` when the caller has them.
    ``medication_key``: what the missing ``medications`` are reported under (``draftOrders``, or
    ``medications`` for the Medication of an active medicine on record)."""
    keys = templates_to_fetch(request, templates) if keys is None else keys
    more = unfinished_prefetch(request, templates) if more is None else more
    if not keys and not more and not medications:
        return Fetched()
    prefetch = request.get("prefetch")
    prefetch = prefetch if isinstance(prefetch, Mapping) else {}
    context = request.get("context")
    context = context if isinstance(context, Mapping) else {}
    queries = {key: fill_template(templates[key], context) for key in keys}

    def why(key: str, reason: str) -> str:
        if key in prefetch and key in queries:
            failure = prefetch_failure(prefetch[key]) or "no details"
            return f"the EHR's prefetch failed ({failure}) and {reason}"
        return reason

    server = request.get("fhirServer")
    problem = fhir_server_problem(server)
    if problem is None and not server_allowed(str(server).strip(), limits.allowed_servers):
        problem = (
            f"fhirServer {server} is not on the demo allow-list (LDNCARE_CDS_DEMO_FHIR_SERVERS)"
        )
    if problem is not None:
        return Fetched(
            missing=[
                *(
                    MissingData(k, queries[k], why(k, f"not prefetched, and {problem}"))
                    for k in keys
                ),
                *(
                    MissingData(
                        k, url, f"the prefetch is one page of a longer search, and {problem}"
                    )
                    for k, url in more.items()
                ),
                *(
                    MissingData(
                        medication_key,
                        ref,
                        f"{_whose(medication_key)} medicationReference is in neither draftOrders "
                        f"nor the prefetch, and {problem}",
                    )
                    for ref in medications
                ),
            ]
        )

    missing = [
        MissingData(k, None, why(k, "the context has no value for the template's token"))
        for k, q in queries.items()
        if q is None
    ]
    base = str(server).strip().rstrip("/") + "/"
    jobs: list[tuple[str, str, int]] = [(k, q, 0) for k, q in queries.items() if q is not None]
    jobs += [(k, url, 1) for k, url in more.items()]
    for ref in medications:
        relative = _medication_on_server(ref, base)
        if relative is not None:
            jobs.append((medication_key, relative, 0))
        else:
            missing.append(
                MissingData(
                    medication_key,
                    ref,
                    f"{_whose(medication_key)} medicationReference is in neither draftOrders "
                    "nor the prefetch, and is not a Medication read on the FHIR server "
                    "(Medication/{id})",
                )
            )
    headers = {"Accept": "application/fhir+json"}
    auth = request.get("fhirAuthorization")
    if isinstance(auth, Mapping) and isinstance(auth.get("access_token"), str):
        headers["Authorization"] = f"Bearer {auth['access_token']}"
    found: list[dict[str, Any]] = []
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=limits.deadline, transport=transport
    ) as client:
        tasks = {
            asyncio.ensure_future(_query(client, base, key, query, limits, pages)): (key, query)
            for key, query, pages in jobs
        }
        _done, pending = await asyncio.wait(tasks, timeout=limits.deadline) if tasks else ((), ())
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        for task, (key, query) in tasks.items():  # in template order
            exc = None if task in pending else task.exception()
            if task in pending:
                reason = f"no answer within the {limits.deadline:g} s deadline"
            elif isinstance(exc, _Unreadable):
                reason = str(exc)
            elif isinstance(exc, httpx.HTTPError | ValueError):
                reason = f"the FHIR server could not be read ({type(exc).__name__}: {exc})"
            elif exc is not None:
                raise exc
            else:
                found.extend(task.result())
                continue
            missing.append(MissingData(key, query, why(key, reason)))
    order = [*templates, DRAFT_MEDICATION]
    missing.sort(key=lambda m: order.index(m.key) if m.key in order else len(order))
    if missing:
        log.warning(
            "CDS fallback on %s could not read %s", server, "; ".join(m.sentence() for m in missing)
        )
    return Fetched(found, missing)
