"""Plan summaries: an opioid course long finished (ldn.opioid.history) is not "opioid on record".

Until this revision the summary counted every finding whose rule id starts with ``ldn.opioid.``,
including ``ldn.opioid.history`` (severity info: "history, not a conflict"), so a patient whose
tramadol ended years ago carried the "opioid on record" flag. ``opioid_on_record`` is recomputed
from each plan's stored contract.

The rule is written out here rather than imported from ``ldncare.core.status``: this revision
must keep doing what it did when it was written, whatever the live code becomes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BATCH = 500
_OPIOID_PREFIX = "ldn.opioid."
_HISTORY_RULE = "ldn.opioid.history"


def _conflict(finding: Any) -> bool:
    """An opioid finding other than history: in use or stopped too recently. Findings carry
    their severity (history is "info"); one stored without it is judged by its rule id."""
    rule = str(finding["rule"])
    if not rule.startswith(_OPIOID_PREFIX):
        return False
    severity = finding.get("severity")
    if severity is None:
        return rule != _HISTORY_RULE
    return bool(severity != "info")


def _any_opioid(finding: Any) -> bool:
    """The rule before this revision (for the downgrade)."""
    return str(finding["rule"]).startswith(_OPIOID_PREFIX)


def _recompute(counts: Callable[[Any], bool]) -> None:
    conn = op.get_bind()
    plans = sa.table("plans", sa.column("id", sa.Integer()), sa.column("contract", sa.JSON()))
    summaries = sa.table(
        "plan_summaries",
        sa.column("plan_id", sa.Integer()),
        sa.column("opioid_on_record", sa.Boolean()),
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(summaries.c.plan_id, summaries.c.opioid_on_record, plans.c.contract)
            .join(plans, plans.c.id == summaries.c.plan_id)
            .where(summaries.c.plan_id > last)
            .order_by(summaries.c.plan_id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        for row in rows:
            try:
                opioid = any(counts(f) for f in row.contract["ldn"]["findings"])
            except (KeyError, TypeError, AttributeError):
                continue  # a summary row exists only for contracts that could be read
            if opioid != row.opioid_on_record:
                conn.execute(
                    summaries.update()
                    .where(summaries.c.plan_id == row.plan_id)
                    .values(opioid_on_record=opioid)
                )
        last = rows[-1].plan_id


def upgrade() -> None:
    _recompute(_conflict)


def downgrade() -> None:
    _recompute(_any_opioid)
