"""The scopes ldncare asks for and whether a granted scope string lets it read what it needs.

SMART App Launch 2.x, "Scopes and Launch Context"
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html): clinical scopes are
``<context>/<resource>.<permissions>`` with v2 permissions ``c r u d s`` (``patient/Observation.rs``
= read and search the current patient's Observations); SMART 1 ``.read`` is still granted by
many EHRs and means the same for reading. ``launch`` asks for the EHR's launch context (EHR
launch), ``launch/patient`` asks the EHR to let the user pick a patient (standalone launch);
``openid fhirUser`` asks who the user is. A server may grant less than was asked, so ldncare
checks the granted ``scope`` of the token response before reading anything.
"""

from __future__ import annotations

import re

#: What the plan reads (the FHIR reader of fhir/patient_bundle.py), in query order.
RESOURCE_TYPES: tuple[str, ...] = (
    "Patient",
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "AllergyIntolerance",
)
#: What the scopes must cover: the searched types and Medication, which arrives only through
#: ``_include=MedicationRequest:medication``. Many EHRs drop included resources the app has no
#: scope for, and a MedicationRequest whose Medication is missing names no drug the opioid
#: check could see, so a grant without it is treated like any other missing read.
SCOPE_TYPES: tuple[str, ...] = (*RESOURCE_TYPES, "Medication")
IDENTITY_SCOPES = ("openid", "fhirUser")

_CLINICAL = re.compile(r"^(patient|user|system)/(\*|[A-Za-z]+)\.(\*|read|[cruds]+)(\?.*)?$")


def requested_scopes(*, standalone: bool, v1: bool = False) -> str:
    """The scope parameter of an authorization request: read access to what the plan needs,
    the user's identity, and the launch context (``launch`` in an EHR launch, ``launch/patient``
    in a standalone launch). ``v1`` writes ``.read`` for servers without ``permission-v2``."""
    permission = "read" if v1 else "rs"
    clinical = [f"patient/{rtype}.{permission}" for rtype in SCOPE_TYPES]
    context = "launch/patient" if standalone else "launch"
    return " ".join([*IDENTITY_SCOPES, context, *clinical])


def grants_read(granted: str, resource_type: str) -> bool:
    """Whether ``granted`` (a space-separated scope string) lets the app read and search the
    launch patient's ``resource_type``. A v2 scope must hold both ``r`` and ``s`` (ldncare
    searches); a scope narrowed by a query (``?category=...``) is not counted, since ldncare
    reads every record of the type and must not mistake a filtered list for a complete one."""
    for scope in granted.split():
        match = _CLINICAL.match(scope)
        if not match:
            continue
        context, rtype, perms, query = match.groups()
        if context not in ("patient", "user") or query:
            continue
        if rtype not in ("*", resource_type):
            continue
        if perms in ("*", "read") or ("r" in perms and "s" in perms):
            return True
    return False


def missing_reads(granted: str) -> list[str]:
    """The resource types of :data:`SCOPE_TYPES` that ``granted`` does not let ldncare read."""
    return [rtype for rtype in SCOPE_TYPES if not grants_read(granted, rtype)]
