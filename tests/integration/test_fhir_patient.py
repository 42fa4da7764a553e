"""Reading patients from real FHIR R4 Bundles: Synthea and the official FHIR examples."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ldncare.errors import InvalidInput
from ldncare.evidence.vocabulary import load_vocabulary
from ldncare.fhir import patient_from_bundle
from tests.shared_data import CDC_EXAMPLES, R4_EXAMPLES, SYNTHEA, SYNTHEA_PATIENTS

INDEX = {row["file"]: row for row in json.loads((SYNTHEA / "_INDEX.json").read_text())}
BUNDLES = sorted(
    p.name
    for p in SYNTHEA.glob("*.json")
    if not p.name.startswith(("_", "practitionerInformation", "hospitalInformation"))
)


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _bundle(*resources: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"resource": r} for r in resources]}


PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980-03-14"}


def test_all_synthea_bundles_are_present() -> None:
    assert len(BUNDLES) == SYNTHEA_PATIENTS


@pytest.mark.parametrize("name", BUNDLES)
def test_synthea_bundle_parses_and_matches_index(name: str) -> None:
    bundle = _load(SYNTHEA / name)
    row = INDEX[name]
    patient = patient_from_bundle(bundle)
    assert patient.id == row["patient_id"]
    assert patient.sex == row["gender"]
    assert patient.birth_date == date.fromisoformat(row["birthDate"])
    assert len(patient.medications) == row["n_MedicationRequest"]
    assert len(patient.conditions) == row["n_Condition"]
    vocab = load_vocabulary()
    opioids = {m.name for m in patient.medications if "opioid" in vocab.medications.classify(m)}
    assert set(row["features"].get("opioid", [])) <= opioids
    # Synthea's opioid orders in this vintage are all stopped: history, not current use.
    assert all(not m.is_active(date(2026, 1, 1)) for m in patient.medications
               if "opioid" in vocab.medications.classify(m) and m.status == "stopped")  # fmt: skip


def test_synthea_labs_weight_and_height_are_read() -> None:
    name = next(n for n in BUNDLES if n.startswith("Dirk_Kuhlman"))
    patient = patient_from_bundle(_load(SYNTHEA / name))
    assert patient.weight_kg is not None and 20 < patient.weight_kg < 250
    assert patient.height_cm is not None and 100 < patient.height_cm < 230
    egfr = patient.latest_lab("egfr")
    creat = patient.latest_lab("creatinine")
    assert egfr is not None and egfr.loinc == "33914-3" and egfr.value is not None
    assert creat is not None and creat.unit == "mg/dL"


def _with_patient(path: Path, extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return _bundle(copy.deepcopy(PATIENT), _load(path), *(extra or []))


@pytest.mark.parametrize(
    "path",
    [
        R4_EXAMPLES / "MedicationRequest-medrx0308.json",  # "Vicodin 5/500 Oral Tablet"
        R4_EXAMPLES / "MedicationRequest-medrx0333.json",  # contained Medication: oxycodone
        R4_EXAMPLES / "MedicationRequest-medrx0301.json",  # contained Medication: oxycodone
        R4_EXAMPLES / "MedicationRequest-medrx0327.json",  # fentanyl 25 mcg/hour patch
    ],
)
def test_official_fhir_medication_examples_are_recognised_as_opioids(path: Path) -> None:
    patient = patient_from_bundle(_with_patient(path))
    (medication,) = patient.medications
    assert "opioid" in load_vocabulary().medications.classify(medication)


def test_fentanyl_patch_example_is_long_acting() -> None:
    patient = patient_from_bundle(_with_patient(R4_EXAMPLES / "MedicationRequest-medrx0327.json"))
    classes = load_vocabulary().medications.classify(patient.medications[0])
    assert {"opioid", "opioid_long_acting"} <= classes


@pytest.mark.parametrize(
    ("request_file", "medication_file", "expected"),
    [
        ("MedicationRequest-oxycodone.json", "Medication-oxycodone.json", "opioid"),
        ("MedicationRequest-fentanyl.json", "Medication-fentanyl.json", "opioid"),
        ("MedicationRequest-opioid.json", "Medication-opioid.json", "tramadol"),
        ("MedicationRequest-methadone.json", "Medication-methadone.json", "methadone"),
        ("MedicationRequest-buprenorphine.json", "Medication-buprenorphine.json", "buprenorphine"),
        (
            "MedicationRequest-benzodiazepine.json",
            "Medication-benzodiazepine.json",
            "benzodiazepine",
        ),
    ],
)
def test_cdc_examples_resolve_medication_references(
    request_file: str, medication_file: str, expected: str
) -> None:
    patient_res = _load(CDC_EXAMPLES / "Patient-opioid-review-indicated.json")
    bundle = _bundle(
        patient_res, _load(CDC_EXAMPLES / request_file), _load(CDC_EXAMPLES / medication_file)
    )
    patient = patient_from_bundle(bundle)
    (medication,) = patient.medications
    assert expected in load_vocabulary().medications.classify(medication)
    assert medication.end == date(2025, 8, 22)  # dispenseRequest.validityPeriod.end


def test_searchset_bundle_example_resolves_medication_by_full_url() -> None:
    bundle = _load(R4_EXAMPLES / "Bundle-bundle-example.json")
    bundle["entry"].append({"resource": copy.deepcopy(PATIENT)})
    patient = patient_from_bundle(bundle)
    assert len(patient.medications) == 1
    # The example's Medication has no code: it is found, and said to have no code.
    assert patient.medications[0].name == "medication Medication/example without code"


# --- active vs ended --------------------------------------------------------------------------


def _request(status: str, end: str | None = None, mid: str = "mr1") -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": mid,
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2024-01-10",
        "medicationCodeableConcept": {"text": "Oxycodone 5 mg tablet"},
    }
    if end:
        res["dispenseRequest"] = {"validityPeriod": {"start": "2024-01-10", "end": end}}
    return res


@pytest.mark.parametrize("status", ["completed", "stopped", "cancelled", "entered-in-error"])
def test_completed_or_stopped_opioid_request_is_history_not_active(status: str) -> None:
    patient = patient_from_bundle(_bundle(PATIENT, _request(status)))
    assert patient.active_medications(date(2024, 2, 1)) == ()


def test_active_request_with_past_validity_end_is_not_active() -> None:
    patient = patient_from_bundle(_bundle(PATIENT, _request("active", end="2024-03-01")))
    assert patient.medications[0].end == date(2024, 3, 1)
    assert patient.active_medications(date(2024, 2, 1)) != ()
    assert patient.active_medications(date(2024, 6, 1)) == ()


def test_active_request_without_end_is_active() -> None:
    patient = patient_from_bundle(_bundle(PATIENT, _request("active")))
    assert len(patient.active_medications(date(2025, 1, 1))) == 1


def test_medication_statement_effective_period_gives_start_and_end() -> None:
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ms1",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"coding": [{"display": "Tramadol 50 mg"}]},
        "effectivePeriod": {"start": "2024-01-01", "end": "2024-01-20T10:00:00Z"},
    }
    patient = patient_from_bundle(_bundle(PATIENT, statement))
    med = patient.medications[0]
    assert (med.start, med.end) == (date(2024, 1, 1), date(2024, 1, 20))


def test_pregnancy_status_observation_and_labs_with_reference_range() -> None:
    preg = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
        "effectiveDateTime": "2025-05-01",
        "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA15173-0"}]},
    }
    alt = {
        "resourceType": "Observation",
        "id": "o2",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1742-6"}]},
        "effectiveDateTime": "2025-05-01",
        "valueQuantity": {"value": 120, "unit": "U/L"},
        "referenceRange": [{"high": {"value": 40, "unit": "U/L"}}],
    }
    patient = patient_from_bundle(_bundle(PATIENT, preg, alt))
    assert patient.pregnant is True
    lab = patient.latest_lab("alt")
    assert lab is not None and lab.value == 120 and lab.upper_limit == 40


def test_condition_clinical_status_and_abatement_are_read() -> None:
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "clinicalStatus": {"coding": [{"code": "resolved"}]},
        "code": {"text": "Opioid dependence"},
        "onsetDateTime": "2010-01-01",
        "abatementDateTime": "2015-01-01",
    }
    patient = patient_from_bundle(_bundle(PATIENT, condition))
    (c,) = patient.conditions
    assert c.clinical_status == "resolved" and c.abatement == date(2015, 1, 1)
    assert not c.is_active(date(2020, 1, 1))


# --- several patients and invalid input -------------------------------------------------------


def test_bundle_with_several_patients_needs_a_patient_id() -> None:
    other = {**PATIENT, "id": "p2"}
    bundle = _bundle(PATIENT, other, _request("active"))
    with pytest.raises(InvalidInput, match="patient_id"):
        patient_from_bundle(bundle)
    chosen = patient_from_bundle(bundle, patient_id="p2")
    assert chosen.id == "p2" and chosen.medications == ()
    assert len(patient_from_bundle(bundle, patient_id="p1").medications) == 1


def test_official_transaction_example_with_several_patients_needs_patient_id() -> None:
    with pytest.raises(InvalidInput, match="Patient resources"):
        patient_from_bundle(_load(R4_EXAMPLES / "Bundle-bundle-transaction.json"))


@pytest.mark.parametrize(
    ("bundle", "message"),
    [
        ([], "expected a FHIR Bundle object"),
        ({"resourceType": "Patient", "id": "x"}, "expected resourceType 'Bundle'"),
        ({"resourceType": "Bundle", "entry": {}}, "Bundle.entry must be a list"),
        ({"resourceType": "Bundle", "entry": []}, "no Patient"),
        (_bundle({"resourceType": "Observation", "id": "o"}), "no Patient"),
    ],
)
def test_invalid_bundles_raise_invalid_input(bundle: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        patient_from_bundle(bundle)


def test_wrong_status_names_resource_and_field() -> None:
    with pytest.raises(InvalidInput) as err:
        patient_from_bundle(_bundle(PATIENT, _request("taking")))
    assert "MedicationRequest/mr1" in str(err.value)
    assert err.value.field == "entry[1].resource.status"


def test_wrong_date_type_names_resource_and_field() -> None:
    bad = _request("active")
    bad["authoredOn"] = 20240110
    with pytest.raises(InvalidInput, match=r"MedicationRequest/mr1: authoredOn must be a date"):
        patient_from_bundle(_bundle(PATIENT, bad))


def test_patient_with_bad_gender_is_refused() -> None:
    with pytest.raises(InvalidInput, match="Patient/p1: gender"):
        patient_from_bundle(_bundle({**PATIENT, "gender": "F"}))
