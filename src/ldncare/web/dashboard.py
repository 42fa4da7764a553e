"""The dashboard list, built once for the page (``GET /``) and the API (``GET /api/patients``).

Both list the same patients with the same status: one service function reads the summaries and
judges each patient, the page and the API only differ in how they show the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine

from ldncare.core.status import Status
from ldncare.evidence.loader import load_evidence
from ldncare.store.models import PatientRow, PlanRow, PlanSummaryRow
from ldncare.web.auth import CurrentUser
from ldncare.web.service import patient_summaries
from ldncare.web.views import summary_status


@dataclass(frozen=True)
class DashboardRow:
    """One patient of the list: who, the latest plan version, the status and the diary."""

    patient: PatientRow
    plan: PlanSummaryRow | PlanRow | None
    status: Status
    review: date | None
    diary_days: int
    last_day: date | None


def dashboard_rows(engine: Engine, user: CurrentUser, today: date) -> list[DashboardRow]:
    """The patients ``user`` may see (their clinic; every clinic for an administrator), in the
    order the summaries are read, each with the status of ``today``."""
    evidence = load_evidence()
    summaries = patient_summaries(
        engine,
        clinic_id=user.clinic_id,
        actor=user.actor,
        all_clinics=user.role == "admin",
        today=today,
    )
    return [
        DashboardRow(
            patient=s.patient,
            plan=s.plan,
            status=summary_status(s, today, evidence),
            review=s.facts.review_date if s.facts else None,
            diary_days=s.diary_days,
            last_day=s.last_day,
        )
        for s in summaries
    ]


def by_urgency(rows: Sequence[DashboardRow]) -> list[DashboardRow]:
    """What needs attention first: safety alerts, then flagged patients, then the rest (the
    order within each group is kept)."""
    return sorted(rows, key=lambda r: (r.status.stage != "safety_alert", not r.status.flags))
