"""Plan summaries for the dashboard: a narrow row per plan version, backfilled from contracts.

The summary of a contract is written out here (:func:`_summary`, a copy of what
``store.repository.plan_summary_values`` and ``core.status.plan_facts`` computed when this
revision was last changed) rather than imported: this revision must keep doing what it did,
whatever the live code becomes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BATCH = 500
_OPIOID_PREFIX = "ldn.opioid."
_HISTORY_RULE = "ldn.opioid.history"


class _Unreadable(Exception):
    """A part of a contract that the summary cannot read."""


def _opioid_conflict(finding: Any) -> bool:
    rule = str(finding["rule"])
    if not rule.startswith(_OPIOID_PREFIX):
        return False
    severity = finding.get("severity")
    if severity is None:
        return rule != _HISTORY_RULE
    return str(severity) != "info"


def _day(value: Any) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _Unreadable(f"{value!r} is not a date")


def _first_dose(contract: Any) -> date:
    """The start of the earliest step of the LDN schedule (which must be readable whole)."""
    ldn = contract.get("ldn") if isinstance(contract, Mapping) else None
    schedule = ldn.get("schedule") if isinstance(ldn, Mapping) else None
    if not isinstance(schedule, list) or not schedule:
        raise _Unreadable("no LDN schedule")
    starts: list[date] = []
    for step in schedule:
        if not isinstance(step, Mapping):
            raise _Unreadable("a step is not an object")
        dose = step.get("dose_mg")
        if dose is None or isinstance(dose, bool):
            raise _Unreadable("a step has no dose")
        if isinstance(dose, float) and not math.isfinite(dose):
            raise _Unreadable("a dose is not finite")
        try:
            if not Decimal(str(dose).replace(",", ".")).is_finite():
                raise _Unreadable("a dose is not finite")
        except InvalidOperation:
            raise _Unreadable("a dose is not a number") from None
        starts.append(_day(step.get("start_date")))
        if step.get("end_date") is not None:
            _day(step.get("end_date"))
    return min(starts)


def _facts(contract: Any) -> dict[str, Any]:
    ldn = contract["ldn"]
    eligibility = str(ldn["eligibility"])
    opioid = any(_opioid_conflict(f) for f in ldn["findings"])
    try:
        review = date.fromisoformat(ldn["review_date"]) if ldn.get("review_date") else None
        target = date.fromisoformat(ldn["target_reached"]) if ldn.get("target_reached") else None
        first = _first_dose(contract) if ldn.get("schedule") else None
    except (_Unreadable, KeyError, TypeError, ValueError, IndexError):
        # A plan that does not recommend LDN needs only eligibility and the opioid finding.
        if eligibility != "not_recommended":
            raise
        review = target = first = None
    return {
        "eligibility": eligibility,
        "opioid_on_record": opioid,
        "review_date": review,
        "target_reached": target,
        "first_dose": first,
    }


def _summary(contract: Any) -> dict[str, Any] | None:
    """The ``plan_summaries`` columns for ``contract``, or None if it cannot be summarised."""
    try:
        return _facts(contract)
    except (_Unreadable, KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


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
    """A summary for every stored plan (:func:`_summary`).

    A contract that cannot be summarised gets no row; the dashboard then reads that plan's
    contract itself, as it did before this revision.
    """
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
            facts = _summary(row.contract)
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
