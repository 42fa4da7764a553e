"""The functions the CLI and the web app use to read and write patient data.

Rules every function keeps:
- input is validated *before* the transaction opens, so a failed validation writes nothing;
- each write is one transaction, and its audit-log row is written in that same transaction;
- reads of patient data are audited too (``action="read"``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, func, insert, select, table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ldncare.core.diary import (
    DiaryEntry,
    SideEffect,
    check_against_schedule,
    merge_day,
    parse_entry,
)
from ldncare.core.patient import Patient
from ldncare.core.status import plan_facts
from ldncare.errors import InvalidInput, NotFound
from ldncare.store.diary_csv import diary_to_csv, parse_diary_csv
from ldncare.store.external_id import check_external_id, unusable
from ldncare.store.facts import replace_facts
from ldncare.store.models import (
    AssessmentRow,
    AuditRow,
    DiaryRow,
    PatientRow,
    PlanRow,
    PlanSummaryRow,
    ReviewNoteRow,
)

PatientRef = int | str


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _transaction(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


def record_audit(
    session: Session,
    who: str,
    action: str,
    entity: str,
    entity_id: object | None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Add an audit row to ``session``: it commits or rolls back with the change it records."""
    session.add(
        AuditRow(
            at=_now(),
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
    """One audit row in its own transaction: events the other functions do not see (logins,
    refusals, handout and calendar downloads)."""
    with Session(engine) as s, s.begin():
        record_audit(s, who, action, entity, entity_id, detail)


class ExternalId(str):
    """A patient reference that is an external id (a FHIR Patient id, a record number), never a
    database id, whatever its characters."""


def patient_candidates(session: Session, ref: PatientRef) -> list[PatientRow]:
    """The patients ``ref`` may name (none, one, or two for an ambiguous digit string).

    ``int``: the database id. Text: ``id:N`` the database id, ``ext:X`` (or an
    :class:`ExternalId`) the external id; otherwise the external id, and for a digit string also
    the database id.
    """
    if isinstance(ref, int):
        row = session.get(PatientRow, ref)
        return [row] if row is not None else []
    text = str(ref).strip()
    external = isinstance(ref, ExternalId)
    if text.startswith("ext:"):
        text, external = text[4:], True
    elif text.startswith("id:"):
        return patient_candidates(session, int(text[3:])) if text[3:].isdigit() else []
    found = list(session.scalars(select(PatientRow).where(PatientRow.external_id == text)))
    if not external and text.isdigit():
        by_id = session.get(PatientRow, int(text))
        if by_id is not None and all(by_id.id != r.id for r in found):
            found.append(by_id)
    return found


def ambiguous(ref: PatientRef) -> InvalidInput:
    text = str(ref).strip()
    return InvalidInput(
        f"patient reference {text!r} is ambiguous: it is both a database id and another "
        f"patient's external id; write id:{text} for the database id or ext:{text} for the "
        "external id",
        field="path.patient_id",
    )


def resolve_patient(session: Session, ref: PatientRef) -> PatientRow:
    """The one patient ``ref`` names (see :func:`patient_candidates`).

    A digit string that is the database id of one patient and the external id of another is
    refused rather than guessed: a diary written to the wrong patient is worse than an error.
    """
    found = patient_candidates(session, ref)
    if not found:
        raise NotFound(f"no patient with id or external id {str(ref).strip()!r}")
    if len(found) > 1:
        raise ambiguous(ref)
    return found[0]


# --- patients ------------------------------------------------------------------------------------


def add_patient(
    engine: Engine,
    patient: Patient,
    *,
    plan_contract: Mapping[str, Any] | None = None,
    clinic_id: str | None = None,
    actor: str,
) -> PatientRow:
    """Store a patient, the input snapshot as the first assessment and, if given, plan v1."""
    check_external_id(patient.id)
    try:
        with _transaction(engine) as s:
            return add_patient_in(
                s, patient, plan_contract=plan_contract, clinic_id=clinic_id, actor=actor
            )
    except IntegrityError:
        raise unusable(patient.id) from None


def add_patient_in(
    s: Session,
    patient: Patient,
    *,
    plan_contract: Mapping[str, Any] | None = None,
    clinic_id: str | None = None,
    actor: str,
) -> PatientRow:
    """:func:`add_patient` inside the caller's transaction ``s`` (which commits or rolls back
    it with whatever else it stores, e.g. the EHR link of a follow)."""
    check_external_id(patient.id)
    snapshot = patient.model_dump(mode="json")
    existing = s.scalars(select(PatientRow.id).where(PatientRow.external_id == patient.id)).first()
    if existing is not None:
        raise unusable(patient.id)
    now = _now()
    row = PatientRow(
        clinic_id=clinic_id,
        external_id=patient.id,
        name=patient.name,
        birth_date=patient.birth_date,
        snapshot=snapshot,
        created_at=now,
        created_by=actor,
    )
    s.add(row)
    s.flush()
    s.add(AssessmentRow(patient_id=row.id, snapshot=snapshot, created_at=now, created_by=actor))
    # The facts screening reads, derived from this first assessment (as an import
    # does): a patient added here is screened like one imported from FHIR.
    replace_facts(s.connection(), row.id, patient, as_of=now.date())
    record_audit(s, actor, "create", "patient", row.id, {"external_id": patient.id})
    if plan_contract is not None:
        plan = PlanRow(
            patient_id=row.id,
            version=1,
            contract=dict(plan_contract),
            reason="initial plan",
            created_at=now,
            created_by=actor,
        )
        s.add(plan)
        s.flush()
        _add_summary(s, plan)
        record_audit(s, actor, "create", "plan", row.id, {"version": 1})
    return row


def list_patients(engine: Engine, *, actor: str) -> list[PatientRow]:
    with _transaction(engine) as s:
        rows = list(s.scalars(select(PatientRow).order_by(PatientRow.id)))
        record_audit(s, actor, "read", "patient", None, {"list": len(rows)})
        return rows


def get_patient(engine: Engine, ref: PatientRef, *, actor: str) -> PatientRow:
    with _transaction(engine) as s:
        row = resolve_patient(s, ref)
        record_audit(s, actor, "read", "patient", row.id)
        return row


def add_assessment(
    engine: Engine, ref: PatientRef, snapshot: Mapping[str, Any], *, actor: str
) -> AssessmentRow:
    """Record a new assessment: it becomes the patient's current state, and the facts
    screening reads are re-derived from it in the same transaction."""
    try:
        assessed = Patient.model_validate(dict(snapshot))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise InvalidInput(
            f"the assessment is not a valid patient record: {first['msg']}", field=where
        ) from None
    with _transaction(engine) as s:
        patient = resolve_patient(s, ref)
        now = _now()
        row = AssessmentRow(
            patient_id=patient.id, snapshot=dict(snapshot), created_at=now, created_by=actor
        )
        s.add(row)
        s.flush()
        replace_facts(s.connection(), patient.id, assessed, as_of=now.date())
        record_audit(s, actor, "create", "assessment", row.id, {"patient_id": patient.id})
        return row


def latest_assessment(engine: Engine, ref: PatientRef, *, actor: str) -> AssessmentRow | None:
    """The patient's latest assessment: its current state (None for a patient stored without
    one by an earlier release; :func:`current_snapshot` then falls back to the patient row)."""
    with _transaction(engine) as s:
        patient = resolve_patient(s, ref)
        row = _latest_assessment(s, patient.id)
        record_audit(
            s, actor, "read", "assessment", None if row is None else row.id,
            {"patient_id": patient.id, "latest": True},
        )  # fmt: skip
        return row


def latest_assessment_row(engine: Engine, patient_id: int) -> AssessmentRow | None:
    """The latest assessment of a patient already resolved and authorised by the caller, not
    audited on its own: the web service reads it within a request whose own read or write of
    the patient is audited (the form's record version, a re-assessment)."""
    with Session(engine, expire_on_commit=False) as s:
        return _latest_assessment(s, patient_id)


def current_snapshot(engine: Engine, ref: PatientRef, *, actor: str) -> dict[str, Any]:
    """The patient record as last assessed (the latest assessment's snapshot), never the
    inputs first stored when a later assessment exists."""
    with _transaction(engine) as s:
        patient = resolve_patient(s, ref)
        row = _latest_assessment(s, patient.id)
        record_audit(s, actor, "read", "assessment", None if row is None else row.id,
                     {"patient_id": patient.id, "latest": True})  # fmt: skip
        return dict(row.snapshot if row is not None else patient.snapshot)


def _latest_assessment(session: Session, patient_id: int) -> AssessmentRow | None:
    return session.scalars(
        select(AssessmentRow)
        .where(AssessmentRow.patient_id == patient_id)
        .order_by(AssessmentRow.id.desc())
        .limit(1)
    ).first()


# --- plans ---------------------------------------------------------------------------------------


def plan_summary_values(contract: Any) -> dict[str, Any] | None:
    """The ``plan_summaries`` columns for ``contract``, or None if it cannot be summarised."""
    try:
        facts = plan_facts(contract)
    except (InvalidInput, KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None
    return {
        "eligibility": facts.eligibility,
        "opioid_on_record": facts.opioid_on_record,
        "review_date": facts.review_date,
        "target_reached": facts.target_reached,
        "first_dose": facts.first_dose,
    }


def _add_summary(session: Session, plan: PlanRow) -> None:
    values = plan_summary_values(plan.contract)
    if values is not None:
        session.add(
            PlanSummaryRow(
                plan_id=plan.id,
                patient_id=plan.patient_id,
                version=plan.version,
                created_at=plan.created_at,
                **values,
            )
        )


def save_plan(
    engine: Engine,
    ref: PatientRef,
    contract: Mapping[str, Any],
    *,
    reason: str,
    actor: str,
) -> PlanRow:
    """Store a new plan version (previous versions are kept unchanged)."""
    if not reason.strip():
        raise InvalidInput("a new plan version needs a reason", field="reason")
    for attempt in range(5):
        try:
            with _transaction(engine) as s:
                patient = resolve_patient(s, ref)
                current = s.scalar(
                    select(func.max(PlanRow.version)).where(PlanRow.patient_id == patient.id)
                )
                version = (current or 0) + 1
                row = PlanRow(
                    patient_id=patient.id,
                    version=version,
                    contract=dict(contract),
                    reason=reason,
                    created_at=_now(),
                    created_by=actor,
                )
                s.add(row)
                s.flush()
                _add_summary(s, row)
                record_audit(s, actor, "create", "plan", patient.id, {"version": version})
                return row
        except IntegrityError:
            # Another writer took this version number first (PostgreSQL); take the next one.
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def store_imported_plans(
    conn: Connection,
    patient_id: int,
    contracts: Sequence[Mapping[str, Any]],
    *,
    actor: str,
    source: str,
) -> int:
    """Store the plan contracts read back from ldncare's own FHIR export (oldest first) as new
    plan versions of ``patient_id``, in the caller's transaction (the import's); returns how
    many were stored.

    A contract identical to one the patient already has is not stored again, so re-importing
    the same export writes nothing. Each plan gets its summary row and an audit row.
    """
    plans: Any = PlanRow.__table__
    stored = conn.execute(
        select(plans.c.version, plans.c.contract).where(plans.c.patient_id == patient_id)
    ).all()
    known = [dict(c) for _, c in stored]
    version = max((v for v, _ in stored), default=0)
    added = 0
    for contract in contracts:
        if dict(contract) in known:
            continue
        version += 1
        now = _now()
        plan_id = conn.execute(
            insert(plans)
            .values(
                patient_id=patient_id,
                version=version,
                contract=dict(contract),
                reason="read back from an ldncare FHIR export",
                created_at=now,
                created_by=actor,
            )
            .returning(plans.c.id)
        ).scalar_one()
        values = plan_summary_values(contract)
        if values is not None:
            conn.execute(
                insert(PlanSummaryRow).values(
                    plan_id=plan_id, patient_id=patient_id, version=version, created_at=now,
                    **values,
                )
            )  # fmt: skip
        conn.execute(
            insert(AuditRow).values(
                at=now, who=actor, action="create", entity="plan", entity_id=str(patient_id),
                detail={"version": version, "source": source},
            )
        )  # fmt: skip
        known.append(dict(contract))
        added += 1
    return added


def latest_plan(engine: Engine, ref: PatientRef, *, actor: str) -> PlanRow | None:
    with _transaction(engine) as s:
        patient = resolve_patient(s, ref)
        row = s.scalars(
            select(PlanRow)
            .where(PlanRow.patient_id == patient.id)
            .order_by(PlanRow.version.desc())
            .limit(1)
        ).first()
        record_audit(
            s, actor, "read", "plan", patient.id, {"version": None if row is None else row.version}
        )
        return row


def list_plans(engine: Engine, ref: PatientRef, *, actor: str) -> list[PlanRow]:
    with _transaction(engine) as s:
        patient = resolve_patient(s, ref)
        rows = list(
            s.scalars(
                select(PlanRow).where(PlanRow.patient_id == patient.id).order_by(PlanRow.version)
            )
        )
        record_audit(s, actor, "read", "plan", patient.id, {"list": len(rows)})
        return rows


# --- diary ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiaryWrite:
    entry: DiaryEntry
    created: bool
    flags: tuple[str, ...]


def _diary_values(entry: DiaryEntry) -> dict[str, Any]:
    return {
        "day": entry.day,
        "pain_avg": entry.pain_avg,
        "pain_worst": entry.pain_worst,
        "sitting_minutes": entry.sitting_minutes,
        "sleep_quality": entry.sleep_quality,
        "side_effects": [s.model_dump(mode="json") for s in entry.side_effects],
        "dose_taken": entry.dose_taken,
        "dose_mg": None if entry.dose_mg is None else str(entry.dose_mg),
        "dose_time": entry.dose_time,
        "pgic": entry.pgic,
        "notes": entry.notes,
    }


def entry_from_row(row: DiaryRow) -> DiaryEntry:
    """The core diary entry of a stored row (also used by the web views)."""
    return DiaryEntry(
        day=row.day,
        pain_avg=row.pain_avg,
        pain_worst=row.pain_worst,
        sitting_minutes=row.sitting_minutes,
        sleep_quality=row.sleep_quality,
        side_effects=tuple(SideEffect.model_validate(x) for x in row.side_effects or ()),
        dose_taken=row.dose_taken,
        dose_mg=None if row.dose_mg is None else Decimal(row.dose_mg),
        dose_time=row.dose_time,
        pgic=row.pgic,
        notes=row.notes,
    )


def _insert_for(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _latest_contract(session: Session, patient_id: int) -> dict[str, Any] | None:
    return session.scalars(
        select(PlanRow.contract)
        .where(PlanRow.patient_id == patient_id)
        .order_by(PlanRow.version.desc())
        .limit(1)
    ).first()


def _upsert(session: Session, patient_id: int, entry: DiaryEntry, actor: str) -> DiaryWrite:
    contract = _latest_contract(session, patient_id)
    flags = tuple(check_against_schedule(entry, contract)) if contract else ()
    now = _now()
    values = _diary_values(entry) | {"flags": list(flags), "updated_at": now, "updated_by": actor}
    insert = _insert_for(session)
    stmt = insert(DiaryRow).values(patient_id=patient_id, created_at=now, **values)
    # INSERT ... ON CONFLICT (patient_id, day) DO UPDATE: atomic on both SQLite and PostgreSQL,
    # so two writers on the same day give one row holding the last write.
    stmt = stmt.on_conflict_do_update(
        index_elements=[DiaryRow.patient_id, DiaryRow.day],
        set_={k: stmt.excluded[k] for k in values},
    ).returning(DiaryRow.id, DiaryRow.created_at, DiaryRow.updated_at)
    row_id, created_at, updated_at = session.execute(stmt).one()
    created = created_at == updated_at
    record_audit(
        session,
        actor,
        "create" if created else "update",
        "diary_entry",
        row_id,
        {"patient_id": patient_id, "day": entry.day.isoformat()},
    )
    return DiaryWrite(entry=entry, created=created, flags=flags)


def add_or_update_diary_entry(
    engine: Engine,
    ref: PatientRef,
    entry: DiaryEntry | Mapping[str, Any],
    *,
    today: date,
    actor: str,
) -> DiaryWrite:
    """Record one diary day; a second entry for the same day replaces the first."""
    valid = parse_entry(entry, today=today)
    with _transaction(engine) as s:
        patient = resolve_patient(s, ref)
        return _upsert(s, patient.id, valid, actor)


def add_to_diary_day(
    engine: Engine,
    ref: PatientRef,
    entry: Mapping[str, Any],
    *,
    today: date,
    actor: str,
) -> DiaryWrite:
    """Record a diary form save: added to what the day already holds (``core.diary.merge_day``),
    so a second save the same day does not erase the first one's side effects or values."""
    valid = parse_entry(entry, today=today)
    with _transaction(engine) as s:
        patient = resolve_patient(s, ref)
        # Lock the patient: on PostgreSQL, FOR UPDATE on a day not yet written locks nothing,
        # and two first saves of a day racing would each merge with nothing.
        s.execute(select(PatientRow.id).where(PatientRow.id == patient.id).with_for_update())
        stored = s.scalars(
            select(DiaryRow)
            .where(DiaryRow.patient_id == patient.id, DiaryRow.day == valid.day)
            .with_for_update()
        ).first()
        if stored is not None:
            valid = merge_day(entry_from_row(stored), valid)
        return _upsert(s, patient.id, valid, actor)


def list_diary(engine: Engine, ref: PatientRef, *, actor: str) -> list[DiaryEntry]:
    with _transaction(engine) as s:
        patient = resolve_patient(s, ref)
        rows = list(
            s.scalars(
                select(DiaryRow).where(DiaryRow.patient_id == patient.id).order_by(DiaryRow.day)
            )
        )
        record_audit(
            s, actor, "read", "diary_entry", None, {"patient_id": patient.id, "list": len(rows)}
        )
        return [entry_from_row(r) for r in rows]


def store_imported_diary(
    conn: Connection,
    patient_id: int,
    entries: Sequence[DiaryEntry],
    *,
    actor: str,
    source: str,
) -> int:
    """Store the diary days read back from ldncare's own FHIR export as ``patient_id``'s, in
    the caller's transaction (the import's, after the plans it carries); returns how many days
    were written.

    A day the patient already has with the same values is not written again, so re-importing
    the same export writes nothing; a day that differs takes the exported values (the later
    record wins, as for the patient). Flags are those of the patient's latest plan, as when a
    day is entered; each day written gets its audit row.
    """
    diary: Any = DiaryRow.__table__
    stored = {
        row.day: entry_from_row(row)  # type: ignore[arg-type]
        for row in conn.execute(select(diary).where(diary.c.patient_id == patient_id))
    }
    plans: Any = PlanRow.__table__
    contract = conn.execute(
        select(plans.c.contract)
        .where(plans.c.patient_id == patient_id)
        .order_by(plans.c.version.desc())
        .limit(1)
    ).scalar()
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
    written = 0
    for entry in entries:
        if stored.get(entry.day) == entry:
            continue
        flags = tuple(check_against_schedule(entry, contract)) if contract else ()
        now = _now()
        values = _diary_values(entry) | {"flags": list(flags), "updated_at": now,
                                          "updated_by": actor}  # fmt: skip
        stmt = upsert(diary).values(patient_id=patient_id, created_at=now, **values)
        row_id = conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[diary.c.patient_id, diary.c.day],
                set_={k: stmt.excluded[k] for k in values},
            ).returning(diary.c.id)
        ).scalar_one()
        conn.execute(
            insert(AuditRow).values(
                at=now, who=actor, action="update" if entry.day in stored else "create",
                entity="diary_entry", entity_id=str(row_id),
                detail={"patient_id": patient_id, "day": entry.day.isoformat(), "source": source},
            )
        )  # fmt: skip
        stored[entry.day] = entry
        written += 1
    return written


def diary_flags(engine: Engine, ref: PatientRef, *, actor: str) -> dict[date, list[str]]:
    with _transaction(engine) as s:
        patient = resolve_patient(s, ref)
        rows = s.execute(
            select(DiaryRow.day, DiaryRow.flags).where(DiaryRow.patient_id == patient.id)
        ).all()
        record_audit(
            s, actor, "read", "diary_entry", None, {"patient_id": patient.id, "flags": True}
        )
        return {day: list(flags) for day, flags in rows if flags}


def import_diary_csv(
    engine: Engine, ref: PatientRef, text: str, *, today: date, actor: str
) -> list[DiaryWrite]:
    """Import a CSV diary all-or-nothing: every row is validated before anything is written."""
    entries = parse_diary_csv(text, today=today)
    with _transaction(engine) as s:
        patient = resolve_patient(s, ref)
        return [_upsert(s, patient.id, e, actor) for e in entries]


def export_diary_csv(engine: Engine, ref: PatientRef, *, actor: str) -> str:
    return diary_to_csv(list_diary(engine, ref, actor=actor))


# --- review notes --------------------------------------------------------------------------------


def add_review_note(engine: Engine, ref: PatientRef, text: str, *, actor: str) -> ReviewNoteRow:
    if not text.strip():
        raise InvalidInput("a review note cannot be empty", field="text")
    with _transaction(engine) as s:
        patient = resolve_patient(s, ref)
        row = ReviewNoteRow(
            patient_id=patient.id, text=text.strip(), created_at=_now(), created_by=actor
        )
        s.add(row)
        s.flush()
        record_audit(s, actor, "create", "review_note", row.id, {"patient_id": patient.id})
        return row


def list_review_notes(engine: Engine, ref: PatientRef, *, actor: str) -> list[ReviewNoteRow]:
    with _transaction(engine) as s:
        patient = resolve_patient(s, ref)
        rows = list(
            s.scalars(
                select(ReviewNoteRow)
                .where(ReviewNoteRow.patient_id == patient.id)
                .order_by(ReviewNoteRow.id)
            )
        )
        record_audit(s, actor, "read", "review_note", None, {"patient_id": patient.id})
        return rows


def is_empty(engine: Engine) -> bool:
    """Whether the store holds no patient and no user account (the demo loads only then)."""
    # The users table by name: its model belongs to the accounts code, not to this module.
    users = table("users")
    with Session(engine) as s:
        patients = s.scalar(select(func.count()).select_from(PatientRow)) or 0
        accounts = s.scalar(select(func.count()).select_from(users)) or 0
    return patients == 0 and accounts == 0


def audit_entries(engine: Engine) -> Sequence[AuditRow]:
    """The audit log, oldest first (for administrators and tests)."""
    with Session(engine, expire_on_commit=False) as s:
        return list(s.scalars(select(AuditRow).order_by(AuditRow.id)))
