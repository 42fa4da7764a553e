"""CDS Hooks 2.0 feedback: what a client may send, and how each service's cards fare.

A feedback item (https://cds-hooks.hl7.org/2.0/#feedback) names the ``card`` (its uuid), the
``outcome`` (``accepted`` or ``overridden``) and the ``outcomeTimestamp``; an accepted card may
list ``acceptedSuggestions`` (by suggestion ``id``), an overridden one may give an
``overrideReason``: a ``reason`` Coding (ldncare offers its own on every card, see
``cards.OVERRIDE_REASONS``; a client may also send its own system's) and/or a ``userComment``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ldncare.cdshooks.cards import OVERRIDE_CODES, OVERRIDE_SYSTEM

#: CDS Hooks 2.0 feedback outcomes.
OUTCOMES = frozenset({"accepted", "overridden"})


def feedback_problem(item: Any) -> str | None:
    """What is wrong with one CDS Hooks 2.0 feedback item, or ``None``."""
    if not isinstance(item, dict) or not isinstance(item.get("card"), str) or not item["card"]:
        return "each feedback item must be an object with the 'card' uuid"
    outcome = item.get("outcome")
    if outcome not in OUTCOMES:
        return f"feedback 'outcome' must be 'accepted' or 'overridden', not {outcome!r}"
    if not isinstance(item.get("outcomeTimestamp"), str):
        return "feedback 'outcomeTimestamp' (an ISO 8601 instant) is required"
    accepted = item.get("acceptedSuggestions")
    if outcome == "accepted":
        if "overrideReason" in item:
            return "an 'accepted' feedback carries no 'overrideReason'"
        if accepted is not None and not (
            isinstance(accepted, list)
            and all(isinstance(a, dict) and isinstance(a.get("id"), str) for a in accepted)
        ):
            return "'acceptedSuggestions' must be a list of objects with a suggestion 'id'"
        return None
    if accepted:
        return "an 'overridden' feedback accepts no suggestions"
    reason = item.get("overrideReason")
    if reason is None:
        return None  # the clinician may dismiss a card without giving a reason
    if not isinstance(reason, dict):
        return "'overrideReason' must be an object with 'reason' (a Coding) and/or 'userComment'"
    coding = reason.get("reason")
    if coding is not None and not (
        isinstance(coding, dict) and isinstance(coding.get("code"), str)
    ):
        return "'overrideReason.reason' must be a Coding with a 'code'"
    if (
        coding is not None
        and coding.get("system") == OVERRIDE_SYSTEM
        and coding["code"] not in OVERRIDE_CODES
    ):
        return (
            f"override reason {coding['code']!r} is not one ldncare offers; accepted: "
            + ", ".join(sorted(OVERRIDE_CODES))
        )
    if "userComment" in reason and not isinstance(reason["userComment"], str):
        return "'overrideReason.userComment' must be text"
    if coding is None and "userComment" not in reason:
        return "'overrideReason' needs a 'reason' or a 'userComment'"
    return None


def how_cards_fare(items: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per service: cards accepted, overridden, and the override reasons given (by code;
    ``"no reason"`` when none was coded)."""
    fare: dict[str, dict[str, Any]] = {}
    for item in items:
        service = fare.setdefault(
            str(item.get("service")), {"accepted": 0, "overridden": 0, "reasons": Counter()}
        )
        service[str(item["outcome"])] += 1
        if item["outcome"] == "overridden":
            reason = item.get("overrideReason") or {}
            coding = reason.get("reason") if isinstance(reason, Mapping) else None
            code = coding.get("code") if isinstance(coding, Mapping) else None
            service["reasons"][code or "no reason"] += 1
    return fare
