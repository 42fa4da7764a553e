"""EHR links: where a patient followed from a SMART launch came from (issue #21).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ehr_links",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("iss", sa.String(512), nullable=False),
        sa.Column("fhir_patient_id", sa.String(128), nullable=False),
        sa.Column("fhir_user", sa.String(512), nullable=True),
        sa.Column("retrieved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.UniqueConstraint("iss", "fhir_patient_id", name="uq_ehr_links_patient"),
    )
    op.create_index("ix_ehr_links_patient_id", "ehr_links", ["patient_id"])


def downgrade() -> None:
    op.drop_index("ix_ehr_links_patient_id", table_name="ehr_links")
    op.drop_table("ehr_links")
