"""Next-step advice from the diary and the response judgement; every item carries its basis.

Pure: the caller passes the diary, the plan contract, ``today`` and a rule book (the evidence).
Wording lives in ``evidence/data/rules/followup.yaml``; this module only decides *which* rule
applies and fills in the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Protocol

from ldncare.core.diary import PGIC_LABELS, DiaryEntry, scheduled_steps
from ldncare.core.plan_contract import PlanLike
from ldncare.core.quantity import format_decimal
from ldncare.evidence.models import Rule

#: Side effects are looked at over the latest two weeks of the diary.
SIDE_EFFECT_WINDOW_DAYS = 14
#: "Persistent, intolerable": rated severe on at least this many of the last 7 days. This is
#: ldncare's own threshold (stated in rule followup.hold_titration), not a published cut-off.
PERSISTENT_SEVERE_DAYS = 3
PERSISTENT_WINDOW_DAYS = 7

_EFFECT_NAMES = {
    "vivid_dreams": "vivid dreams",
    "sleep_disturbance": "sleep disturbance",
    "headache": "headache",
    "nausea_gi": "nausea/GI upset",
    "other": "other side effect",
}


class RuleBook(Protocol):
    """Anything that resolves a rule id (the loaded ``Evidence`` does)."""

    def rule(self, rule_id: str) -> Rule: ...


@dataclass(frozen=True)
class Advice:
    """One next step, with the rule that produced it and the sources behind that rule."""

    action: str
    message: str
    rule: str
    citations: tuple[str, ...]

    def to_contract(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "message": self.message,
            "rule": self.rule,
            "citations": list(self.citations),
        }


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def make_advice(book: RuleBook, rule_id: str, action: str, **values: Any) -> Advice:
    rule = book.rule(rule_id)
    message = rule.message.format_map(_Blank({k: str(v) for k, v in values.items()}))
    return Advice(action=action, message=message, rule=rule.id, citations=rule.citations)


def _recent(entries: Sequence[DiaryEntry], today: date, days: int) -> list[DiaryEntry]:
    first = today - timedelta(days=days - 1)
    return [e for e in entries if first <= e.day <= today]


def side_effect_advice(
    entries: Sequence[DiaryEntry], *, today: date, book: RuleBook
) -> list[Advice]:
    """Advice on side effects recorded in the latest days of the diary."""
    out: list[Advice] = []
    last7 = _recent(entries, today, PERSISTENT_WINDOW_DAYS)
    severe_days = [e for e in last7 if any(s.severity == "severe" for s in e.side_effects)]
    if len(severe_days) >= PERSISTENT_SEVERE_DAYS:
        kinds = sorted(
            {s.effect for e in severe_days for s in e.side_effects if s.severity == "severe"}
        )
        out.append(
            make_advice(
                book,
                "followup.hold_titration",
                "hold_titration",
                days=len(severe_days),
                effects=", ".join(_EFFECT_NAMES[k] for k in kinds),
            )
        )
    last14 = _recent(entries, today, SIDE_EFFECT_WINDOW_DAYS)
    sleep_days = [
        e
        for e in last14
        if any(s.effect in ("vivid_dreams", "sleep_disturbance") for s in e.side_effects)
    ]
    if sleep_days:
        out.append(
            make_advice(
                book,
                "followup.sleep_side_effects",
                "report_sleep_side_effects",
                days=len(sleep_days),
            )
        )
    other_days = [
        e for e in last14 if any(s.effect in ("headache", "nausea_gi") for s in e.side_effects)
    ]
    if other_days:
        kinds = sorted(
            {
                s.effect
                for e in other_days
                for s in e.side_effects
                if s.effect in ("headache", "nausea_gi")
            }
        )
        names = " and ".join(_EFFECT_NAMES[k] for k in kinds)
        out.append(
            make_advice(
                book,
                "followup.transient_side_effects",
                "expect_transient_side_effects",
                effects=names[0].upper() + names[1:],
                days=len(other_days),
            )
        )
    return out


def _recent_dose(entries: Sequence[DiaryEntry], today: date) -> Decimal | None:
    """The most common dose recorded in the last 14 days (None if none recorded)."""
    doses = [e.dose_mg for e in _recent(entries, today, 14) if e.dose_mg is not None]
    if not doses:
        return None
    return max(set(doses), key=lambda d: (doses.count(d), d))


def response_advice(
    status: str,
    entries: Sequence[DiaryEntry],
    plan: PlanLike,
    *,
    today: date,
    book: RuleBook,
    percent: float | None,
    due_date: date,
    pgic: int | None,
    insufficient_reason: str | None = None,
) -> list[Advice]:
    """Advice that follows from the response status (see :mod:`ldncare.core.response`)."""
    pct = "?" if percent is None else f"{percent:g}"
    if status == "too_early":
        return [make_advice(book, "followup.too_early", "keep_diary", due_date=due_date)]
    if status == "insufficient_data":
        return [
            make_advice(
                book,
                "followup.insufficient_data",
                "record_diary",
                reason=insufficient_reason or "too few recorded days",
            )
        ]
    if status in ("responder_substantial", "responder_moderate"):
        steps = scheduled_steps(plan)
        trial = max(due_date - steps[0].start, timedelta(days=1))
        category = "substantial" if status == "responder_substantial" else "moderate"
        return [
            make_advice(
                book,
                "followup.continue",
                "continue_ldn",
                category=category,
                percent=pct,
                next_review=(today + trial).isoformat(),
            )
        ]
    out: list[Advice] = []
    target = max(s.dose_mg for s in scheduled_steps(plan))
    recent = _recent_dose(entries, today)
    if recent is not None and recent < target:
        out.append(
            make_advice(
                book,
                "followup.not_at_target",
                "review_titration",
                recent_dose=f"{format_decimal(recent)} mg",
                target_dose=f"{format_decimal(target)} mg",
            )
        )
    elif status == "minimal":
        out.append(
            make_advice(book, "followup.minimal_response", "discuss_continuation", percent=pct)
        )
    else:
        out.append(
            make_advice(
                book,
                "followup.stop_consider_alternatives",
                "consider_alternatives",
                percent=pct,
            )
        )
    if pgic is not None and pgic <= 2:
        out.append(
            make_advice(
                book,
                "followup.discordant_pgic",
                "weigh_patient_impression",
                pgic_label=PGIC_LABELS[pgic],
                percent=pct,
            )
        )
    return out
