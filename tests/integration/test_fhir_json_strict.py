"""Issue #19: NaN / Infinity in a FHIR Bundle and a Bundle nested ~1,000 levels deep are bad
input (exit 2, one line naming the problem) in ``plan`` and ``import``, as in the NDJSON
importer and CDS Hooks, not an "eligible" plan or a RecursionError traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ldncare.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _bundle_text(egfr: str) -> str:
    """A woman with pudendal neuralgia whose eGFR is the JSON text ``egfr`` (kept verbatim, so
    NaN and Infinity reach the reader as an EHR would send them)."""
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "pn-kidney",
                    "gender": "female",
                    "birthDate": "1968-05-02",
                }
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "egfr-1",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "33914-3"}]},
                    "subject": {"reference": "Patient/pn-kidney"},
                    "effectiveDateTime": "2026-11-01",
                    "valueQuantity": {
                        "value": "EGFR",
                        "unit": "mL/min/1.73m2",
                        "system": "http://unitsofmeasure.org",
                        "code": "mL/min/{1.73_m2}",
                    },
                }
            },
        ],
    }
    return json.dumps(bundle).replace('"EGFR"', egfr)


def test_bundle_with_a_low_egfr_gets_the_kidney_warning(tmp_path: Path) -> None:
    """The control case: the same Bundle with a real number is read and warned about."""
    path = tmp_path / "bundle.json"
    path.write_text(_bundle_text("42"))
    code, out, err = run("plan", str(path), "--as-of", "2026-11-25", "-f", "json")
    assert code == 0, err
    assert re.search(r"eGFR 42 [^\"]*: kidney function is reduced", out)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_bundle_with_an_egfr_of_nan_is_refused_by_plan(tmp_path: Path, constant: str) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(_bundle_text(constant))
    code, out, err = run("plan", str(path), "--as-of", "2026-11-25")
    assert code == 2
    assert out == ""
    (line,) = err.strip().splitlines()
    assert f"{constant.lstrip('-')} is not a number in JSON or FHIR" in line


@pytest.mark.parametrize("constant", ["NaN", "Infinity"])
def test_bundle_with_an_egfr_of_nan_is_refused_by_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, constant: str
) -> None:
    monkeypatch.setenv("LDNCARE_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    path = tmp_path / "bundle.json"
    path.write_text(_bundle_text(constant))
    code, _, err = run("import", str(path))
    assert code == 2
    assert "is not a number in JSON or FHIR" in err
    assert "Traceback" not in err


def _nested(depth: int) -> str:
    """A 2 KB-ish Bundle whose Patient carries an extension nested ``depth`` lists deep."""
    return (
        '{"resourceType":"Bundle","type":"collection","entry":[{"resource":'
        '{"resourceType":"Patient","id":"p","extension":' + "[" * depth + "1" + "]" * depth + "}}]}"
    )


@pytest.mark.parametrize("command", ["plan", "import"])
def test_bundle_nested_a_thousand_levels_deep_is_bad_input_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.setenv("LDNCARE_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    path = tmp_path / "deep.json"
    path.write_text(_nested(1000))
    code, _, err = run(command, str(path))
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "nested too deeply" in line


def test_yaml_patient_file_with_an_egfr_of_nan_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "patient.yaml"
    path.write_text(
        "id: pn-yaml\nsex: female\nbirth_date: 1968-05-02\n"
        "conditions: [{name: Pudendal neuralgia}]\n"
        "labs: [{test: egfr, value: .nan, unit: mL/min/1.73m2, date: 2026-11-01}]\n"
    )
    code, _, err = run("plan", str(path), "--as-of", "2026-11-25")
    assert code == 2
    assert "must be a finite number" in err
