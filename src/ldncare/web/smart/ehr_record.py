"""Read the launch patient's record from the EHR's FHIR server, for the same FHIR reader.

The searches are the resource types the plan reads (``scopes.RESOURCE_TYPES``), with the
access token as a Bearer token (SMART App Launch, "Access FHIR API"). They run
concurrently; each response is read up to ``max_response_bytes``; a searchset's ``next`` links
are followed up to ``max_pages``, and only on the same server (scheme, host and port, so the
token never goes over plain http from an https base). The resources are gathered into one
collection Bundle and read by :func:`ldncare.fhir.patient_bundle.patient_from_bundle` --
the reader of the file import and of CDS Hooks prefetch -- so a record reads the same whichever
way it arrives.

Every failure is a :class:`~ldncare.web.smart.errors.SmartError` the page can explain: 401 ->
the access expired, 403 -> a scope is missing, anything else -> the FHIR server could not be
read. Nothing is skipped silently: a search that failed fails the whole read, since a plan made
from part of a record (say, without the opioid prescriptions) would be wrong.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from ldncare.core.patient import Patient
from ldncare.fhir.patient_bundle import (
    BODY_HEIGHT,
    BODY_WEIGHT,
    LAB_LOINC,
    LOINC,
    PREGNANCY_STATUS,
    patient_from_bundle,
)
from ldncare.web.smart.errors import FhirServerDown, MissingScope, SessionExpired
from ldncare.web.smart.scopes import RESOURCE_TYPES
from ldncare.web.smart.settings import SmartSettings, tls_context

_OBS_CODES = ",".join(
    f"{LOINC}|{code}" for code in (*LAB_LOINC, PREGNANCY_STATUS, BODY_WEIGHT, BODY_HEIGHT)
)


class AccessExpired(SessionExpired):
    """The FHIR server answered 401: the caller may refresh the token once and retry."""


def searches(patient_id: str) -> list[str]:
    """The relative URLs read for one patient (the Patient itself first)."""
    pid = quote(patient_id, safe="")
    return [
        f"Patient/{pid}",
        f"Condition?patient={pid}",
        f"MedicationRequest?patient={pid}&_include=MedicationRequest:medication",
        f"MedicationStatement?patient={pid}",
        f"Observation?patient={pid}&code={quote(_OBS_CODES, safe=',|:/')}",
        f"AllergyIntolerance?patient={pid}",
    ]


async def _get_json(http: httpx.AsyncClient, url: str, limit: int) -> dict[str, Any]:
    try:
        async with http.stream("GET", url, headers={"Accept": "application/fhir+json"}) as resp:
            if resp.status_code == 401:
                raise AccessExpired("the EHR's FHIR server no longer accepts ldncare's access")
            if resp.status_code == 403:
                raise MissingScope(
                    f"the EHR's FHIR server refused {_path(url)} (HTTP 403): ldncare was not "
                    "granted access to this part of the record. Ask the EHR administrator to "
                    "allow the scopes listed in docs/SMART.md."
                )
            if resp.status_code != 200:
                raise FhirServerDown(
                    f"the EHR's FHIR server answered HTTP {resp.status_code} to {_path(url)}"
                )
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise FhirServerDown(
                        f"the EHR's answer to {_path(url)} is larger than {limit} bytes "
                        "(LDNCARE_SMART_MAX_RESPONSE_BYTES)"
                    )
    except httpx.TimeoutException:
        raise FhirServerDown(
            f"the EHR's FHIR server did not answer {_path(url)} in time; try again later"
        ) from None
    except httpx.HTTPError as exc:
        raise FhirServerDown(
            f"the EHR's FHIR server could not be reached ({type(exc).__name__}); it may be down"
        ) from None
    try:
        data = orjson.loads(bytes(body))
    except orjson.JSONDecodeError:
        raise FhirServerDown(f"the EHR's answer to {_path(url)} is not JSON") from None
    if not isinstance(data, dict):
        raise FhirServerDown(f"the EHR's answer to {_path(url)} is not a FHIR resource")
    return data


def same_server(url: str, base: str) -> bool:
    """Same scheme, host and port as the FHIR base: where the access token may go."""
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme.lower(), a.netloc.lower()) == (b.scheme.lower(), b.netloc.lower())


def _path(url: str) -> str:
    """The resource type and search of ``url`` without its query values (no patient id in
    messages that may be logged)."""
    parts = urlsplit(url).path.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] in RESOURCE_TYPES:
        return parts[-2]
    return parts[-1]


async def _search(
    http: httpx.AsyncClient, base: str, relative: str, settings: SmartSettings
) -> list[dict[str, Any]]:
    url = f"{base}/{relative}"
    resources: list[dict[str, Any]] = []
    for _ in range(settings.max_pages):
        data = await _get_json(http, url, settings.max_response_bytes)
        if data.get("resourceType") != "Bundle":
            resources.append(data)
            return resources
        entries, links = data.get("entry") or [], data.get("link") or []
        if not isinstance(entries, list) or not isinstance(links, list):
            raise FhirServerDown(
                f"the EHR's answer to {relative.split('?')[0]} is not a valid FHIR Bundle "
                "(its entry or link is not a list)"
            )
        for entry in entries:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and resource.get("resourceType") != "OperationOutcome":
                resources.append(resource)
        nxt = next(
            (
                link.get("url")
                for link in links
                if isinstance(link, dict) and link.get("relation") == "next"
            ),
            None,
        )
        if not isinstance(nxt, str):
            return resources
        if not same_server(nxt, base):
            raise FhirServerDown(
                "the EHR's search pointed to another server or to plain http; it was not read "
                "(the access token is sent only to the EHR's own https address)"
            )
        url = nxt
    raise FhirServerDown(
        f"the EHR's answer to {relative.split('?')[0]} has more than {settings.max_pages} pages "
        "(LDNCARE_SMART_MAX_PAGES)"
    )


async def read_record(
    iss: str,
    access_token: str,
    patient_id: str,
    settings: SmartSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    """The launch patient's resources as one FHIR collection Bundle (``transport``: tests)."""
    base = iss.rstrip("/")
    async with httpx.AsyncClient(
        transport=transport,
        timeout=settings.timeout_seconds,
        headers={"Authorization": f"Bearer {access_token}"},
        follow_redirects=False,
        verify=tls_context(),
    ) as http:
        results = await asyncio.gather(
            *(_search(http, base, rel, settings) for rel in searches(patient_id)),
            return_exceptions=True,
        )
    entries: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:  # an expired access first: the caller refreshes it and reads again
        raise next((f for f in failures if isinstance(f, AccessExpired)), failures[0])
    for result in results:
        assert not isinstance(result, BaseException)
        for resource in result:
            key = (str(resource.get("resourceType")), str(resource.get("id")))
            if key in seen and key[1] != "None":
                continue
            seen.add(key)
            entries.append({"fullUrl": f"{base}/{key[0]}/{key[1]}", "resource": resource})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def patient_from_record(bundle: dict[str, Any], patient_id: str) -> Patient:
    """The core Patient of the record, read by the importer's FHIR reader."""
    return patient_from_bundle(bundle, patient_id=patient_id)
