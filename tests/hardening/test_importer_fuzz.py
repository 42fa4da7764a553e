"""Fuzzed and mutated FHIR input never crashes the importer or writes part of a patient.

Each example starts from two small, valid patients. One of them is damaged (a field removed,
replaced by a value of the wrong type, an unknown code, a huge array, deep nesting; for NDJSON
also broken bytes, invalid UTF-8, a resourceType that is not a string). The other must always
import completely; the damaged one must be either imported with every one of its resources or
not at all, and whenever it is skipped the report must say which resource was bad.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from ldncare.importing import ImportReport, import_bundle, import_ndjson
from ldncare.store.db import open_engine
from ldncare.store.models import PatientRow

AS_OF = date(2026, 11, 25)
RESOURCE_TYPES = ("Patient", "Condition", "MedicationRequest", "Observation")


def patient_resources(pid: str) -> list[dict[str, Any]]:
    ref = {"reference": f"Patient/{pid}"}
    return [
        {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1980-03-14",
         "name": [{"family": "Fuzz", "given": [pid]}]},
        {"resourceType": "Condition", "id": f"{pid}-c1", "subject": ref,
         "clinicalStatus": {"coding": [{"code": "active"}]},
         "code": {"text": "Pudendal neuralgia"}},
        {"resourceType": "MedicationRequest", "id": f"{pid}-m1", "status": "active",
         "intent": "order", "subject": ref, "authoredOn": "2026-01-05",
         "medicationCodeableConcept": {
             "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                         "code": "1049621", "display": "Oxycodone Hydrochloride 5 MG Oral Tablet"}],
             "text": "Oxycodone Hydrochloride 5 MG Oral Tablet"}},
        {"resourceType": "MedicationRequest", "id": f"{pid}-m2", "status": "stopped",
         "intent": "order", "subject": ref, "authoredOn": "2025-01-05",
         "medicationCodeableConcept": {"text": "Metformin 500 MG Oral Tablet"}},
        {"resourceType": "Observation", "id": f"{pid}-o1", "status": "final", "subject": ref,
         "code": {"coding": [{"system": "http://loinc.org", "code": "33914-3"}]},
         "effectiveDateTime": "2026-10-01",
         "valueQuantity": {"value": 88, "unit": "mL/min/1.73m2"}},
    ]  # fmt: skip


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(["", "9999-99-99", "banana", "Patient/nobody", "http://unknown.example"]),
)
json_value = st.recursive(
    json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"nested": [value]}
    return value


mutation = st.one_of(
    st.tuples(st.just("delete"), st.none()),
    st.tuples(st.just("replace"), json_value),
    st.tuples(st.just("replace"), st.just(list(range(20_000)))),
    st.tuples(st.just("replace"), st.just(deep(200))),
    st.tuples(st.just("replace"), st.just({"coding": [{"system": "urn:x", "code": "zz-99"}]})),
)


def mutate(resources: list[dict[str, Any]], data: st.DataObject) -> list[dict[str, Any]]:
    damaged = copy.deepcopy(resources)
    target = data.draw(st.sampled_from(damaged), label="resource")
    keys = sorted(k for k in target if k != "resourceType")
    key = data.draw(st.sampled_from([*keys, "unknownElement"]), label="field")
    kind, value = data.draw(mutation, label="mutation")
    if kind == "delete":
        target.pop(key, None)
    else:
        target[key] = value
    return damaged


def fresh_engine(tmp_path: Path) -> Engine:
    return open_engine(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}")


def stored(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(PatientRow.external_id, PatientRow.snapshot)).all()
    return {external_id: snapshot for external_id, snapshot in rows}


def check(
    engine: Engine, report: ImportReport, damaged: list[dict[str, Any]], fuzz_meds: int = 2
) -> None:
    saved = stored(engine)
    # The untouched patient always arrives whole.
    assert "clean" in saved, report.errors
    assert len(saved["clean"]["medications"]) == 2
    assert len(saved["clean"]["conditions"]) == 1
    # The damaged one: all of it or none of it.
    if "fuzz" in saved:
        # Both prescriptions arrive, or the one that could not be attributed to the patient
        # (its subject damaged) is reported: a silently dropped opioid would make LDN look safe.
        if len(saved["fuzz"]["medications"]) < fuzz_meds:
            assert any(i.resource_type == "MedicationRequest" for i in report.errors), (
                "a prescription was dropped without a word"
            )
    elif any(r.get("resourceType") == "Patient" and r.get("id") == "fuzz" for r in damaged):
        assert report.errors, "a patient was skipped without saying why"
    for issue in report.errors:
        assert issue.message
        assert issue.resource_type


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_bundles_never_crash_or_write_a_partial_patient(
    tmp_path: Path, data: st.DataObject
) -> None:
    damaged = mutate(patient_resources("fuzz"), data)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in [*patient_resources("clean"), *damaged]],
    }
    engine = fresh_engine(tmp_path)
    report = import_bundle(engine, bundle, "fuzz", as_of=AS_OF)
    check(engine, report, damaged)
    engine.dispose()


def _write_ndjson(folder: Path, lines_by_type: dict[str, list[bytes]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for rtype, lines in lines_by_type.items():
        (folder / f"{rtype}.ndjson").write_bytes(b"\n".join(lines) + b"\n")


line_damage = st.sampled_from(
    ["truncate", "invalid_utf8", "not_json", "deep", "empty", "none", "type_list", "type_object"]
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), damage=line_damage)
def test_damaged_ndjson_lines_are_reported_and_the_rest_imports(
    tmp_path: Path, data: st.DataObject, damage: str
) -> None:
    damaged = mutate(patient_resources("fuzz"), data)
    by_type: dict[str, list[bytes]] = {t: [] for t in RESOURCE_TYPES}
    for r in [*patient_resources("clean"), *damaged]:
        rtype = r.get("resourceType")
        by_type[rtype if rtype in by_type else "Observation"].append(json.dumps(r).encode())
    # Damage one line of the fuzzed patient's medications at the byte level.
    fuzz_lines = [i for i, line in enumerate(by_type["MedicationRequest"]) if b"fuzz" in line]
    i = fuzz_lines[0]
    line = by_type["MedicationRequest"][i]
    by_type["MedicationRequest"][i] = {
        "truncate": line[: len(line) // 2],
        # Structurally valid JSON whose first string holds bytes that are not UTF-8.
        "invalid_utf8": line.replace(b'": "', b'": "\xff\xfe', 1),
        "not_json": b"this is not json",
        "deep": b"[" * 5000 + b"]" * 5000,
        "empty": b"",
        "none": line,
        # Valid JSON whose resourceType is not a string (not hashable, either).
        "type_list": line.replace(b'"MedicationRequest"', b'["MedicationRequest"]', 1),
        "type_object": line.replace(b'"MedicationRequest"', b'{"a": 1}', 1),
    }[damage]
    folder = tmp_path / uuid.uuid4().hex
    _write_ndjson(folder, by_type)
    engine = fresh_engine(tmp_path)
    report = import_ndjson(engine, folder, "fuzz", as_of=AS_OF, workdir=tmp_path)
    # An empty line is no resource at all: that prescription simply is not in the export.
    check(engine, report, damaged, fuzz_meds=1 if damage == "empty" else 2)
    if damage not in ("none", "empty"):
        assert report.errors, f"a {damage} line went unreported"
    engine.dispose()
