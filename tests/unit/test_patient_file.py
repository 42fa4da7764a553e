"""The patient-file format (YAML/JSON) and load_patient's dispatch to the FHIR reader."""

from __future__ import annotations

import json
from datetime import date
from importlib import resources
from pathlib import Path

import pytest

from ldncare.errors import InvalidInput
from ldncare.evidence.vocabulary import load_vocabulary
from ldncare.patient_file import load_patient, parse_patient_file

EXAMPLE = Path(str(resources.files("ldncare") / "examples" / "pn-example.yaml"))


def write(tmp_path: Path, text: str, name: str = "patient.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_example_is_a_46_year_old_woman_with_pn_and_no_opioids() -> None:
    patient = load_patient(EXAMPLE)
    vocab = load_vocabulary()
    assert patient.sex == "female"
    assert patient.age_on(date(2026, 11, 25)) == 46
    assert any("pudendal_neuralgia" in vocab.conditions.classify(c) for c in patient.conditions)
    assert not any("opioid" in vocab.medications.classify(m) for m in patient.medications)
    egfr = patient.latest_lab("egfr")
    assert egfr is not None and egfr.value is not None and egfr.value >= 90
    alt = patient.latest_lab("alt")
    assert alt is not None and alt.upper_limit is not None and alt.value is not None
    assert alt.value <= alt.upper_limit


def test_full_documented_example_parses() -> None:
    doc = (Path(__file__).parents[2] / "docs/patient-file.md").read_text(encoding="utf-8")
    block = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    patient = parse_patient_file(block)
    assert patient.id == "pn-example"
    assert patient.phenotypes == {"CYP2D6": "normal", "CYP2C19": "intermediate"}
    assert patient.planned_surgery == date(2026, 3, 2)
    tramadol = patient.medications[1]
    assert tramadol.status == "stopped" and tramadol.rxnorm_codes == ("835605",)
    assert not tramadol.is_active(date(2026, 1, 1))
    assert "ckd_stage_2" in load_vocabulary().conditions.classify(patient.conditions[2])


def test_json_patient_file_is_read(tmp_path: Path) -> None:
    data = {"id": "j1", "sex": "male", "medications": [{"name": "Percocet", "dose": "5 mg"}]}
    patient = load_patient(write(tmp_path, json.dumps(data), "p.json"))
    assert patient.medications[0].dose_text == "5 mg"
    assert "opioid" in load_vocabulary().medications.classify(patient.medications[0])


def test_fhir_bundle_file_goes_to_the_fhir_reader(tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Patient", "id": "f1", "gender": "female"}}],
    }
    patient = load_patient(write(tmp_path, json.dumps(bundle), "b.json"))
    assert patient.id == "f1" and patient.sex == "female"


def test_tramadol_with_past_end_date_is_history(tmp_path: Path) -> None:
    text = "id: t1\nmedications:\n  - {name: Tramadol 50 mg, start: 2024-01-01, end: 2024-02-01}\n"
    patient = load_patient(write(tmp_path, text))
    assert patient.active_medications(date(2024, 6, 1)) == ()
    assert len(patient.active_medications(date(2024, 1, 15))) == 1


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("name: no id\n", "id", "is required"),
        ("id: x\nbirthdate: 1980-01-01\n", "birthdate", "unknown field"),
        ("id: x\nsex: F\n", "sex", "not one of"),
        ("id: x\nbirth_date: 14/03/1980\n", "birth_date", "not a date"),
        ("id: x\nweight_kg: heavy\n", "weight_kg", "must be a number"),
        ("id: x\nweight_kg: 0\n", "weight_kg", "greater than 0"),
        ("id: x\nmedications:\n  - {name: LDN, dose: 50}\n", "medications[0].dose", "no unit"),
        ("id: x\nmedications:\n  - {name: LDN, dose: '4.5'}\n", "medications[0].dose", "no unit"),
        ("id: x\nmedications:\n  - {dose: 5 mg}\n", "medications[0].name", "is required"),
        (
            "id: x\nmedications:\n  - {name: A, status: taking}\n",
            "medications[0].status",
            "not one of",
        ),
        (
            "id: x\nmedications:\n  - {name: A, start: 2024-02-01, end: 2024-01-01}\n",
            "medications[0].end",
            "before start",
        ),
        (
            "id: x\nlabs:\n  - {test: sodium, value: 140, unit: mmol/L}\n",
            "labs[0].test",
            "not one of",
        ),
        ("id: x\nlabs:\n  - {test: egfr, value: 40}\n", "labs[0].unit", "is required"),
        ("id: x\nconditions: Pudendal neuralgia\n", "conditions", "must be a list"),
        ("id: x\nphenotypes: {CYP2D6: slow}\n", "phenotypes.CYP2D6", "not one of"),
        ("id: x\npregnant: maybe\n", "pregnant", "true or false"),
    ],
)
def test_invalid_fields_name_their_path(
    tmp_path: Path, text: str, field: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        load_patient(write(tmp_path, text))
    assert err.value.field == field
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        load_patient(tmp_path / "nope.yaml")


def test_malformed_yaml_is_invalid_input_with_line(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"not valid YAML \(line \d+"):
        load_patient(write(tmp_path, "id: x\nconditions: [a, b\n"))


def test_malformed_json_is_invalid_input_with_line(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"not valid JSON \(line 1"):
        load_patient(write(tmp_path, '{"id": "x",', "p.json"))


def test_a_single_fhir_resource_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="give a Bundle"):
        load_patient(write(tmp_path, '{"resourceType": "Patient", "id": "x"}', "p.json"))
