"""Export -> validate with fhir.resources R4B -> import gives the same plan."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ldncare.cli import app
from ldncare.core.patient import Patient
from ldncare.evidence.loader import load_evidence
from ldncare.fhir.export import validate_bundle
from ldncare.fhir.patient_bundle import patient_from_bundle
from ldncare.fhir.patient_export import export_bundle
from ldncare.patient_file import load_patient
from ldncare.planning import make_plan
from tests.shared_data import synthea_bundles

AS_OF = date(2026, 11, 25)
VIGNETTES = sorted((Path(__file__).parents[1] / "vignettes" / "patients").glob("*.yaml"))


def contract(patient: Patient) -> dict[str, Any]:
    return make_plan(patient, as_of=AS_OF, start=date(2026, 12, 1)).to_contract(load_evidence())


def roundtrip(patient: Patient) -> None:
    before = contract(patient)
    bundle = export_bundle(patient, before)
    assert validate_bundle(bundle, max_dose_mg=4.5) == []
    again = patient_from_bundle(json.loads(json.dumps(bundle)))
    assert contract(again) == before


@pytest.mark.parametrize("path", VIGNETTES, ids=lambda p: p.stem)
def test_vignette_patients_round_trip_to_the_same_plan(path: Path) -> None:
    roundtrip(load_patient(path))


@pytest.mark.parametrize("path", synthea_bundles()[:6], ids=lambda p: p.name[:20])
def test_synthea_patients_round_trip_to_the_same_plan(path: Path) -> None:
    roundtrip(patient_from_bundle(json.loads(path.read_text())))


def test_plan_resources_are_tagged_and_ignored_on_reimport() -> None:
    patient = load_patient(VIGNETTES[0])
    bundle = export_bundle(patient, contract(patient))
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "CarePlan" in kinds and kinds[0] == "Patient"
    again = patient_from_bundle(bundle)
    # The LDN MedicationRequest in the export must not come back as "already on naltrexone".
    assert not any("naltrexone" in m.name.lower() for m in again.medications)


def test_cli_export_of_a_stored_patient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDNCARE_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    runner = CliRunner()
    example = Path(__file__).parents[2] / "src" / "ldncare" / "examples" / "pn-example.yaml"
    added = runner.invoke(app, ["patient", "add", str(example)])
    assert added.exit_code == 0, added.output
    out = tmp_path / "bundle.json"
    result = runner.invoke(app, ["export", "pn-example", "--fhir", "--out", str(out)])
    assert result.exit_code == 0, result.output
    bundle = json.loads(out.read_text())
    assert validate_bundle(bundle) == []
    missing = runner.invoke(app, ["export", "nobody", "--fhir"])
    assert missing.exit_code == 3
