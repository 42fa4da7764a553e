"""EHR links per clinic: a follow records the clinic, and another clinic can follow its own
copy of the same EHR patient (review #19/#21 M3).

The unique key becomes (iss, fhir_patient_id, clinic_id); ``clinic_id`` is "" for an account
without a clinic, so the key holds on every database (NULLs would not be compared). Existing
links take the clinic of the patient record they point to.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ehr_links") as batch:
        batch.add_column(sa.Column("clinic_id", sa.String(64), nullable=False, server_default=""))
    op.execute(
        "UPDATE ehr_links SET clinic_id = COALESCE("
        "(SELECT patients.clinic_id FROM patients WHERE patients.id = ehr_links.patient_id), '')"
    )
    with op.batch_alter_table("ehr_links") as batch:
        batch.drop_constraint("uq_ehr_links_patient", type_="unique")
        batch.create_unique_constraint(
            "uq_ehr_links_patient", ["iss", "fhir_patient_id", "clinic_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("ehr_links") as batch:
        batch.drop_constraint("uq_ehr_links_patient", type_="unique")
        batch.create_unique_constraint("uq_ehr_links_patient", ["iss", "fhir_patient_id"])
        batch.drop_column("clinic_id")
