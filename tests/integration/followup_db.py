"""A fresh, migrated database per test: SQLite always, PostgreSQL too when
``LDNCARE_TEST_POSTGRES_URL`` is set (``scripts/start-postgres.sh`` prints one).

Import the fixture into a test module: ``from tests.integration.followup_db import db_url``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from ldncare.store.db import migrate

PG_ENV = "LDNCARE_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ldncare.db'}"
        migrate(url)
        yield url
        return
    yield from _postgres_database()


@pytest.fixture
def pg_db_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database only: for what SQLite cannot do (several writers
    or servers at once). Skipped without LDNCARE_TEST_POSTGRES_URL, required in CI."""
    yield from _postgres_database()


def postgres_base_url() -> str:
    """The test PostgreSQL server's URL. Required in CI (the PostgreSQL half of the suite is not
    optional there: a missing URL fails); on a developer's machine without one, the test is
    skipped with how to start it."""
    base = os.environ.get(PG_ENV)
    if not base:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{PG_ENV} is not set in CI: .ci/run must start PostgreSQL")
        pytest.skip(f"{PG_ENV} not set (run scripts/start-postgres.sh)")
    return base


def _postgres_database() -> Iterator[str]:
    base = postgres_base_url()
    name = f"ldncare_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
