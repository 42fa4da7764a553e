"""Re-import keeps the stored population facts current: facts that depend on the import date
(kidney function uses the age on that day) or on the evidence base are recomputed when they
move, and a re-import that moves nothing still writes nothing. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from ldncare.fhir import importer
from ldncare.fhir.importer import import_bundle, import_ndjson
from ldncare.store.db import make_engine, open_engine
from ldncare.store.models import AssessmentRow, AuditRow
from ldncare.store.population import ScreenHit, pop_medication, pop_patient, screen_population
from tests.integration.followup_db import db_url

__all__ = ["db_url"]

LAST_YEAR = date(2024, 7, 1)
THIS_YEAR = date(2025, 7, 1)


def _observation(rid: str, loinc: str, value: float, unit: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "subject": {"reference": "Patient/g1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "effectiveDateTime": "2024-06-15",
        "valueQuantity": {"value": value, "unit": unit},
    }


def _man_on_gabapentin(*, creatinine: bool = True) -> list[dict[str, Any]]:
    """A man born 1964-06-01 (60 on LAST_YEAR, 61 on THIS_YEAR), 72 kg, creatinine 1.32 mg/dL:
    Cockcroft–Gault gives (140 − 60) / 1.32 = 60.6 mL/min last year, (140 − 61) / 1.32 =
    59.8 mL/min this year, just below the gabapentinoid bands' 60 mL/min. Without a creatinine
    nothing stored depends on his age."""
    labs = [_observation("w", "29463-7", 72, "kg")]
    if creatinine:
        labs.append(_observation("c", "2160-0", 1.32, "mg/dL"))
    return [
        {"resourceType": "Patient", "id": "g1", "gender": "male", "birthDate": "1964-06-01"},
        *labs,
        {
            "resourceType": "MedicationRequest",
            "id": "m",
            "status": "active",
            "intent": "order",
            "subject": {"reference": "Patient/g1"},
            "medicationCodeableConcept": {"text": "gabapentin 300 mg capsule"},
            "authoredOn": "2024-01-01",
        },
    ]


def _export(folder: Path, resources: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[str]] = {}
    for res in resources:
        by_type.setdefault(res["resourceType"], []).append(json.dumps(res))
    for rtype, lines in by_type.items():
        (folder / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n")
    return folder


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in resources]}  # fmt: skip


def _kidney_hits(engine: Engine, as_of: date) -> list[ScreenHit]:
    return screen_population(engine, as_of, checks=["gabapentinoid_renal"])


def _written(engine: Engine) -> tuple[int, int]:
    """(assessment rows, audit rows): what a re-import that writes nothing leaves alone."""
    with engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(AssessmentRow)).scalar_one(),
            conn.execute(select(func.count()).select_from(AuditRow)).scalar_one(),
        )


def test_a_re_import_a_year_later_recomputes_kidney_function_and_flags_gabapentin(
    db_url: str, tmp_path: Path
) -> None:
    export = _export(tmp_path / "export", _man_on_gabapentin())
    engine = make_engine(db_url)
    first = import_ndjson(engine, export, "test", as_of=LAST_YEAR)
    assert first.patients_imported == 1 and first.errors == []
    assert _kidney_hits(engine, LAST_YEAR) == []

    again = import_ndjson(engine, export, "test", as_of=THIS_YEAR)
    assert (again.patients_updated, again.patients_unchanged) == (1, 0)
    [hit] = _kidney_hits(engine, THIS_YEAR)
    with engine.connect() as conn:
        renal = conn.execute(select(pop_patient.c.renal_ml_min)).scalar_one()
    engine.dispose()
    assert renal == pytest.approx(79 / 1.32)
    assert "age 61" in hit.message and "59.8 mL/min" in hit.message
    # The store re-imported today says what a store imported fresh today says.
    fresh = open_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    import_ndjson(fresh, export, "test", as_of=THIS_YEAR)
    [fresh_hit] = _kidney_hits(fresh, THIS_YEAR)
    fresh.dispose()
    assert (hit.message, hit.detail) == (fresh_hit.message, fresh_hit.detail)


def test_an_unchanged_re_import_on_the_same_day_writes_nothing(db_url: str, tmp_path: Path) -> None:
    export = _export(tmp_path / "export", _man_on_gabapentin())
    engine = make_engine(db_url)
    import_ndjson(engine, export, "test", as_of=THIS_YEAR)
    before = _written(engine)
    again = import_ndjson(engine, export, "test", as_of=THIS_YEAR)
    after = _written(engine)
    engine.dispose()
    assert (again.patients_updated, again.patients_unchanged) == (0, 1)
    assert after == before


def test_a_re_import_a_year_later_that_moves_no_fact_writes_nothing(db_url: str) -> None:
    # No creatinine: no stored value depends on his age, so a later import finds him unchanged
    # (the store is not rewritten, nor its history grown, every day a feed is re-imported).
    bundle = _bundle(_man_on_gabapentin(creatinine=False))
    engine = make_engine(db_url)
    import_bundle(engine, bundle, "test", as_of=LAST_YEAR)
    before = _written(engine)
    again = import_bundle(engine, bundle, "test", as_of=THIS_YEAR)
    after = _written(engine)
    engine.dispose()
    assert (again.patients_updated, again.patients_unchanged) == (0, 1)
    assert after == before


def test_a_changed_evidence_base_rewrites_the_facts_it_moves(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ldn = {
        "resourceType": "MedicationRequest",
        "id": "n",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/g1"},
        "medicationCodeableConcept": {"text": "Naltrexone (compounded)"},
        "dosageInstruction": [{"text": "4.5 mg at bedtime"}],
        "authoredOn": "2025-06-01",
    }
    bundle = _bundle([*_man_on_gabapentin(creatinine=False), ldn])
    engine = make_engine(db_url)
    import_bundle(engine, bundle, "test", as_of=THIS_YEAR)
    review = select(pop_medication.c.review_date).where(pop_medication.c.drug_class == "ldn")
    with engine.connect() as conn:
        shipped = conn.execute(review).scalar_one()
    # A release whose ldn.yaml has a different default trial length (the figure here is only
    # a change to detect, not a dose or a duration anyone should use).
    real = importer._ldn_dosing()
    edited = real.model_copy(
        update={"defaults": real.defaults.model_copy(update={"review_weeks": 20})}
    )
    assert real.defaults.review_weeks != 20
    monkeypatch.setattr(importer, "_ldn_dosing", lambda: edited)
    again = import_bundle(engine, bundle, "test", as_of=THIS_YEAR)
    with engine.connect() as conn:
        rewritten = conn.execute(review).scalar_one()
    engine.dispose()
    assert (again.patients_updated, again.patients_unchanged) == (1, 0)
    assert shipped != rewritten == date(2025, 6, 1) + timedelta(weeks=20)
