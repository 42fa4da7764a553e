"""CDS Hooks 2.0 feedback: what a client may send, and how each service's cards fare.

A feedback item (https://cds-hooks.hl7.org/2.0/#feedback) names the ``card`` (its uuid), the
``outcome`` (``accepted`` or ``overridden``) and the ``outcomeTimestamp``; an accepted card may
list ``acceptedSuggestions`` (by suggestion ``id``), an overridden one may give an
``overrideReason``: a ``reason`` Coding (ldncare offers its own on every card, see
``cards.OVERRIDE_REASONS``; a client may also send its own system's) and/or a ``userComment``.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ldncare.cdshooks.cards import OVERRIDE_CODES, OVERRIDE_SYSTEM

#: CDS Hooks 2.0 feedback outcomes.
OUTCOMES = frozenset({"accepted", "overridden"})
#: The fields of a feedback item that are kept (CDS Hooks 2.0); anything else a client sends,
#: a ``service`` among them, is dropped: the service is the one in the path.
FIELDS = ("card", "outcome", "outcomeTimestamp", "acceptedSuggestions", "overrideReason")
#: Largest feedback item, in bytes of its JSON: a card uuid, an outcome, a timestamp, a few
#: suggestion ids and an override reason with a comment fit in a small fraction of it.
ITEM_MAX_BYTES = 8_192
#: Feedback kept in memory at most: items (the newest) and bytes of their JSON together.
KEPT_ITEMS = 10_000
KEPT_BYTES = 8_000_000
#: A card's uuid as ldncare writes it (RFC 4122 text form).
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _timestamp_problem(value: Any) -> str | None:
    """``outcomeTimestamp`` must be an ISO 8601 date and time ("2026-12-04T13:52:00Z")."""
    problem = (
        "feedback 'outcomeTimestamp' must be an ISO 8601 date and time "
        "(e.g. 2026-12-04T13:52:00Z), not "
    )
    if not isinstance(value, str):
        return "feedback 'outcomeTimestamp' (an ISO 8601 instant) is required"
    if "T" not in value.upper() or len(value) > 40:
        return problem + repr(value[:40])
    try:
        datetime.fromisoformat(value.strip())
    except ValueError:
        return problem + repr(value[:40])
    return None


def feedback_problem(item: Any) -> str | None:
    """What is wrong with one CDS Hooks 2.0 feedback item, or ``None``."""
    if not isinstance(item, dict) or not isinstance(item.get("card"), str) or not item["card"]:
        return "each feedback item must be an object with the 'card' uuid"
    if not _UUID.fullmatch(item["card"]):
        return f"feedback 'card' must be the card's uuid, not {item['card'][:60]!r}"
    outcome = item.get("outcome")
    if outcome not in OUTCOMES:
        return f"feedback 'outcome' must be 'accepted' or 'overridden', not {outcome!r}"
    timestamp = _timestamp_problem(item.get("outcomeTimestamp"))
    if timestamp is not None:
        return timestamp
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
    if coding is not None and coding.get("system") != OVERRIDE_SYSTEM:
        # A card offers only ldncare's reasons (CDS Hooks 2.0: the overrideReason is one of
        # the card's overrideReasons); another system's code would be counted as a reason.
        shown = str(coding.get("system"))[:100]
        return (
            f"override reason system must be {OVERRIDE_SYSTEM!r}, the one the cards offer, "
            f"not {shown!r}"
        )
    if coding is not None and coding["code"] not in OVERRIDE_CODES:
        return (
            f"override reason {coding['code']!r} is not one ldncare offers; accepted: "
            + ", ".join(sorted(OVERRIDE_CODES))
        )
    if "userComment" in reason and not isinstance(reason["userComment"], str):
        return "'overrideReason.userComment' must be text"
    if coding is None and "userComment" not in reason:
        return "'overrideReason' needs a 'reason' or a 'userComment'"
    return None


def kept(item: Mapping[str, Any], service: str) -> dict[str, Any]:
    """What is kept of a (checked) feedback item: its CDS Hooks fields, and the path's service
    (set last: a ``service`` field the client sent can never override it)."""
    out = {k: item[k] for k in FIELDS if k in item}
    out["service"] = service
    return out


class FeedbackLog(deque):  # type: ignore[type-arg]
    """The newest feedback items, bounded by count (``maxlen``) and by bytes of their JSON
    (``max_bytes``): the oldest go first when either is reached."""

    def __init__(self, maxlen: int = KEPT_ITEMS, max_bytes: int = KEPT_BYTES) -> None:
        super().__init__(maxlen=maxlen)
        self.max_bytes = max_bytes
        self.bytes = 0
        self._sizes: deque[int] = deque()

    def add(self, item: dict[str, Any], size: int) -> None:
        while self and (len(self) == self.maxlen or self.bytes + size > self.max_bytes):
            self.popleft()
            self.bytes -= self._sizes.popleft()
        self.append(item)
        self._sizes.append(size)
        self.bytes += size


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
