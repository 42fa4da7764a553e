"""Users: a session generation, so logging out ends the account's sessions on the server.

Session cookies are signed, not stored: before this revision a cookie copied before logout
stayed valid until it expired. Each cookie now carries the account's generation at login;
logout adds one, and a cookie of an older generation is no longer accepted.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_generation")
