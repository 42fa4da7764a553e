"""Re-import keeps the stored population facts current: facts that depend on the import date
(kidney function uses the age on that day) or on the evidence base are recomputed when they
move, without a new assessment or an audit "update" of a record that did not change, and a
re-import that moves nothing still writes nothing. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, func, select, update

from ldncare import importing
from ldncare.fhir.groups import bundle_groups
from ldncare.importing import ImportReport, import_bundle, import_ndjson
from ldncare.store import facts as facts_module
from ldncare.store.db import make_engine, open_engine
from ldncare.store.models import AssessmentRow, AuditRow, PatientRow
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


def _refresh_counts(report: ImportReport) -> tuple[int, int, int]:
    """(updated, facts refreshed, unchanged) patients of a re-import."""
    return (report.patients_updated, report.patients_facts_refreshed, report.patients_unchanged)


def _kidney_hits(engine: Engine, as_of: date) -> list[ScreenHit]:
    return screen_population(engine, as_of, checks=["gabapentinoid_renal"])


def _written(engine: Engine) -> tuple[int, int]:
    """(assessment rows, audit rows): what a re-import of an unchanged record leaves alone."""
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
    before = _written(engine)

    again = import_ndjson(engine, export, "test", as_of=THIS_YEAR)
    # His record did not change, only a fact derived from it: no second (identical)
    # assessment snapshot, no audit "update" of his record.
    assert _refresh_counts(again) == (0, 1, 0)
    assert _written(engine) == before
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
    assert _refresh_counts(again) == (0, 0, 1)
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
    assert _refresh_counts(again) == (0, 0, 1)
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
    real = facts_module._ldn_dosing()
    edited = real.model_copy(
        update={"defaults": real.defaults.model_copy(update={"review_weeks": 20})}
    )
    assert real.defaults.review_weeks != 20
    monkeypatch.setattr(facts_module, "_ldn_dosing", lambda: edited)
    before = _written(engine)
    again = import_bundle(engine, bundle, "test", as_of=THIS_YEAR)
    with engine.connect() as conn:
        rewritten = conn.execute(review).scalar_one()
    after = _written(engine)
    engine.dispose()
    assert _refresh_counts(again) == (0, 1, 0)
    assert after == before
    assert shipped != rewritten == date(2025, 6, 1) + timedelta(weeks=20)


def test_a_changed_record_is_still_updated_with_its_history_and_audit(db_url: str) -> None:
    resources = _man_on_gabapentin()
    engine = make_engine(db_url)
    import_bundle(engine, _bundle(resources), "test", as_of=LAST_YEAR)
    assessments, audits = _written(engine)
    resources[0] = {**resources[0], "name": [{"family": "Moreau", "given": ["Luc"]}]}
    again = import_bundle(engine, _bundle(resources), "test", as_of=THIS_YEAR)
    after = _written(engine)
    with engine.connect() as conn:
        actions = conn.execute(select(AuditRow.action).order_by(AuditRow.id)).scalars().all()
    engine.dispose()
    assert _refresh_counts(again) == (1, 0, 0)
    assert after == (assessments + 1, audits + 1) and actions[-1] == "update"


@pytest.mark.parametrize("release", ["snapshot_only", "snapshot_and_facts"])
def test_a_store_hashed_by_an_earlier_release_has_its_facts_refreshed_not_its_record(
    db_url: str, tmp_path: Path, release: str
) -> None:
    # Earlier releases stored one sha256: of "1" + the snapshot, then of the snapshot and its
    # facts. A re-import of the same record is a facts refresh (which stores the two-part
    # hash), not an update with a second, identical assessment.
    export = _export(tmp_path / "export", _man_on_gabapentin())
    engine = make_engine(db_url)
    import_ndjson(engine, export, "test", as_of=LAST_YEAR)
    with engine.connect() as conn:
        snapshot = conn.execute(select(PatientRow.snapshot)).scalar_one()
    # The rows the importer derives as of LAST_YEAR, hashed by that release's own formula.
    [prepared] = importing._prepare_all(
        bundle_groups(_bundle(_man_on_gabapentin()))[0],
        facts_module._Facts(LAST_YEAR, facts_module._Encoding(engine.dialect.name)),
    ).prepared
    assert json.loads(prepared.snapshot) == snapshot
    if release == "snapshot_only":
        old = hashlib.sha256(f"1{prepared.snapshot}".encode())
        as_of = THIS_YEAR  # that hash did not cover the facts, so they may have moved since
    else:
        old = hashlib.sha256(f"1\n{prepared.snapshot}\n".encode())
        old.update(orjson.dumps((prepared.pop[:-2], prepared.meds, prepared.conds, prepared.labs)))
        as_of = LAST_YEAR
    with engine.begin() as conn:
        conn.execute(update(pop_patient).values(source_hash=old.hexdigest()))
    before = _written(engine)
    again = import_ndjson(engine, export, "test", as_of=as_of)
    after = _written(engine)
    with engine.connect() as conn:
        stored = conn.execute(select(pop_patient.c.source_hash)).scalar_one()
    third = import_ndjson(engine, export, "test", as_of=as_of)
    engine.dispose()
    assert _refresh_counts(again) == (0, 1, 0) and after == before
    assert stored == prepared.digest if as_of == LAST_YEAR else ":" in stored
    assert _refresh_counts(third) == (0, 0, 1)
