"""Accounts: who may log in, with which role, for which clinic or which patient."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ldncare.store.models import Base

ROLES: tuple[str, ...] = ("clinician", "patient", "admin")


class UserRow(Base):
    __tablename__ = "users"

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
