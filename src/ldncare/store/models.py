"""Tables. Patient data is kept as written: plans are versioned, never overwritten."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: JSON on SQLite, JSONB on PostgreSQL.
JsonType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class PatientRow(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: Kept for per-clinic access control later; nullable until clinics exist.
    clinic_id: Mapped[str | None] = mapped_column(String(64), index=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str | None] = mapped_column(String(256))
    birth_date: Mapped[date | None] = mapped_column(Date)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(128))


class AssessmentRow(Base):
    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(128))


class PlanRow(Base):
    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("patient_id", "version", name="uq_plans_patient_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    contract: Mapped[dict[str, Any]] = mapped_column(JsonType)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(128))


class PlanSummaryRow(Base):
    """What the dashboard needs of one plan version, in a narrow table of its own.

    Written with the plan (``repository.add_patient`` / ``save_plan``) from the same contract,
    never changed afterwards (plans are insert-only). A table of its own rather than columns on
    ``plans``: SQLite stores a row's columns in order, so a column after the ~25 kB contract
    would be read by walking the contract's overflow pages.
    """

    __tablename__ = "plan_summaries"

    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    eligibility: Mapped[str] = mapped_column(String(32))
    opioid_on_record: Mapped[bool] = mapped_column(Boolean)
    review_date: Mapped[date | None] = mapped_column(Date)
    target_reached: Mapped[date | None] = mapped_column(Date)
    #: Start of the first LDN step; None when the plan schedules no LDN.
    first_dose: Mapped[date | None] = mapped_column(Date)


class DiaryRow(Base):
    __tablename__ = "diary_entries"
    __table_args__ = (UniqueConstraint("patient_id", "day", name="uq_diary_patient_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    day: Mapped[date] = mapped_column(Date)
    pain_avg: Mapped[int | None] = mapped_column(Integer)
    pain_worst: Mapped[int | None] = mapped_column(Integer)
    sitting_minutes: Mapped[int | None] = mapped_column(Integer)
    sleep_quality: Mapped[int | None] = mapped_column(Integer)
    side_effects: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)
    dose_taken: Mapped[bool | None] = mapped_column(Boolean)
    #: Milligrams as exact decimal text ("1.5"): SQLite has no decimal type.
    dose_mg: Mapped[str | None] = mapped_column(String(32))
    dose_time: Mapped[time | None] = mapped_column(Time)
    pgic: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)
    #: Schedule mismatches found when the entry was written (recorded, not rejected).
    flags: Mapped[list[str]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(128))


class ReviewNoteRow(Base):
    __tablename__ = "review_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(128))


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    who: Mapped[str] = mapped_column(String(128))
    #: create | read | update | delete
    action: Mapped[str] = mapped_column(String(16))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JsonType)


#: Account roles: clinician (the patients of a clinic), patient (one record), admin (all).
ROLES: tuple[str, ...] = ("clinician", "patient", "admin")


class UserRow(Base):
    """Accounts: who may log in, with which role, for which clinic or which patient."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_users_oidc"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    #: argon2id hash (argon2-cffi's PHC string); the password itself is never stored.
    password_hash: Mapped[str] = mapped_column(String(256))
    #: clinician | patient | admin
    role: Mapped[str] = mapped_column(String(16))
    #: Clinicians see the patients of this clinic only.
    clinic_id: Mapped[str | None] = mapped_column(String(64), index=True)
    #: A patient account sees this one patient record only.
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Sessions carry the generation they were made in; logout adds one, ending them all.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(128))
    #: TOTP (RFC 6238) shared secret, base32; set at enrolment, in use once confirmed.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    #: True once the first code confirmed the enrolment: the login then asks for a code.
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: The time step of the last code accepted: a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    #: Single sign-on: the OpenID Connect issuer and subject this account signs in as (an
    #: account made by SSO has no usable local password).
    oidc_issuer: Mapped[str | None] = mapped_column(String(256))
    oidc_subject: Mapped[str | None] = mapped_column(String(256))


class RecoveryCodeRow(Base):
    """One-time recovery codes of an account's second factor: a SHA-256 of each code (they are
    random, 50 bits each, so a fast hash suffices), and when it was used."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginFailureRow(Base):
    """Failed logins per (client address, username), shared by every worker and machine on one
    PostgreSQL (:class:`ldncare.store.login_limits.DbLoginLimiter`)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key", "username", "ip", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ip: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class EhrLinkRow(Base):
    """Where a followed patient came from: the EHR (its FHIR base URL, the SMART ``iss``), the
    patient's FHIR id there, who followed it and when the record was read (issue #21)."""

    __tablename__ = "ehr_links"
    __table_args__ = (
        UniqueConstraint("iss", "fhir_patient_id", "clinic_id", name="uq_ehr_links_patient"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    iss: Mapped[str] = mapped_column(String(512))
    fhir_patient_id: Mapped[str] = mapped_column(String(128))
    #: The clinic that followed the patient ("" for an account without one): each clinic
    #: follows its own copy (migration 0010).
    clinic_id: Mapped[str] = mapped_column(String(64), server_default="")
    #: The ``fhirUser`` of the launch when the EHR named one (e.g. ``Practitioner/123``).
    fhir_user: Mapped[str | None] = mapped_column(String(512))
    retrieved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(128))
