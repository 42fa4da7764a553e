"""Collect the FHIR data a hook needs: prefetch first, the EHR's FHIR server for the rest.

Prefetch values arrive in every shape real EHRs use: a resource, a searchset Bundle, the
older ``{"response": ..., "resource": ...}`` wrapper, or ``null`` (nothing found). Keys are the
EHR's own (``item1``, ``patientToGreet``), so resources are gathered from *all* values, and a
template counts as answered when a key of ours is present, even if null.

A missing template is fetched from ``fhirServer`` with ``fhirAuthorization.access_token`` as a
Bearer token. Any failure (timeout, HTTP error, bad JSON) is logged and skipped: the service
answers with what it has rather than failing the EHR's workflow.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import httpx

from ldncare.fhir.patient_bundle import BODY_WEIGHT, LAB_LOINC, LOINC, PREGNANCY_STATUS

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

_TOKEN = re.compile(r"\{\{\s*context\.(\w+)\s*\}\}")


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
        return value

    filled = _TOKEN.sub(sub, template)
    return None if missing else filled


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
    """Keys of the templates :func:`fetch_missing` would query: not prefetched, and the request
    names a FHIR server to ask."""
    server = request.get("fhirServer")
    if not isinstance(server, str) or not server.startswith(("http://", "https://")):
        return []
    prefetch = request.get("prefetch")
    prefetch = prefetch if isinstance(prefetch, Mapping) else {}
    return [key for key in templates if key not in prefetch]


async def fetch_missing(
    request: Mapping[str, Any],
    templates: Mapping[str, str],
    *,
    timeout: float,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[dict[str, Any]]:
    """Resources for the templates the EHR did not prefetch, from its FHIR server."""
    missing = templates_to_fetch(request, templates)
    if not missing:
        return []
    server = str(request["fhirServer"])
    context = request.get("context")
    context = context if isinstance(context, Mapping) else {}
    headers = {"Accept": "application/fhir+json"}
    auth = request.get("fhirAuthorization")
    if isinstance(auth, Mapping) and isinstance(auth.get("access_token"), str):
        headers["Authorization"] = f"Bearer {auth['access_token']}"
    found: list[dict[str, Any]] = []
    async with httpx.AsyncClient(
        base_url=server.rstrip("/") + "/", headers=headers, timeout=timeout, transport=transport
    ) as client:
        for key in missing:
            query = fill_template(templates[key], context)
            if query is None:
                continue
            try:
                response = await client.get(query)
                response.raise_for_status()
                found.extend(resources_in(response.json()))
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("CDS fallback query %s on %s failed: %s", query, server, exc)
    return found
