"""Population facts for set-based screening: pop_patient, pop_medication, pop_condition, pop_lab.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _patient_fk() -> sa.Column[int]:
    return sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "pop_patient",
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), primary_key=True),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(256), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(16), nullable=False),
        sa.Column("pregnant", sa.Boolean(), nullable=True),
        sa.Column("renal_ml_min", sa.Float(), nullable=True),
        sa.Column("renal_method", sa.String(32), nullable=True),
        sa.Column("renal_basis", sa.Text(), nullable=True),
        sa.Column("source_hash", sa.String(64), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "pop_medication",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _patient_fk(),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("rxnorm", sa.String(32), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("status_active", sa.Boolean(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("dose_mg", sa.Float(), nullable=True),
        sa.Column("review_date", sa.Date(), nullable=True),
        sa.Column("drug_class", sa.String(48), nullable=True),
    )
    op.create_index("ix_pop_medication_patient_id", "pop_medication", ["patient_id"])
    op.create_index(
        "ix_pop_medication_class_patient", "pop_medication", ["drug_class", "patient_id"]
    )
    op.create_table(
        "pop_condition",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _patient_fk(),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("code", sa.String(64), nullable=True),
        sa.Column("status_active", sa.Boolean(), nullable=False),
        sa.Column("onset", sa.Date(), nullable=True),
        sa.Column("abatement", sa.Date(), nullable=True),
        sa.Column("condition_class", sa.String(48), nullable=False),
    )
    op.create_index("ix_pop_condition_patient_id", "pop_condition", ["patient_id"])
    op.create_index(
        "ix_pop_condition_class_patient", "pop_condition", ["condition_class", "patient_id"]
    )
    op.create_table(
        "pop_lab",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _patient_fk(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(32), nullable=True),
        sa.Column("date", sa.Date(), nullable=True),
    )
    op.create_index("ix_pop_lab_patient_id", "pop_lab", ["patient_id"])


def downgrade() -> None:
    for table in ("pop_lab", "pop_condition", "pop_medication", "pop_patient"):
        op.drop_table(table)
