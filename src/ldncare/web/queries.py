"""Reads the web app needs beyond ``ldncare.store.repository``: clinic-scoped lists, access checks
and audit rows for events the repository does not see (logins, refusals, handout downloads).

Every function that returns patient data writes its own audit row, as the repository does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, defer

from ldncare.errors import NotFound
from ldncare.store.models import AuditRow, DiaryRow, PatientRow, PlanRow, ReviewNoteRow

PatientRef = int | str


def record_audit(
    session: Session,
    who: str,
    action: str,
    entity: str,
    entity_id: object | None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    session.add(
        AuditRow(
            at=datetime.now(UTC),
            who=who,
            action=action,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            detail=dict(detail) if detail is not None else None,
        )
    )


def audit(
    engine: Engine,
    who: str,
    action: str,
    entity: str,
    entity_id: object | None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """One audit row in its own transaction."""
    with Session(engine) as s, s.begin():
        record_audit(s, who, action, entity, entity_id, detail)


def resolve_patient(session: Session, ref: PatientRef) -> PatientRow:
    """A patient by database id or external id, without an audit row (for access checks)."""
    text = str(ref).strip()
    row: PatientRow | None = None
    if text.isdigit():
        row = session.get(PatientRow, int(text))
    if row is None:
        row = session.scalars(select(PatientRow).where(PatientRow.external_id == text)).first()
    if row is None:
        raise NotFound(f"no patient with id or external id {text!r}")
    return row


@dataclass(frozen=True)
class PatientSummary:
    """What the dashboard lists: the patient, the latest plan and the diary, read in one go.

    ``plan`` is loaded without its contract (a contract is ~25 kB of JSON and a clinic has
    hundreds of patients); ``ldn`` is the contract's ``ldn`` part, all the dashboard reads.
    """

    patient: PatientRow
    plan: PlanRow | None
    diary: list[DiaryRow]
    last_review: ReviewNoteRow | None
    ldn: dict[str, Any] | None = None

    @property
    def contract(self) -> dict[str, Any] | None:
        """The latest plan's contract, reduced to its ``ldn`` part (None without a plan)."""
        return None if self.plan is None or self.ldn is None else {"ldn": self.ldn}


#: The ``ldn`` part of stored plan contracts, as JSON bytes, by engine and plan identity. Plans
#: are insert-only (a change is a new version), so an entry never goes stale; the key also holds
#: patient, version and creation time, so a restored database cannot alias another plan. Bytes,
#: not dicts: every request parses its own copy, nothing shared can be mutated.
_LDN_CACHE: dict[tuple[str, int, int, int, str], bytes] = {}
_LDN_CACHE_MAX = 200_000
_IN_CHUNK = 500


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
    ids = list(by_id)
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
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


def patient_summaries(
    engine: Engine, *, clinic_id: str | None, actor: str, all_clinics: bool = False
) -> list[PatientSummary]:
    """Patients of ``clinic_id`` (or every patient for an administrator), audited as one read."""
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
        plans: dict[int, PlanRow] = {}
        ldn: dict[int, dict[str, Any]] = {}
        diaries: dict[int, list[DiaryRow]] = {i: [] for i in ids}
        reviews: dict[int, ReviewNoteRow] = {}
        if ids:
            # The latest version per patient, without its contract: see _ldn_parts for that.
            latest = (
                select(PlanRow.patient_id, func.max(PlanRow.version).label("version"))
                .where(PlanRow.patient_id.in_(ids))
                .group_by(PlanRow.patient_id)
                .subquery()
            )
            for plan in s.scalars(
                select(PlanRow)
                .join(
                    latest,
                    (PlanRow.patient_id == latest.c.patient_id)
                    & (PlanRow.version == latest.c.version),
                )
                .options(defer(PlanRow.contract, raiseload=True))
            ):
                plans[plan.patient_id] = plan
            ldn = _ldn_parts(s, engine, list(plans.values()))
            for entry in s.scalars(
                select(DiaryRow).where(DiaryRow.patient_id.in_(ids)).order_by(DiaryRow.day)
            ):
                diaries[entry.patient_id].append(entry)
            for note in s.scalars(
                select(ReviewNoteRow)
                .where(ReviewNoteRow.patient_id.in_(ids))
                .order_by(ReviewNoteRow.id)
            ):
                reviews[note.patient_id] = note
        record_audit(
            s, actor, "read", "patient", None, {"list": len(patients), "clinic": clinic_id}
        )
        return [
            PatientSummary(p, plans.get(p.id), diaries[p.id], reviews.get(p.id), ldn.get(p.id))
            for p in patients
        ]


def audit_for_patient(engine: Engine, patient_id: int, *, limit: int = 200) -> list[AuditRow]:
    """Audit rows about one patient (entity id or detail.patient_id), newest first."""
    with Session(engine, expire_on_commit=False) as s:
        rows = list(s.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(5000)))
    key = str(patient_id)
    out = [
        r
        for r in rows
        if (r.entity in ("patient", "plan", "handout", "calendar") and r.entity_id == key)
        or (isinstance(r.detail, dict) and str(r.detail.get("patient_id")) == key)
    ]
    return out[:limit]
