"""Issue #17, item 3: a tramadol order that names its drug by reference is seen beside LDN
whichever import path reads it (a Bundle, a Bulk NDJSON export) and whichever reference form it
uses: both paths resolve through fhir/references.py. An order whose drug is lost would make LDN
look safe."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ldncare.importing import import_bundle, import_ndjson
from ldncare.store.db import make_engine, migrate
from ldncare.store.population import screen_population

AS_OF = date(2026, 11, 25)
MED_URL = "https://ehr.example.org/fhir/Medication/tram"
MED_UUID = "urn:uuid:6f1c2a8e-9d4b-4c55-8f0a-2b7e3c1d9a10"


def _resources(reference: str, *, contained: bool = False) -> list[dict[str, Any]]:
    tramadol_code = {"text": "Tramadol hydrochloride 50 mg oral tablet"}
    order: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": "rx-tram",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationReference": {"reference": reference},
    }
    if contained:
        order["contained"] = [{"resourceType": "Medication", "id": "m1", "code": tramadol_code}]
    return [
        {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1975-01-01"},
        {
            "resourceType": "Medication",
            "id": "tram",
            "identifier": [{"system": "https://ehr.example.org/formulary", "value": "T50"}],
            "code": tramadol_code,
        },
        order,
        {
            "resourceType": "MedicationStatement",
            "id": "ms-ldn",
            "status": "active",
            "subject": {"reference": "Patient/p1"},
            "medicationCodeableConcept": {"text": "Naltrexone 3 mg (low dose, compounded)"},
            "dosage": [{"text": "3 mg at bedtime"}],
        },
    ]


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    urls = {"Medication": [MED_URL, MED_UUID]}
    entries = []
    for r in resources:
        entries.append({"resource": r})
        if r["resourceType"] == "Medication":
            # The same Medication under both full URLs: one entry for each form.
            entries[-1]["fullUrl"] = urls["Medication"][0]
            twin = dict(r, id="tram-u", identifier=[{"system": "urn:x", "value": "U"}])
            entries.append({"fullUrl": urls["Medication"][1], "resource": twin})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _checks(url: str) -> list[tuple[str, str]]:
    engine = make_engine(url)
    hits = [(h.check, h.severity) for h in screen_population(engine, AS_OF)]
    engine.dispose()
    return hits


FORMS = {
    "relative": ("Medication/tram", False),
    "versioned": ("Medication/tram/_history/4", False),
    "absolute": (MED_URL, False),
    "absolute-versioned": (MED_URL + "/_history/4", False),
    "conditional": ("Medication?identifier=https://ehr.example.org/formulary|T50", False),
    "contained": ("#m1", True),
    "urn-uuid": (MED_UUID, False),
}


@pytest.mark.parametrize("form", FORMS)
def test_tramadol_named_by_reference_is_beside_ldn_on_bundle_import(
    form: str, tmp_path: Path
) -> None:
    reference, contained = FORMS[form]
    url = f"sqlite:///{tmp_path / 'b.db'}"
    migrate(url)
    engine = make_engine(url)
    report = import_bundle(engine, _bundle(_resources(reference, contained=contained)), "t",
                           as_of=AS_OF)  # fmt: skip
    engine.dispose()
    assert report.patients_imported == 1 and not report.errors, report.errors
    assert ("ldn_with_opioid", "critical") in _checks(url)


#: NDJSON has no fullUrl (urn:uuid), and a conditional reference is a transaction-Bundle form.
NDJSON_FORMS = [f for f in FORMS if f not in ("urn-uuid", "conditional")]


@pytest.mark.parametrize("form", NDJSON_FORMS)
def test_tramadol_named_by_reference_is_beside_ldn_on_ndjson_import(
    form: str, tmp_path: Path
) -> None:
    reference, contained = FORMS[form]
    folder = tmp_path / "export"
    folder.mkdir()
    by_type: dict[str, list[str]] = {}
    for res in _resources(reference, contained=contained):
        by_type.setdefault(res["resourceType"], []).append(json.dumps(res))
    for rtype, lines in by_type.items():
        (folder / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n")
    url = f"sqlite:///{tmp_path / 'n.db'}"
    migrate(url)
    engine = make_engine(url)
    report = import_ndjson(engine, folder, "t", as_of=AS_OF)
    engine.dispose()
    assert report.patients_imported == 1 and not report.errors, report.errors
    assert ("ldn_with_opioid", "critical") in _checks(url)


def test_an_ndjson_conditional_reference_without_display_keeps_the_patient_out(
    tmp_path: Path,
) -> None:
    reference, _ = FORMS["conditional"]
    folder = tmp_path / "export"
    folder.mkdir()
    by_type: dict[str, list[str]] = {}
    for res in _resources(reference):
        by_type.setdefault(res["resourceType"], []).append(json.dumps(res))
    for rtype, lines in by_type.items():
        (folder / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n")
    url = f"sqlite:///{tmp_path / 'n.db'}"
    migrate(url)
    engine = make_engine(url)
    report = import_ndjson(engine, folder, "t", as_of=AS_OF)
    engine.dispose()
    assert report.patients_imported == 0
    assert any("cannot be resolved" in e.message for e in report.errors)
