"""The NDJSON importer's batched writer, on SQLite and PostgreSQL.

On PostgreSQL a batch is written by a writer thread while the next one is prepared, new patient
ids come from the sequence up front, and the assessment and audit rows are built by the server
from the patient rows just written. These tests check that this stores exactly what one
transaction per patient stores, that re-import stays idempotent, and that a database error
still skips only its own patient.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from ldncare.importing import ImportReport, import_ndjson
from ldncare.store.db import make_engine, migrate
from ldncare.store.models import AssessmentRow, AuditRow, PatientRow
from ldncare.store.population import pop_lab, pop_medication, pop_patient
from tests.integration.followup_db import db_url
from tests.integration.test_fhir_import import _count, _facts

__all__ = ["db_url"]

AS_OF = date(2026, 6, 1)
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"


def _ref(pid: str) -> dict[str, str]:
    return {"reference": f"Patient/{pid}"}


def _patient(pid: str, *, name: str | None = None, med_status: str = "active") -> list[Any]:
    """A Patient with naltrexone 4.5 mg, chronic pain and an eGFR: one row in every table."""
    return [
        {
            "resourceType": "Patient",
            "id": pid,
            "name": [{"family": name or "Vignette", "given": [pid]}],
            "gender": "female",
            "birthDate": "1970-05-17",
        },
        {
            "resourceType": "MedicationRequest",
            "id": f"{pid}-m1",
            "status": med_status,
            "intent": "order",
            "medicationCodeableConcept": {"text": "Naltrexone 4.5 MG Oral Capsule"},
            "dosageInstruction": [{"text": "4.5 mg at night"}],
            "subject": _ref(pid),
            "authoredOn": "2026-01-10",
        },
        {
            "resourceType": "Condition",
            "id": f"{pid}-c1",
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"coding": [{"system": SNOMED, "code": "82423001", "display": "Chronic pain"}]},
            "subject": _ref(pid),
        },
        {
            "resourceType": "Observation",
            "id": f"{pid}-o1",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "33914-3", "display": "eGFR"}]},
            "subject": _ref(pid),
            "effectiveDateTime": "2026-03-01",
            "valueQuantity": {"value": 72, "unit": "mL/min/{1.73_m2}"},
        },
    ]


def _write_export(folder: Path, records: list[list[Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[str]] = {}
    for record in records:
        for res in record:
            files.setdefault(res["resourceType"], []).append(json.dumps(res))
    for rtype, lines in files.items():
        (folder / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _stored(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every imported row, keyed by FHIR id instead of database id, without timestamps."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        ext = {pk: e for pk, e in conn.execute(select(PatientRow.id, PatientRow.external_id))}
        P, A, L = PatientRow, AssessmentRow, AuditRow
        out["patients"] = sorted(
            (e, str(n), str(b), json.dumps(snap, sort_keys=True))
            for e, n, b, snap in conn.execute(
                select(P.external_id, P.name, P.birth_date, P.snapshot)
            )
        )
        out["assessments"] = sorted(
            (ext[pk], json.dumps(snap, sort_keys=True), by)
            for pk, snap, by in conn.execute(select(A.patient_id, A.snapshot, A.created_by))
        )
        out["audit"] = sorted(
            (act, ent, ext[int(eid)], json.dumps(det, sort_keys=True))
            for act, ent, eid, det in conn.execute(
                select(L.action, L.entity, L.entity_id, L.detail).where(L.entity == "patient")
            )
        )
    return {**out, **_facts(engine)}


def _import(engine: Engine, folder: Path, batch: int) -> ImportReport:
    return import_ndjson(engine, folder, "test", as_of=AS_OF, batch_size=batch)


def test_batches_store_exactly_what_one_patient_per_transaction_stores(
    db_url: str, tmp_path: Path
) -> None:
    export = _write_export(tmp_path / "export", [_patient(f"p-{i:02d}") for i in range(11)])
    batched = make_engine(db_url)
    single_url = f"sqlite:///{tmp_path / 'single.db'}"
    migrate(single_url)
    single = make_engine(single_url)
    try:
        report = _import(batched, export, batch=4)  # 3 batches, the last one partial
        reference = _import(single, export, batch=1)
        assert report.errors == [] and report.patients_imported == 11
        assert report.to_json()["patients"] == reference.to_json()["patients"]
        assert (report.medications_total, report.conditions, report.observations) == (11, 11, 11)
        assert _stored(batched) == _stored(single)
        with batched.connect() as conn:
            # Database ids follow the order of the export, for patients and their assessments.
            order = [e for (e,) in conn.execute(select(PatientRow.external_id).order_by("id"))]
            first = conn.execute(
                select(PatientRow.external_id)
                .join(AssessmentRow, AssessmentRow.patient_id == PatientRow.id)
                .order_by(AssessmentRow.id)
            ).all()
        assert order == sorted(order) and [e for (e,) in first] == order
    finally:
        batched.dispose()
        single.dispose()


def test_re_import_writes_nothing_and_a_changed_patient_gets_a_new_assessment(
    db_url: str, tmp_path: Path
) -> None:
    records = [_patient(f"p-{i:02d}") for i in range(7)]
    export = _write_export(tmp_path / "export", records)
    engine = make_engine(db_url)
    try:
        _import(engine, export, batch=3)
        tables = (PatientRow, AssessmentRow, AuditRow, pop_patient, pop_medication, pop_lab)
        before = {str(t): _count(engine, t) for t in tables}
        stored = _stored(engine)
        again = _import(engine, export, batch=3)
        assert (again.patients_imported, again.patients_unchanged) == (0, 7)
        assert {str(t): _count(engine, t) for t in tables} == before
        assert _stored(engine) == stored

        # p-03 stops naltrexone in the EHR: only that patient is rewritten.
        records[3] = _patient("p-03", med_status="stopped")
        _write_export(export, records)
        third = _import(engine, export, batch=3)
        assert (third.patients_updated, third.patients_unchanged) == (1, 6)
        assert _count(engine, PatientRow) == 7
        assert _count(engine, AssessmentRow) == before[str(AssessmentRow)] + 1
        with engine.connect() as conn:
            pk, snapshot = conn.execute(
                select(PatientRow.id, PatientRow.snapshot).where(PatientRow.external_id == "p-03")
            ).one()
            latest = conn.execute(
                select(AssessmentRow.snapshot)
                .where(AssessmentRow.patient_id == pk)
                .order_by(AssessmentRow.id.desc())
                .limit(1)
            ).scalar_one()
            audit = conn.execute(
                select(AuditRow.action, AuditRow.entity_id, AuditRow.detail)
                .order_by(AuditRow.id.desc())
                .limit(1)
            ).one()
            status = conn.execute(
                select(pop_medication.c.status).where(pop_medication.c.patient_id == pk).distinct()
            ).scalar_one()
        assert latest == snapshot and snapshot["medications"][0]["status"] == "stopped"
        assert status == "stopped"
        assert (audit.action, audit.entity_id) == ("update", str(pk))
        assert audit.detail == {"external_id": "p-03", "source": "fhir:ndjson"}
    finally:
        engine.dispose()


def test_a_database_error_skips_only_its_own_patient(db_url: str, tmp_path: Path) -> None:
    # A family name longer than the 256 characters of patients.name: PostgreSQL refuses the
    # row, so its batch is retried one patient per transaction. SQLite does not enforce the
    # length and stores it.
    long_name = "X" * 300
    records = [_patient(f"p-{i:02d}", name=long_name if i == 4 else None) for i in range(9)]
    export = _write_export(tmp_path / "export", records)
    engine = make_engine(db_url)
    try:
        report = _import(engine, export, batch=3)
        with engine.connect() as conn:
            stored = {e for (e,) in conn.execute(select(PatientRow.external_id))}
        if engine.dialect.name == "postgresql":
            assert report.patients_imported == 8 and report.patients_skipped == 1
            assert [(e.resource_type, e.resource_id) for e in report.errors] == [
                ("Patient", "p-04")
            ]
            assert report.errors[0].message.startswith("not imported: database error:")
            assert stored == {f"p-{i:02d}" for i in range(9)} - {"p-04"}
            # Never a partial patient: no fact, assessment or audit row of p-04 either.
            with engine.connect() as conn:
                with_facts = conn.execute(
                    select(func.count(pop_medication.c.patient_id.distinct()))
                ).scalar_one()
            assert with_facts == 8 and _count(engine, pop_patient) == 8
            assert _count(engine, AssessmentRow) == 8 and _count(engine, AuditRow) == 8
        else:
            assert report.errors == [] and report.patients_imported == 9
            assert stored == {f"p-{i:02d}" for i in range(9)}
        assert report.medications_total == len(stored)
    finally:
        engine.dispose()
