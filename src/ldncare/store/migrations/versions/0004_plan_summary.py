"""Plan summaries for the dashboard: a narrow row per plan version, backfilled from contracts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BATCH = 500


def upgrade() -> None:
    op.create_table(
        "plan_summaries",
        sa.Column("plan_id", sa.Integer(), sa.ForeignKey("plans.id"), primary_key=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("eligibility", sa.String(32), nullable=False),
        sa.Column("opioid_on_record", sa.Boolean(), nullable=False),
        sa.Column("review_date", sa.Date(), nullable=True),
        sa.Column("target_reached", sa.Date(), nullable=True),
        sa.Column("first_dose", sa.Date(), nullable=True),
    )
    op.create_index("ix_plan_summaries_patient_id", "plan_summaries", ["patient_id"])
    _backfill()


def _backfill() -> None:
    """A summary for every stored plan, computed by the same function that writes new ones.

    A contract that cannot be summarised gets no row; the dashboard then reads that plan's
    contract itself, as it did before this revision.
    """
    # Imported here: the summary is defined once, in the repository that writes it.
    from ldncare.store.repository import plan_summary_values

    conn = op.get_bind()
    plans = sa.table(
        "plans",
        sa.column("id", sa.Integer()),
        sa.column("patient_id", sa.Integer()),
        sa.column("version", sa.Integer()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("contract", sa.JSON()),
    )
    summaries = sa.table(
        "plan_summaries",
        sa.column("plan_id", sa.Integer()),
        sa.column("patient_id", sa.Integer()),
        sa.column("version", sa.Integer()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("eligibility", sa.String()),
        sa.column("opioid_on_record", sa.Boolean()),
        sa.column("review_date", sa.Date()),
        sa.column("target_reached", sa.Date()),
        sa.column("first_dose", sa.Date()),
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(plans).where(plans.c.id > last).order_by(plans.c.id).limit(_BATCH)
        ).all()
        if not rows:
            break
        values = []
        for row in rows:
            facts = plan_summary_values(row.contract)
            if facts is not None:
                values.append(
                    {
                        "plan_id": row.id,
                        "patient_id": row.patient_id,
                        "version": row.version,
                        "created_at": row.created_at,
                        **facts,
                    }
                )
        if values:
            conn.execute(summaries.insert(), values)
        last = rows[-1].id


def downgrade() -> None:
    op.drop_index("ix_plan_summaries_patient_id", table_name="plan_summaries")
    op.drop_table("plan_summaries")
