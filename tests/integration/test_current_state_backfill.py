"""A store written before issue #17 holds patients without screening facts (only FHIR imports
wrote them); opening it on this release derives them from each patient's latest assessment.
SQLite always, PostgreSQL too when LDNCARE_TEST_POSTGRES_URL is set."""

from __future__ import annotations

from datetime import date

from sqlalchemy import delete, func, select

from ldncare.patient_file import patient_from_data
from ldncare.store import repository
from ldncare.store.db import make_engine, open_engine
from ldncare.store.population import FACT_TABLES, pop_patient, screen_population
from tests.integration.followup_db import db_url

__all__ = ["db_url"]

AS_OF = date(2026, 12, 4)


def _patient(pid: str, *meds: dict[str, str]) -> dict[str, object]:
    return {
        "id": pid,
        "birth_date": "1975-05-05",
        "sex": "female",
        "conditions": [{"name": "Pudendal neuralgia"}],
        "medications": list(meds),
    }


def _forget_facts(url: str) -> None:
    """What a store written by an earlier release looks like: patients, no fact rows."""
    engine = make_engine(url)
    with engine.begin() as conn:
        for table in (*FACT_TABLES, pop_patient):
            conn.execute(delete(table))
    engine.dispose()


def test_a_store_from_before_issue_17_is_screened_whole_once_opened(db_url: str) -> None:
    engine = make_engine(db_url)
    repository.add_patient(
        engine,
        patient_from_data(_patient("pn-ldn-tramadol", {"name": "Naltrexone 3 mg", "dose": "3 mg"})),
        actor="old-release",
    )
    # The tramadol arrived with a later assessment: the facts must come from that one.
    later = _patient(
        "pn-ldn-tramadol",
        {"name": "Naltrexone 3 mg", "dose": "3 mg"},
        {"name": "Tramadol 50 mg", "dose": "50 mg"},
    )
    repository.add_assessment(
        engine, "pn-ldn-tramadol", patient_from_data(later).model_dump(mode="json"), actor="old"
    )
    repository.add_patient(engine, patient_from_data(_patient("pn-no-meds")), actor="old")
    engine.dispose()
    _forget_facts(db_url)
    engine = make_engine(db_url)
    assert screen_population(engine, AS_OF) == []  # the defect of issue #17
    engine.dispose()

    engine = open_engine(db_url)
    with engine.connect() as conn:
        facts = conn.execute(select(func.count()).select_from(pop_patient)).scalar_one()
    hits = [(h.patient_id, h.check, h.severity) for h in screen_population(engine, AS_OF)]
    engine.dispose()
    assert facts == 2
    assert ("pn-ldn-tramadol", "ldn_with_opioid", "critical") in hits
    assert ("pn-no-meds", "pn_consider_ldn", "info") in hits


def test_opening_a_store_whose_facts_are_all_there_writes_nothing(db_url: str) -> None:
    engine = make_engine(db_url)
    repository.add_patient(engine, patient_from_data(_patient("pn-no-meds")), actor="t")
    with engine.connect() as conn:
        before = conn.execute(select(pop_patient.c.imported_at)).scalar_one()
    engine.dispose()
    engine = open_engine(db_url)
    with engine.connect() as conn:
        after = conn.execute(select(pop_patient.c.imported_at)).scalar_one()
    engine.dispose()
    assert after == before
