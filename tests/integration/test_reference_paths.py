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
    "conditional-id": ("Medication?_id=tram", False),  # integrator review H1
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


@pytest.mark.parametrize("value", ["T50", "NOPE"])
def test_tramadol_named_by_its_formulary_identifier_alone_is_seen_or_the_patient_kept_out(
    value: str, tmp_path: Path
) -> None:
    """A ``medicationReference.identifier`` without ``reference`` (integrator review H1): the
    Medication carrying it is the drug; with none, the import refuses the patient, as for any
    reference it cannot resolve."""
    resources = _resources("Medication/tram")
    order = next(r for r in resources if r["resourceType"] == "MedicationRequest")
    order["medicationReference"] = {
        "identifier": {"system": "https://ehr.example.org/formulary", "value": value}
    }
    url = f"sqlite:///{tmp_path / 'b.db'}"
    migrate(url)
    engine = make_engine(url)
    report = import_bundle(engine, _bundle(resources), "t", as_of=AS_OF)
    engine.dispose()
    if value == "T50":
        assert report.patients_imported == 1 and not report.errors, report.errors
        assert ("ldn_with_opioid", "critical") in _checks(url)
    else:
        assert report.patients_imported == 0
        assert any("cannot be resolved" in e.message for e in report.errors), report.errors


#: NDJSON has no fullUrl (urn:uuid). A conditional reference is resolved against the export's
#: Medication file by the same resolver as in a Bundle (review M2).
NDJSON_FORMS = [f for f in FORMS if f != "urn-uuid"]


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


def test_an_ndjson_conditional_reference_matching_no_medication_keeps_the_patient_out(
    tmp_path: Path,
) -> None:
    reference = "Medication?identifier=https://ehr.example.org/formulary|T99"
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


# --------------------------------------------------------------- the same drug in CDS Hooks


def _cds_client() -> Any:
    import httpx
    from fastapi.testclient import TestClient

    from ldncare.cdshooks import CdsSettings, create_cds_app

    # Demo mode (no JWT) and no FHIR server to fall back on: what is not in the request is 412.
    settings = CdsSettings(demo=True, demo_fhir_servers=[], app_url="https://ldncare.test")
    return TestClient(create_cds_app(settings, transport=httpx.MockTransport(lambda r: None)))


def _searchset(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


def _cds_request(resources: list[dict[str, Any]], draft: dict[str, Any]) -> dict[str, Any]:
    """An order-select for ``draft`` with the record prefetched as an EHR sends it: searchset
    Bundles whose entries keep the fullUrls of the import Bundle (:func:`_bundle`)."""
    entries = _bundle(resources)["entry"]

    def of(*types: str) -> dict[str, Any]:
        return _searchset([e for e in entries if e["resource"]["resourceType"] in types])

    return {
        "hook": "order-select",
        "hookInstance": "0f6e5c1a-3d2b-4e8f-9a7c-6b5d4e3f2a10",
        "context": {
            "userId": "Practitioner/1",
            "patientId": "p1",
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": draft}],
            },
            "selections": [f"MedicationRequest/{draft['id']}"],
        },
        "prefetch": {
            "patient": resources[0],
            "conditions": _searchset([]),
            # The Medications come with the orders that name them (_include), as prefetch does.
            "medications": of("MedicationRequest", "Medication"),
            "statements": of("MedicationStatement"),
            "allergies": _searchset([]),
            "labs": _searchset([]),
            "weight": _searchset([]),
        },
    }


@pytest.mark.parametrize("form", FORMS)
def test_tramadol_by_reference_blocks_a_naltrexone_order_in_cds_as_on_import(
    form: str, tmp_path: Path
) -> None:
    """One resolver: the active tramadol order the importer sees beside LDN (the same
    reference form, the same resources) is seen by the CDS service when naltrexone is ordered,
    so the order gets the critical opioid card on this path too."""
    reference, contained = FORMS[form]
    resources = _resources(reference, contained=contained)
    url = f"sqlite:///{tmp_path / 'b.db'}"
    migrate(url)
    engine = make_engine(url)
    report = import_bundle(engine, _bundle(resources), "t", as_of=AS_OF)
    engine.dispose()
    assert not report.errors and ("ldn_with_opioid", "critical") in _checks(url)

    draft = {
        "resourceType": "MedicationRequest",
        "id": "rx-ldn",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": "Naltrexone 4.5 mg capsule (compounded)"},
    }
    response = _cds_client().post(
        "/cds-services/ldncare-order-select", json=_cds_request(resources, draft)
    )
    assert response.status_code == 200, response.text
    critical = [c for c in response.json()["cards"] if c["indicator"] == "critical"]
    assert critical and "Tramadol" in critical[0]["summary"], response.json()


@pytest.mark.parametrize("form", [f for f in FORMS if f != "conditional"])
def test_a_tramadol_draft_by_reference_is_an_opioid_order_for_a_patient_on_ldn(form: str) -> None:
    """The draft itself names its drug by reference (its Medication in draftOrders, with the
    fullUrl an absolute or urn:uuid reference needs): read as tramadol, it is an opioid ordered
    for a patient on LDN -- never an order of "nothing ldncare checks"."""
    reference, contained = FORMS[form]
    resources = _resources(reference, contained=contained)
    record = [r for r in resources if r["resourceType"] in ("Patient", "MedicationStatement")]
    draft = dict(next(r for r in resources if r["resourceType"] == "MedicationRequest"))
    draft["status"] = "draft"
    body = _cds_request(record, draft)
    medications = [e for e in _bundle(resources)["entry"]
                   if e["resource"]["resourceType"] == "Medication"]  # fmt: skip
    body["context"]["draftOrders"]["entry"] += medications
    response = _cds_client().post("/cds-services/ldncare-order-select", json=body)
    assert response.status_code == 200, response.text
    summaries = [c["summary"] for c in response.json()["cards"] if c["indicator"] == "critical"]
    assert any(s.startswith("Opioid ordered (Tramadol") for s in summaries), summaries


def test_a_conditional_draft_reference_the_request_cannot_resolve_is_412_not_silence() -> None:
    """A conditional reference resolves against the draft Bundle's Medications like on import;
    one that matches none cannot be fetched, so the answer is 412 (not checked), never 200."""
    resources = _resources("Medication?identifier=https://ehr.example.org/formulary|NOPE")
    record = [r for r in resources if r["resourceType"] in ("Patient", "MedicationStatement")]
    draft = dict(next(r for r in resources if r["resourceType"] == "MedicationRequest"))
    response = _cds_client().post(
        "/cds-services/ldncare-order-select", json=_cds_request(record, draft)
    )
    assert response.status_code == 412, response.text
