"""The dashboard's patient list: clinic-scoped summaries read set-based, for the web app.

Every function that returns patient data writes its own audit row, as the repository does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, defer

from ldncare.core.plan_contract import read_ldn
from ldncare.core.status import SIDE_EFFECT_DAYS, PlanFacts, plan_facts
from ldncare.store.models import (
    DiaryRow,
    PatientRow,
    PlanRow,
    PlanSummaryRow,
    ReviewNoteRow,
)
from ldncare.store.population import safety_alerts
from ldncare.store.repository import record_audit


@dataclass(frozen=True)
class PatientSummary:
    """What the dashboard lists: the patient, the latest plan's summary and the diary.

    ``plan`` is the latest version's ``plan_summaries`` row (version, created_at) and ``facts``
    what the status reads of it; no contract is parsed for that. ``diary`` holds the days of the
    last ``RECENT_DAYS`` only (the side-effect flag) unless the response must be judged, which
    is the one case that needs the whole diary and ``ldn``, the contract's ``ldn`` part.
    """

    patient: PatientRow
    plan: PlanSummaryRow | PlanRow | None
    diary: list[DiaryRow]
    last_review: ReviewNoteRow | None
    ldn: dict[str, Any] | None = None
    facts: PlanFacts | None = None
    diary_days: int = 0
    last_day: date | None = None
    #: The day the summary was read for: which diary days and contracts it holds depends on it.
    as_of: date | None = None
    #: Critical screening hits of the patient's current state, as status flags
    #: (:func:`ldncare.store.population.safety_alerts`).
    alerts: tuple[str, ...] = ()

    @property
    def contract(self) -> dict[str, Any] | None:
        """The latest plan's contract reduced to its ``ldn`` part, when it was loaded."""
        return None if self.plan is None or self.ldn is None else {"ldn": self.ldn}


#: Diary days the dashboard always reads: the side-effect window of the status.
RECENT_DAYS = SIDE_EFFECT_DAYS

#: The ``ldn`` part of stored plan contracts, as JSON bytes, by engine and plan identity. Plans
#: are insert-only (a change is a new version), so an entry never goes stale; the key also holds
#: patient, version and creation time, so a restored database cannot alias another plan. Bytes,
#: not dicts: every request parses its own copy, nothing shared can be mutated.
_LDN_CACHE: dict[tuple[str, int, int, int, str], bytes] = {}
_LDN_CACHE_MAX = 200_000
_IN_CHUNK = 500


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _IN_CHUNK):
        yield ids[start : start + _IN_CHUNK]


def _ldn_parts(session: Session, engine: Engine, plans: list[PlanRow]) -> dict[int, dict[str, Any]]:
    """``contract["ldn"]`` of each plan, by patient id: the cache, else the database extracts
    that part as text (a whole contract is ~25 kB of JSON; this part ~2 kB)."""
    url = str(engine.url)

    def key(plan: PlanRow) -> tuple[str, int, int, int, str]:
        return (url, plan.id, plan.patient_id, plan.version, plan.created_at.isoformat())

    missing = [p for p in plans if key(p) not in _LDN_CACHE]
    if len(_LDN_CACHE) + len(missing) > _LDN_CACHE_MAX:
        _LDN_CACHE.clear()
    by_id = {p.id: p for p in missing}
    for chunk in _chunks(list(by_id)):
        for plan_id, text in session.execute(
            select(PlanRow.id, PlanRow.contract["ldn"].as_string()).where(PlanRow.id.in_(chunk))
        ):
            if text:
                _LDN_CACHE[key(by_id[plan_id])] = text.encode()
    out: dict[int, dict[str, Any]] = {}
    for plan in plans:
        raw = _LDN_CACHE.get(key(plan))
        value = orjson.loads(raw) if raw else None
        if isinstance(value, dict):
            out[plan.patient_id] = value
    return out


def _facts(row: PlanSummaryRow) -> PlanFacts:
    return PlanFacts(
        eligibility=row.eligibility,
        opioid_on_record=row.opioid_on_record,
        review_date=row.review_date,
        target_reached=row.target_reached,
        first_dose=row.first_dose,
    )


def patient_summaries(
    engine: Engine,
    *,
    clinic_id: str | None,
    actor: str,
    all_clinics: bool = False,
    today: date | None = None,
) -> list[PatientSummary]:
    """Patients of ``clinic_id`` (or every patient for an administrator), audited as one read.

    Set-based: the latest plan summary per patient, diary counts and the recent diary days come
    from a few queries over narrow tables. A plan's contract is read only where the status
    needs it: a response verdict (past the review date, with diary days) or a plan stored
    without a summary.
    """
    today = today or datetime.now(UTC).date()
    with Session(engine, expire_on_commit=False) as s, s.begin():
        query = (
            select(PatientRow)
            .options(defer(PatientRow.snapshot, raiseload=True))
            .order_by(PatientRow.id)
        )
        if not all_clinics:
            query = query.where(PatientRow.clinic_id == clinic_id)
        patients = list(s.scalars(query))
        ids = [p.id for p in patients]
        latest: dict[int, int] = {}
        summaries: dict[int, PlanSummaryRow] = {}
        counts: dict[int, tuple[int, date | None]] = {}
        diaries: dict[int, list[DiaryRow]] = {i: [] for i in ids}
        reviews: dict[int, ReviewNoteRow] = {}
        for chunk in _chunks(ids):
            # The unique (patient_id, version) index answers this without reading plan rows.
            for pid, version in s.execute(
                select(PlanRow.patient_id, func.max(PlanRow.version))
                .where(PlanRow.patient_id.in_(chunk))
                .group_by(PlanRow.patient_id)
            ):
                latest[pid] = version
            for row in s.scalars(
                select(PlanSummaryRow).where(PlanSummaryRow.patient_id.in_(chunk))
            ):
                if latest.get(row.patient_id) == row.version:
                    summaries[row.patient_id] = row
            for pid, n, last in s.execute(
                select(DiaryRow.patient_id, func.count(), func.max(DiaryRow.day))
                .where(DiaryRow.patient_id.in_(chunk))
                .group_by(DiaryRow.patient_id)
            ):
                counts[pid] = (n, last)
            for note in s.scalars(
                select(ReviewNoteRow)
                .where(ReviewNoteRow.patient_id.in_(chunk))
                .order_by(ReviewNoteRow.id)
            ):
                reviews[note.patient_id] = note

        # Which patients need their plan's ldn part (and whole diary): a verdict is due and
        # the diary can change it, or the plan has no summary.
        def needs_contract(pid: int) -> bool:
            summary = summaries.get(pid)
            if summary is None:
                return True
            review = summary.review_date
            return (
                pid in counts
                and summary.first_dose is not None
                and review is not None
                and today >= review
            )

        full = [pid for pid in ids if pid in latest and needs_contract(pid)]
        plans: dict[int, PlanRow] = {}
        ldn: dict[int, dict[str, Any]] = {}
        if full:
            for chunk in _chunks(full):
                for plan in s.scalars(
                    select(PlanRow)
                    .where(PlanRow.patient_id.in_(chunk))
                    .options(defer(PlanRow.contract, raiseload=True))
                ):
                    if latest[plan.patient_id] == plan.version:
                        plans[plan.patient_id] = plan
            ldn = _ldn_parts(s, engine, list(plans.values()))
        full_set = set(full)
        recent = [pid for pid in counts if pid not in full_set]
        since = today - timedelta(days=RECENT_DAYS)
        for chunk in _chunks(recent):
            for entry in s.scalars(
                select(DiaryRow)
                .where(DiaryRow.patient_id.in_(chunk), DiaryRow.day > since)
                .order_by(DiaryRow.day)
            ):
                diaries[entry.patient_id].append(entry)
        for chunk in _chunks([pid for pid in full if pid in counts]):
            for entry in s.scalars(
                select(DiaryRow).where(DiaryRow.patient_id.in_(chunk)).order_by(DiaryRow.day)
            ):
                diaries[entry.patient_id].append(entry)
        record_audit(
            s, actor, "read", "patient", None, {"list": len(patients), "clinic": clinic_id}
        )
        out: list[PatientSummary] = []
        for p in patients:
            summary = summaries.get(p.id)
            shown: PlanSummaryRow | PlanRow | None = summary or plans.get(p.id)
            part = ldn.get(p.id)
            if summary is not None:
                facts: PlanFacts | None = _facts(summary)
            elif part is not None:
                facts = plan_facts(read_ldn(part))
            else:
                facts = None
            n, last_day = counts.get(p.id, (0, None))
            out.append(
                PatientSummary(
                    p, shown, diaries[p.id], reviews.get(p.id), part, facts, n, last_day, today
                )
            )
    # After the transaction (SQLite: its audit row holds the write lock): the same critical
    # hits as `ldncare screen`, from the same stored current state.
    alerts = safety_alerts(engine, today, ids)
    return [replace(o, alerts=alerts[o.patient.id]) if o.patient.id in alerts else o for o in out]
