"""Where a patient on an LDN plan stands, for the clinician: stage, flags and response verdict.

The dashboard, the patient page and the JSON API all show this; it is decided here, once, from
facts the callers bring: what the latest plan says (:class:`PlanFacts`), the diary, the day, the
date of the last review note, and a way to run the full response assessment when it is needed.
Nothing here reads a database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ldncare.core.diary import DiaryEntry
from ldncare.core.plan_contract import Finding, PlanLike, ldn_of
from ldncare.core.response import ResponseAssessment

#: Diary days looked at for "side effects reported".
SIDE_EFFECT_DAYS = 14

#: Findings whose rule id starts with this are about an opioid in the record (ldn.opioid.active,
#: ldn.opioid.washout, ldn.opioid.history).
OPIOID_RULE_PREFIX = "ldn.opioid."
#: The one opioid finding that is not a conflict: a course that ended beyond the opioid-free
#: interval (severity "info" in rules.yaml).
OPIOID_HISTORY_RULE = "ldn.opioid.history"

STAGE_LABELS = {
    "no_plan": "no plan",
    "safety_alert": "safety alert",
    "not_started": "not started",
    "titrating": "titrating",
    "in_trial": "in trial",
    "due_for_review": "due for review",
    "responder": "responder",
    "non_responder": "non-responder",
}

#: assess_response verdicts (core/response.py) that count as a response, or as none.
_RESPONDER = frozenset({"responder_substantial", "responder_moderate"})
_NON_RESPONSE = frozenset({"non_responder", "minimal"})


@dataclass(frozen=True)
class PlanFacts:
    """What the status reads from a plan contract (and nothing else)."""

    eligibility: str
    opioid_on_record: bool
    review_date: date | None
    target_reached: date | None
    #: Start of the first LDN step (steps are sorted by start); None without a schedule.
    first_dose: date | None


def plan_facts(plan: PlanLike) -> PlanFacts:
    """The facts of a plan's LDN part: the typed part itself (the dashboard parses only that
    part), a parsed plan, or a stored plan dict. A malformed plan raises InvalidInput."""
    ldn = ldn_of(plan)
    return PlanFacts(
        eligibility=ldn.eligibility,
        opioid_on_record=any(opioid_conflict(f) for f in ldn.findings),
        review_date=ldn.review_date,
        target_reached=ldn.target_reached,
        first_dose=ldn.first_dose,
    )


def opioid_conflict(finding: Finding | Mapping[str, Any]) -> bool:
    """Whether a finding says an opioid is on record in a way that matters now: in use, or
    stopped too recently. An ``info`` opioid finding is history, not a conflict (a course long
    finished); a finding stored without a severity (a dict from before plan/1 required one) is
    judged by its rule id."""
    severity: str | None
    if isinstance(finding, Finding):
        rule, severity = finding.rule, finding.severity
    else:
        rule, severity = str(finding["rule"]), finding.get("severity")
    if not rule.startswith(OPIOID_RULE_PREFIX):
        return False
    if severity is None:
        return rule != OPIOID_HISTORY_RULE
    return str(severity) != "info"


@dataclass(frozen=True)
class Status:
    stage: str
    flags: tuple[str, ...] = ()
    response: str | None = None

    @property
    def label(self) -> str:
        return STAGE_LABELS[self.stage]

    def to_contract(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "label": self.label,
            "flags": list(self.flags),
            "response": self.response,
        }


NO_PLAN = Status("no_plan", ("no plan yet",))


def response_status(
    facts: PlanFacts,
    entries: Sequence[DiaryEntry],
    today: date,
    assess: Callable[[], ResponseAssessment | None],
) -> str | None:
    """The response verdict for a plan with ``facts``, calling ``assess`` only when the diary
    can change the answer.

    The two shortcuts are assess_response's own rules (core/response.py): no verdict before the
    review date (``too_early``), and without any diary day there is no baseline
    (``insufficient_data``). tests/web/test_dashboard_summary.py checks both against
    assess_response, so they cannot drift apart unnoticed.
    """
    if facts.first_dose is None or facts.review_date is None:
        return None  # no LDN schedule to judge
    if today < facts.review_date:
        return "too_early"
    if not entries:
        return "insufficient_data"
    result = assess()
    return None if result is None else result.status


def status_from_facts(
    facts: PlanFacts | None,
    entries: Sequence[DiaryEntry],
    today: date,
    last_reviewed: date | None,
    assess: Callable[[], ResponseAssessment | None],
    alerts: Sequence[str] = (),
) -> Status:
    """Where the patient stands and what needs the clinician's attention.

    ``facts`` are the latest plan's (None without a plan); ``last_reviewed`` is the day of the
    latest review note; ``entries`` need only hold the diary days from ``SIDE_EFFECT_DAYS`` ago
    when ``assess`` brings its own diary. ``alerts`` are the critical screening hits of the
    patient's current state (``ldncare screen``, as flags): any of them makes the stage a
    safety alert, with or without a plan, so the dashboard never shows a patient the screen
    calls critical as, say, "titrating" or "no plan".
    """
    if alerts:
        inner = status_from_facts(facts, entries, today, last_reviewed, assess)
        rest = tuple(f for f in inner.flags if f not in alerts)
        return Status("safety_alert", (*alerts, *rest), inner.response)
    if facts is None:
        return NO_PLAN
    flags: list[str] = []
    if facts.opioid_on_record:
        flags.append("opioid on record")
    recent = [e for e in entries if e.day > today - timedelta(days=SIDE_EFFECT_DAYS)]
    if any(e.side_effects for e in recent):
        severe = any(s.severity == "severe" for e in recent for s in e.side_effects)
        flags.append("severe side effects reported" if severe else "side effects reported")
    if facts.eligibility == "not_recommended":
        return Status("safety_alert", ("LDN not recommended now", *flags))
    response = response_status(facts, entries, today, assess)
    review = facts.review_date
    target = facts.target_reached
    reviewed = last_reviewed is not None and review is not None and last_reviewed >= review
    if review is not None and today >= review and not reviewed:
        flags.insert(0, "review due")
    if response in _NON_RESPONSE:
        flags.append("non-response")
    if facts.first_dose is None or today < facts.first_dose:
        stage = "not_started"
    elif target is not None and today < target:
        stage = "titrating"
    elif review is not None and today < review:
        stage = "in_trial"
    elif response in _RESPONDER:
        stage = "responder"
    elif response in _NON_RESPONSE:
        stage = "non_responder"
    else:
        stage = "due_for_review"
    return Status(stage, tuple(flags), response)
