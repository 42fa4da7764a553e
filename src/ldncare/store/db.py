"""Engine and migrations.

``LDNCARE_DATABASE_URL`` chooses the database; without it, a SQLite file in the user's data
folder (``~/.local/share/ldncare/ldncare.db`` on Linux). SQLite runs in WAL mode with foreign keys
on, a busy timeout and ``synchronous=FULL`` so that an acknowledged commit survives a crash, and
every transaction starts with ``BEGIN IMMEDIATE``: a writer takes the write lock up front and
waits for it, instead of failing half-way when another writer got there first.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event

ENV_URL = "LDNCARE_DATABASE_URL"
#: How long a SQLite writer waits for the lock before giving up.
BUSY_TIMEOUT_MS = 30_000


def default_url() -> str:
    from platformdirs import user_data_dir

    folder = Path(user_data_dir("ldncare", appauthor=False))
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'ldncare.db'}"


def database_url() -> str:
    return os.environ.get(ENV_URL) or default_url()


def make_engine(url: str | None = None) -> Engine:
    """An engine for ``url`` (default: :func:`database_url`), configured for safe writes."""
    url = url or database_url()
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN, instead of pysqlite's own handling.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _migrations_dir() -> str:
    return str(resources.files("ldncare.store") / "migrations")


def migrate(url_or_engine: str | Engine | None = None, revision: str = "head") -> None:
    """Bring the schema to the latest revision, or up to ``revision`` (a test of a migration
    starts from the schema before it); no alembic.ini needed."""
    engine = url_or_engine if isinstance(url_or_engine, Engine) else make_engine(url_or_engine)
    cfg = Config()
    cfg.set_main_option("script_location", _migrations_dir().replace("%", "%%"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    if not isinstance(url_or_engine, Engine):
        engine.dispose()


def open_engine(url: str | None = None) -> Engine:
    """An engine on a migrated database: what the CLI and the web app call on start.

    Patients stored without screening facts (by a release before issue #17) get them here,
    from their latest assessment (:func:`ldncare.store.facts.derive_missing_facts`)."""
    from ldncare.store.facts import derive_missing_facts

    engine = make_engine(url)
    migrate(engine)
    derive_missing_facts(engine)
    return engine
