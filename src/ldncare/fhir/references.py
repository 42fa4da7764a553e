"""FHIR references, resolved one way: the Bundle reader, the importer and the NDJSON reader use
this module, so a reference that resolves on one path resolves on every path.

A reference that resolves on one path and not on another hides a drug -- an opioid -- from a
check (issue #17). The forms (FHIR R4, "Resource References", references.html):

- contained: ``#med1``, a resource in the referring resource's ``contained``;
- relative: ``Medication/123``; versioned: ``Medication/123/_history/2``;
- absolute: ``https://example.org/fhir/Medication/123`` (optionally versioned);
- ``urn:uuid:...`` (and ``urn:oid:...``): the ``fullUrl`` of a Bundle entry;
- conditional: ``Medication?identifier=http://example.org/ids|123``, ``Medication?code=
  http://www.nlm.nih.gov/research/umls/rxnorm|1049621`` or ``Medication?_id=123``, in
  transaction Bundles (resolved against the resources at hand, :func:`resolve`);
- logical: ``Reference.identifier`` without ``reference`` (:func:`resolve_identifier`).

A versioned reference resolves to the resource of that id whatever its version: an export or a
Bundle holds one version of each resource, and leaving a drug unnamed because the version
differs would hide it from every check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

ReferenceKind = Literal["contained", "relative", "absolute", "urn", "conditional"]

#: ``[base/]Type/id[/_history/version]``. FHIR ids are 1-64 of [A-Za-z0-9.-], but an id outside
#: that (``p_1``, a long one) is still taken: refusing it would drop the patient's resources (an
#: opioid among them) as "referring to no patient" while the Patient itself is imported.
_LITERAL = re.compile(
    # Any base, not only an http(s) URL: a base the reader does not know still names the type
    # and id, and refusing it would leave the drug unnamed.
    r"^(?:(?P<base>.+?)/)?"
    r"(?P<type>[A-Z][A-Za-z]+)/(?P<id>[^/?#\s]+)"
    r"(?:/_history/(?P<version>[^/?#\s]+))?$"
)
_CONDITIONAL = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)\?(?P<query>.+)$")


@dataclass(frozen=True)
class Reference:
    """A parsed ``Reference.reference``."""

    raw: str
    kind: ReferenceKind
    resource_type: str | None = None
    id: str | None = None
    version: str | None = None
    #: The service base of an absolute reference (``https://example.org/fhir``).
    base: str | None = None
    #: The search parameters of a conditional reference.
    query: tuple[tuple[str, str], ...] = ()

    @property
    def relative(self) -> str | None:
        """``Type/id`` without base or version, when the reference names both."""
        if self.resource_type and self.id:
            return f"{self.resource_type}/{self.id}"
        return None


def parse_reference(reference: str) -> Reference | None:
    """The parts of ``reference``; None when it is none of the FHIR forms."""
    ref = reference.strip()
    if not ref:
        return None
    if ref.startswith("#"):
        return Reference(ref, "contained", id=ref[1:] or None)
    if ref.startswith(("urn:uuid:", "urn:oid:")):
        tail = ref.split(":", 2)[2]
        return Reference(ref, "urn", id=tail or None) if tail else None
    found = _LITERAL.match(ref)
    if found is not None:
        kind: ReferenceKind = "absolute" if found["base"] else "relative"
        if found["base"] and found["base"].endswith("/_history"):
            return None
        return Reference(
            ref, kind, found["type"], found["id"], found["version"], base=found["base"]
        )
    cond = _CONDITIONAL.match(ref)
    if cond is not None:
        query = tuple(parse_qsl(cond["query"], keep_blank_values=True))
        return Reference(ref, "conditional", cond["type"], query=query) if query else None
    return None


def patient_key(reference: str) -> str | None:
    """The Patient id a subject reference names: ``Patient/123``,
    ``https://x/fhir/Patient/123/_history/2`` and ``urn:uuid:123`` -> ``123``; None for a
    reference to anything else (or a conditional one, which names no id)."""
    if reference.startswith("Patient/"):  # the common form, without the regex (bulk imports)
        rest = reference[8:]
        if rest and "/" not in rest and "?" not in rest:
            return rest
    elif reference.startswith("urn:uuid:"):
        return reference[9:] or None
    ref = parse_reference(reference)
    if ref is None:
        return None
    if ref.kind == "urn":
        return ref.id if reference.startswith("urn:uuid:") else None
    if ref.kind in ("relative", "absolute") and ref.resource_type == "Patient":
        return ref.id
    return None


def literal_patient_id(reference: str) -> str | None:
    """The Patient id a literal reference names (``Patient/123``, versioned, or absolute on any
    base); None for anything else, ``urn:uuid:`` included: a uuid says which Bundle entry is
    meant, not which Patient id, so it cannot show that a resource is about another patient."""
    ref = parse_reference(reference)
    if ref is not None and ref.kind in ("relative", "absolute") and ref.resource_type == "Patient":
        return ref.id
    return None


def refers_to(reference: str, resource_type: str, rid: str) -> bool:
    """Whether ``reference`` is a literal reference (relative, versioned or absolute) to the
    resource ``resource_type/rid``: how an order-select ``selections`` entry names a draft."""
    ref = parse_reference(reference)
    return (
        ref is not None
        and ref.kind in ("relative", "absolute")
        and ref.resource_type == resource_type
        and ref.id == rid
    )


def full_urls(value: Any) -> dict[int, str]:
    """The ``fullUrl`` of every resource in the Bundles inside ``value`` (a Bundle, a list, a
    ``{"resource": ...}`` wrapper, nested Bundles), by the resource's identity (``id()``):
    what :func:`index_resources` needs once the resources have been taken out of their
    Bundles, so that an absolute or ``urn:uuid`` reference to one of them still resolves."""
    urls: dict[int, str] = {}
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, Mapping):
            if item.get("resourceType") == "Bundle":
                entries = item.get("entry")
                for e in entries if isinstance(entries, list) else []:
                    if not isinstance(e, Mapping):
                        continue
                    res = e.get("resource")
                    if isinstance(e.get("fullUrl"), str) and isinstance(res, Mapping):
                        urls[id(res)] = e["fullUrl"]
                    stack.append(res)
            elif "resource" in item and "resourceType" not in item:
                stack.append(item["resource"])
    return urls


def contained(
    source: Mapping[str, Any] | None, reference: str, resource_type: str | None = None
) -> Mapping[str, Any] | None:
    """The resource of ``source.contained`` that ``#id`` names (of ``resource_type`` if
    given), or None."""
    if source is None or not reference.startswith("#") or len(reference) < 2:
        return None
    items = source.get("contained")
    for item in items if isinstance(items, list) else []:
        if (
            isinstance(item, Mapping)
            and item.get("id") == reference[1:]
            and (resource_type is None or item.get("resourceType") == resource_type)
        ):
            return item
    return None


def index_resources(
    entries: Iterable[tuple[str | None, Mapping[str, Any]]],
) -> dict[str, Mapping[str, Any]]:
    """Resources by every literal key a reference may use: ``Type/id`` and the entry's
    ``fullUrl`` (which an absolute or ``urn:uuid`` reference names)."""
    index: dict[str, Mapping[str, Any]] = {}
    for url, res in entries:
        rtype, rid = res.get("resourceType"), res.get("id")
        if isinstance(rtype, str) and isinstance(rid, str) and rid:
            index[f"{rtype}/{rid}"] = res
        if isinstance(url, str) and url:
            index[url] = res
    return index


def resolve(
    reference: str,
    index: Mapping[str, Mapping[str, Any]],
    *,
    source: Mapping[str, Any] | None = None,
    resource_type: str | None = None,
) -> Mapping[str, Any] | None:
    """The resource ``reference`` names, or None when it names none of those given.

    ``index`` is :func:`index_resources` (or any map of ``Type/id`` and full URLs);
    ``source`` the referring resource, for ``#id``; ``resource_type`` the type expected
    (``Medication`` for a ``medicationReference``): a reference to another type resolves to
    nothing. A conditional reference resolves when exactly one resource of its type matches
    every ``identifier``, ``code`` and ``_id`` it gives (FHIR token search; other search
    parameters cannot be judged here, so a reference using one resolves to nothing).
    """
    found = _resolve(reference, index, source, resource_type)
    if (
        found is not None
        and resource_type is not None
        and found.get("resourceType") != resource_type
    ):
        return None
    return found


def _resolve(
    reference: str,
    index: Mapping[str, Mapping[str, Any]],
    source: Mapping[str, Any] | None,
    resource_type: str | None,
) -> Mapping[str, Any] | None:
    if reference.startswith("#"):
        return contained(source, reference, resource_type)
    exact = index.get(reference)
    if exact is not None:
        return exact
    ref = parse_reference(reference)
    if ref is None or ref.kind in ("urn", "contained"):
        return None
    if ref.kind == "conditional":
        return _conditional(ref, index)
    if ref.kind == "absolute" and ref.version is not None:
        # The full URL without its version, as a Bundle entry's fullUrl carries it.
        unversioned = index.get(reference.split("/_history/", 1)[0])
        if unversioned is not None:
            return unversioned
    return index.get(ref.relative) if ref.relative else None


#: Search parameters a conditional reference may use that :func:`_conditional` can judge.
_JUDGED = frozenset({"identifier", "code", "_id"})


def _conditional(
    ref: Reference, index: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    if not ref.query or any(name not in _JUDGED for name, _ in ref.query):
        return None
    seen: dict[int, Mapping[str, Any]] = {}
    for res in index.values():
        if res.get("resourceType") == ref.resource_type:
            seen[id(res)] = res
    matches = [r for r in seen.values() if all(_matches(r, n, v) for n, v in ref.query)]
    return matches[0] if len(matches) == 1 else None


def _matches(resource: Mapping[str, Any], name: str, value: str) -> bool:
    """One search parameter; a comma is FHIR's "or" between values."""
    values = value.split(",")
    if name == "_id":
        return resource.get("id") in values
    if name == "identifier":
        return any(_has_identifier(resource, v) for v in values)
    return any(_has_code(resource, v) for v in values)


def _has_code(resource: Mapping[str, Any], token: str) -> bool:
    """FHIR token search on ``code.coding`` (``system|code``, ``|code``, ``code``)."""
    concept = resource.get("code")
    codings = concept.get("coding") if isinstance(concept, Mapping) else None
    return any(
        isinstance(c, Mapping) and _token_matches(c.get("system"), c.get("code"), token)
        for c in (codings if isinstance(codings, list) else [])
    )


def _token_matches(system: Any, value: Any, token: str) -> bool:
    want_system, bar, want = token.rpartition("|")
    if not want or value != want:
        return False
    if not bar:
        return True
    return system is None if want_system == "" else system == want_system


def resolve_identifier(
    identifier: Any, index: Mapping[str, Mapping[str, Any]], resource_type: str
) -> Mapping[str, Any] | None:
    """The one resource of ``resource_type`` in ``index`` carrying ``identifier`` (a FHIR
    Identifier: a ``Reference.identifier`` without ``reference``), or None when none or several
    do, or the identifier has no value."""
    if not isinstance(identifier, Mapping) or not isinstance(identifier.get("value"), str):
        return None
    system = identifier.get("system")
    token = f"{system}|{identifier['value']}" if isinstance(system, str) else identifier["value"]
    seen = {id(r): r for r in index.values() if r.get("resourceType") == resource_type}
    matches = [r for r in seen.values() if _has_identifier(r, token)]
    return matches[0] if len(matches) == 1 else None


def _has_identifier(resource: Mapping[str, Any], token: str) -> bool:
    """FHIR token search ``system|value`` (``|value``: no system; ``value``: any system)."""
    system, bar, value = token.rpartition("|")
    items = resource.get("identifier")
    for ident in items if isinstance(items, list) else []:
        if not isinstance(ident, Mapping) or ident.get("value") != value:
            continue
        if not bar or (system == "" and ident.get("system") is None):
            return True
        if system and ident.get("system") == system:
            return True
    return False
