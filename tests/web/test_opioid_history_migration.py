"""Revision 0005: plan summaries written before it flagged an opioid course long finished
(ldn.opioid.history) as "opioid on record"; the upgrade recomputes the flag from the contracts.
SQLite always, PostgreSQL too when LDNCARE_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, make_url, select, text, update
from sqlalchemy.orm import Session

from ldncare.patient_file import patient_from_data
from ldncare.store import repository
from ldncare.store.db import _migrations_dir, make_engine
from ldncare.store.models import PlanSummaryRow
from ldncare.web.service import plan_contract
from tests.integration.followup_db import postgres_base_url

TODAY = date(2026, 6, 1)
PN = {
    "id": "p",
    "birth_date": "1970-01-01",
    "sex": "female",
    "conditions": [{"name": "Pudendal neuralgia"}],
}
ENDED_2020 = {"name": "Tramadol 50 MG Oral Tablet", "status": "completed", "end": "2020-06-30"}
TAKEN_NOW = {"name": "Tramadol 50 MG Oral Tablet", "status": "active"}


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_at_0004(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        _to(engine, "0004")
        yield engine
        engine.dispose()
        return
    base = postgres_base_url()
    name = f"ldncare_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(base).set(database=name).render_as_string(hide_password=False))
    try:
        _to(engine, "0004")
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _to(engine: Engine, revision: str, *, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", _migrations_dir())
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def _store(engine: Engine, pid: str, medication: dict[str, str]) -> int:
    patient = patient_from_data({**PN, "id": pid, "medications": [medication]})
    contract = plan_contract(patient, start=TODAY, today=TODAY, nantes=None)
    row = repository.add_patient(engine, patient, plan_contract=contract, actor="t")
    return row.id


def _flags(engine: Engine) -> dict[int, bool]:
    with Session(engine) as s:
        return {r.patient_id: r.opioid_on_record for r in s.scalars(select(PlanSummaryRow))}


def test_upgrade_clears_the_opioid_flag_of_a_finished_course_only(engine_at_0004: Engine) -> None:
    engine = engine_at_0004
    ended = _store(engine, "ended", ENDED_2020)
    taken = _store(engine, "taken", TAKEN_NOW)
    # What the summaries held before the fix: every ldn.opioid.* finding counted.
    with engine.begin() as conn:
        conn.execute(update(PlanSummaryRow).values(opioid_on_record=True))
    _to(engine, "head")
    assert _flags(engine) == {ended: False, taken: True}
    _to(engine, "0004", down=True)
    assert _flags(engine) == {ended: True, taken: True}
