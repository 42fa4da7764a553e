"""Alembic environment, run programmatically by ``ldncare.store.db.migrate``.

The caller passes an open connection in ``config.attributes["connection"]``; for command-line
use (``alembic -x url=...``) a URL is accepted instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ldncare.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from ldncare.store.db import make_engine

    url = context.get_x_argument(as_dictionary=True).get("url")
    engine = make_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


run_migrations_online()
