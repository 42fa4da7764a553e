"""A conditional ``Medication?identifier=system|value`` reference in a Bulk NDJSON export is
resolved against the export's Medication file by the one resolver (fhir/references.py), as the
Bundle reader resolves it (review M2): an oxycodone order named that way must reach the checks,
not cost the patient's import -- and the NDJSON and Bundle paths must never disagree."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ldncare.importing import import_bundle, import_ndjson
from ldncare.store.db import open_engine
from ldncare.store.models import PatientRow

AS_OF = date(2026, 11, 15)
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
OXYCODONE = {
    "resourceType": "Medication",
    "id": "oxy",
    "identifier": [{"system": "http://pharmacy.example/ids", "value": "O1"}],
    "code": {"coding": [{"system": RXNORM, "code": "1049621", "display": "oxycodone 5 MG"}]},
}
GABAPENTIN = {
    "resourceType": "Medication",
    "id": "gaba",
    "identifier": [{"system": "http://pharmacy.example/ids", "value": "G7"}],
    "code": {"text": "Gabapentin 300 MG Oral Capsule"},
}


def _patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1970-01-01"}


def _order(pid: str, reference: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": f"mr-{pid}",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": "2026-11-01",
        "medicationReference": {"reference": reference},
    }


def _write_export(folder: Path, pid: str, reference: str, meds: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True)
    files = {"Patient": [_patient(pid)], "MedicationRequest": [_order(pid, reference)]}
    files["Medication"] = meds
    for rtype, items in files.items():
        text = "".join(json.dumps(r) + "\n" for r in items)
        (folder / f"{rtype}.ndjson").write_text(text, encoding="utf-8")


def _stored_ids(engine: Any) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(PatientRow.external_id)).scalars())


def _stored_drugs(tmp_path: Path) -> list[str]:
    engine = open_engine(f"sqlite:///{tmp_path / 'ndjson.db'}")
    try:
        with engine.connect() as conn:
            snapshots = conn.execute(select(PatientRow.snapshot)).scalars().all()
    finally:
        engine.dispose()
    return [str(m["name"]) for snap in snapshots for m in snap["medications"]]


def _ndjson(tmp_path: Path, reference: str, meds: list[dict[str, Any]]) -> Any:
    folder = tmp_path / "export"
    _write_export(folder, "pn1", reference, meds)
    engine = open_engine(f"sqlite:///{tmp_path / 'ndjson.db'}")
    try:
        report = import_ndjson(engine, folder, "test", as_of=AS_OF, workdir=tmp_path)
        return report, _stored_ids(engine)
    finally:
        engine.dispose()


def _bundle(tmp_path: Path, reference: str, meds: list[dict[str, Any]]) -> Any:
    entries = [_patient("pn1"), _order("pn1", reference), *meds]
    bundle = {"resourceType": "Bundle", "type": "collection"}
    bundle["entry"] = [{"resource": r} for r in entries]  # type: ignore[assignment]
    engine = open_engine(f"sqlite:///{tmp_path / 'bundle.db'}")
    try:
        report = import_bundle(engine, bundle, "test", as_of=AS_OF)
        return report, _stored_ids(engine)
    finally:
        engine.dispose()


def test_pudendal_neuralgia_patient_on_oxycodone_named_by_pharmacy_identifier_is_imported(
    tmp_path: Path,
) -> None:
    """MR ``Medication?identifier=http://pharmacy.example/ids|O1``, oxycodone in
    Medication.ndjson: the patient is imported and the drug is the opioid, not unknown."""
    ref = "Medication?identifier=http://pharmacy.example/ids|O1"
    report, stored = _ndjson(tmp_path, ref, [GABAPENTIN, OXYCODONE])
    assert report.errors == [] and report.patients_skipped == 0
    assert stored == {"pn1"}
    assert report.medications_total == 1 and report.medications_active == 1
    assert _stored_drugs(tmp_path) == ["oxycodone 5 MG"]


def test_an_identifier_that_matches_two_medications_still_refuses_the_patient(
    tmp_path: Path,
) -> None:
    """Two Medications carry the identifier: which drug is meant cannot be told, so the
    patient is not imported (never a guess), with the reference named."""
    twin = dict(GABAPENTIN, identifier=OXYCODONE["identifier"])
    ref = "Medication?identifier=http://pharmacy.example/ids|O1"
    report, stored = _ndjson(tmp_path, ref, [twin, OXYCODONE])
    assert stored == set() and report.patients_skipped == 1
    assert any(ref in e.message and "cannot be resolved" in e.message for e in report.errors)


@pytest.mark.parametrize(
    "reference",
    [
        "Medication?identifier=http://pharmacy.example/ids|O1",
        "Medication?identifier=O1",
        "Medication?identifier=http://other.example|O1",
        "Medication?identifier=http://pharmacy.example/ids|G7",
        f"Medication?code={RXNORM}|1049621",
        "Medication?_id=oxy",
        "Medication/missing",
        "Medication/oxy",
    ],
)
def test_the_ndjson_import_and_the_bundle_import_agree_on_every_reference_form(
    tmp_path: Path, reference: str
) -> None:
    """One resolver: whatever a Bundle import makes of a reference, the NDJSON import of the
    same resources makes the same (imported or refused, same medicines)."""
    meds = [GABAPENTIN, OXYCODONE]
    nd_report, nd_stored = _ndjson(tmp_path, reference, meds)
    b_report, b_stored = _bundle(tmp_path, reference, meds)
    assert nd_stored == b_stored
    assert nd_report.patients_skipped == b_report.patients_skipped
    assert nd_report.medications_total == b_report.medications_total
    assert [e.message for e in nd_report.errors] == [e.message for e in b_report.errors]
