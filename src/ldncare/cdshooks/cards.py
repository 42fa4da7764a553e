"""CDS Hooks 2.0 cards: building them from core findings, and checking them against the spec.

:func:`validate_card` encodes the rules of the CDS Hooks 2.0 specification (Card, Source,
Suggestion, Action, Link) -- the same checklist the ONC Inferno CRD test kit applies in
``cards_validation.rb``: required ``summary`` (< 140 characters), ``indicator`` in
info|warning|critical, ``source.label``; ``selectionBehavior`` present and valid when there are
suggestions; each suggestion with a ``label`` and non-empty ``actions`` of type
create|update|delete; links with ``label``, absolute ``url`` and ``type`` absolute|smart, and
``appContext`` only on smart links; ``overrideReasons`` Codings with ``code`` and ``display``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

from ldncare.core.findings import Finding
from ldncare.evidence.loader import load_evidence

Indicator = Literal["info", "warning", "critical"]
SUMMARY_LIMIT = 140
INDICATORS = frozenset({"info", "warning", "critical"})
SELECTION_BEHAVIORS = frozenset({"at-most-one", "any"})
ACTION_TYPES = frozenset({"create", "update", "delete"})
LINK_TYPES = frozenset({"absolute", "smart"})
#: Our own code system for card topics (not a clinical terminology).
TOPIC_SYSTEM = "https://ldncare.org/cds/topic"
#: Our own code system for the reasons a clinician may give when overriding a card (CDS Hooks
#: 2.0 ``Card.overrideReasons``, fed back as ``overrideReason.reason``). Workflow reasons, not
#: clinical statements: they tell how a card fares, so that it can be tuned.
OVERRIDE_SYSTEM = "https://ldncare.org/cds/override-reason"
OVERRIDE_REASONS: tuple[tuple[str, str], ...] = (
    ("record-out-of-date", "The record is out of date"),
    ("already-addressed", "Already addressed"),
    ("does-not-apply", "Does not apply to this patient"),
    ("clinical-judgement", "Clinical judgement (see comment)"),
)
OVERRIDE_CODES = frozenset(code for code, _ in OVERRIDE_REASONS)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) < SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 2].rstrip() + "…"


def reference_lines(citations: Iterable[str], sources: Mapping[str, Any]) -> list[str]:
    """One Markdown list item per cited source (each once): the reference, linked when it has
    a URL or PMID, then its fit -- population, design, size and year (issue #22) -- so the
    reader sees that most LDN evidence comes from other conditions than pudendal neuralgia."""
    lines: list[str] = []
    for cid in dict.fromkeys(citations):
        src = sources.get(cid)
        if src is None:
            lines.append(f"- {cid}")
            continue
        # The line of a source is the same on every card: made once per loaded source (a
        # reloaded evidence base has new source objects, so it never gets an old line).
        made = _LINES.get(cid)
        if made is None or made[0] is not src:
            text = src.reference_text()
            url = src.url or (f"https://pubmed.ncbi.nlm.nih.gov/{src.pmid}/" if src.pmid else None)
            line = f"- [{text}]({url})" if url else f"- {text}"
            made = _LINES[cid] = (src, f"{line} *({src.fit_text()})*")
        lines.append(made[1])
    return lines


#: Each source's reference line, by citation id, with the source object it was made from.
_LINES: dict[str, tuple[Any, str]] = {}


_references = reference_lines


def finding_detail(findings: Sequence[Finding], sources: Mapping[str, Any], intro: str = "") -> str:
    """Markdown: each finding's message, its rule id and rationale, then the references."""
    parts = [intro] if intro else []
    for f in findings:
        parts.append(f"**{f.message}**\n\n*Why* ({f.rule}): {f.rationale}")
    refs = _references((c for f in findings for c in f.citations), sources)
    if refs:
        parts.append("**References**\n\n" + "\n".join(refs))
    return "\n\n".join(parts)


def make_card(
    *,
    summary: str,
    indicator: Indicator,
    detail: str,
    topic: tuple[str, str],
    app_url: str,
    patient_id: str | None,
    suggestions: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    # Which knowledge the card was made with (issue 22); the loaded base is cached.
    release = load_evidence().release
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": _short(summary),
        "indicator": indicator,
        "detail": f"{detail}\n\n*ldncare {release.label()}.*",
        "source": {
            "label": "ldncare",
            "url": app_url,
            "topic": {"system": TOPIC_SYSTEM, "code": topic[0], "display": topic[1]},
        },
    }
    if patient_id:
        card["links"] = [
            {
                "label": "Open the LDN plan in ldncare",
                # By external id: the card knows the FHIR Patient id, not ldncare's own.
                "url": f"{app_url.rstrip('/')}/patients/by-external/{quote(patient_id, safe='')}",
                "type": "absolute",
            }
        ]
    card["overrideReasons"] = [
        {"system": OVERRIDE_SYSTEM, "code": code, "display": display}
        for code, display in OVERRIDE_REASONS
    ]
    if suggestions:
        card["suggestions"] = [
            dict(s, uuid=s.get("uuid") or str(uuid.uuid4())) for s in suggestions
        ]
        card["selectionBehavior"] = "at-most-one"
    return card


def with_smart_link(card: dict[str, Any], launch_url: str) -> dict[str, Any]:
    """``card`` with a link that opens ldncare inside the EHR on the card's patient (issue #21).

    CDS Hooks 2.0 Link: ``type: "smart"`` asks the EHR to launch ``url`` with the SMART launch
    parameters (``iss``, ``launch``); ``appContext`` "will be sent to the SMART app as part of the
    OAuth 2.0 access token response" (https://cds-hooks.hl7.org/2.0/#link). Ours names the
    card's topic, so the app opens on what the card was about.
    """
    topic = card.get("source", {}).get("topic") or {}
    link = {
        "label": "Open ldncare on this patient",
        "url": launch_url,
        "type": "smart",
        "appContext": json.dumps({"topic": topic.get("code"), "display": topic.get("display")}),
    }
    return {**card, "links": [*card.get("links", ()), link]}


# --------------------------------------------------------------------------- validation


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _check_action(action: Any, where: str) -> Iterable[str]:
    if not isinstance(action, Mapping):
        yield f"{where}: an action must be an object"
        return
    if action.get("type") not in ACTION_TYPES:
        yield f"{where}.type: {action.get('type')!r} is not create, update or delete"
    if not isinstance(action.get("description"), str):
        yield f"{where}.description: required text"
    if action.get("type") in {"create", "update"}:
        resource = action.get("resource")
        if not isinstance(resource, Mapping) or "resourceType" not in resource:
            yield f"{where}.resource: a FHIR resource is required for {action.get('type')}"
    if action.get("type") == "delete" and not isinstance(action.get("resourceId"), str):
        yield f"{where}.resourceId: a relative reference is required for delete"


def validate_card(card: Any) -> list[str]:
    """Problems with one card (empty list = valid per CDS Hooks 2.0)."""
    if not isinstance(card, Mapping):
        return ["card: must be an object"]
    problems: list[str] = []
    summary = card.get("summary")
    if not isinstance(summary, str) or not summary:
        problems.append("summary: required text")
    elif len(summary) >= SUMMARY_LIMIT:
        problems.append(f"summary: {len(summary)} characters, must be under {SUMMARY_LIMIT}")
    if card.get("indicator") not in INDICATORS:
        problems.append(f"indicator: {card.get('indicator')!r} is not info, warning or critical")
    source = card.get("source")
    if not isinstance(source, Mapping) or not isinstance(source.get("label"), str):
        problems.append("source.label: required")
    elif "url" in source and not _is_url(source["url"]):
        problems.append("source.url: must be an absolute URL")
    elif isinstance(source.get("topic"), Mapping) and not isinstance(
        source["topic"].get("code"), str
    ):
        problems.append("source.topic.code: required in a topic")
    if "uuid" in card and not isinstance(card["uuid"], str):
        problems.append("uuid: must be a string")
    if "detail" in card and not isinstance(card["detail"], str):
        problems.append("detail: must be markdown text")
    suggestions = card.get("suggestions")
    if suggestions is not None:
        if not isinstance(suggestions, list):
            problems.append("suggestions: must be a list")
        else:
            if suggestions and card.get("selectionBehavior") not in SELECTION_BEHAVIORS:
                problems.append(
                    "selectionBehavior: at-most-one or any is required with suggestions"
                )
            for i, s in enumerate(suggestions):
                if not isinstance(s, Mapping) or not isinstance(s.get("label"), str):
                    problems.append(f"suggestions[{i}].label: required")
                    continue
                actions = s.get("actions")
                if actions is None:
                    continue
                if not isinstance(actions, list) or not actions:
                    problems.append(f"suggestions[{i}].actions: must be a non-empty list")
                    continue
                for j, a in enumerate(actions):
                    problems += _check_action(a, f"suggestions[{i}].actions[{j}]")
    reasons = card.get("overrideReasons")
    if reasons is not None:
        if not isinstance(reasons, list):
            problems.append("overrideReasons: must be a list of Codings")
        else:
            for i, r in enumerate(reasons):
                if not isinstance(r, Mapping) or not isinstance(r.get("code"), str):
                    problems.append(f"overrideReasons[{i}].code: required in a Coding")
                elif not isinstance(r.get("display"), str):
                    problems.append(f"overrideReasons[{i}].display: shown to the clinician")
    links = card.get("links")
    if links is not None:
        if not isinstance(links, list):
            problems.append("links: must be a list")
        else:
            for i, link in enumerate(links):
                if not isinstance(link, Mapping):
                    problems.append(f"links[{i}]: must be an object")
                    continue
                if not isinstance(link.get("label"), str):
                    problems.append(f"links[{i}].label: required")
                if not _is_url(link.get("url")):
                    problems.append(f"links[{i}].url: must be an absolute URL")
                if link.get("type") not in LINK_TYPES:
                    problems.append(f"links[{i}].type: must be absolute or smart")
                if link.get("type") == "absolute" and "appContext" in link:
                    problems.append(f"links[{i}].appContext: only allowed on smart links")
    return problems


def validate_response(body: Any) -> list[str]:
    """Problems with a whole CDS service response."""
    if not isinstance(body, Mapping) or not isinstance(body.get("cards"), list):
        return ["response: must be an object with a 'cards' list"]
    problems: list[str] = []
    for i, card in enumerate(body["cards"]):
        problems += [f"cards[{i}].{p}" for p in validate_card(card)]
    return problems
