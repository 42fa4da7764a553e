"""The raw-line prefilter of Observation files (ldncare.fhir.prefilter, issue 20).

The prefilter may drop a line before ``orjson.loads`` only when the staging itself would drop
it after the parse: an Observation object carrying no code ldncare reads. These tests check
that guarantee on generated lines in many layouts, broken lines and misfiled resources, and on
whole imports where a patient's safety-relevant resource sits among thousands of vital signs.
"""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ldncare.fhir.ndjson import USED_OBSERVATION_CODES, NdjsonExport, _observation_used
from ldncare.fhir.prefilter import unused_observation
from ldncare.importing import import_ndjson
from ldncare.store.db import make_engine, migrate
from ldncare.store.population import pop_medication

AS_OF = date(2026, 1, 1)
LOINC = "http://loinc.org"
USED = sorted(USED_OBSERVATION_CODES)
OTHER = ["72514-3", "8867-4", "9279-1", "8480-6", "39156-5", "2160-01", "12160-0", "2160"]
EGFR = "33914-3"
assert EGFR in USED_OBSERVATION_CODES


def _staging_drops(line: bytes) -> bool:
    """What the staging loop decides after a full parse: True = dropped as unused."""
    try:
        res = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False  # reported as a broken line
    if type(res) is not dict or res.get("resourceType") != "Observation":
        return False
    return not _observation_used(res)


def _obs(codes: list[str], pid: str = "p1", rid: str = "o1", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": c, "display": "x"} for c in codes]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2025-06-01",
        "valueQuantity": {"value": 58, "unit": "mL/min/{1.73_m2}"},
    } | extra


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    """Observation-file lines: well-formed ones of many shapes, then possibly damaged."""
    codes = draw(st.lists(st.sampled_from(USED + OTHER), max_size=3))
    res: dict[str, Any] = _obs(codes)
    shape = draw(st.sampled_from(["plain", "type", "code", "coding", "extra", "dup"]))
    if shape == "type":
        res["resourceType"] = draw(st.sampled_from(["MedicationRequest", "Patient", "observation"]))
    elif shape == "code":
        res["code"] = draw(json_values)
    elif shape == "coding":
        res["code"] = {"coding": draw(json_values)}
    elif shape == "extra":
        res[draw(st.text(max_size=6))] = draw(json_values)
    text = json.dumps(res, ensure_ascii=draw(st.booleans()),
                      separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])))  # fmt: skip
    if shape == "dup":  # a second top-level resourceType: the last one counts, as in orjson
        other = draw(st.sampled_from(["MedicationRequest", "Observation"]))
        text = text[:-1] + f', "resourceType": "{other}"}}'
    if draw(st.booleans()):  # a code written with \\u escapes
        rnd = random.Random(draw(st.integers(0, 1000)))
        for code in codes:
            esc = "".join(f"\\u{ord(ch):04x}" if rnd.random() < 0.5 else ch for ch in code)
            text = text.replace(f'"{code}"', f'"{esc}"', 1)
    raw = text.encode()
    damage = draw(st.sampled_from(["none", "none", "cut", "flip", "insert"]))
    if raw and damage == "cut":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif raw and damage == "flip":
        i = draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([draw(st.integers(0, 255))]) + raw[i + 1 :]
    elif damage == "insert":
        i = draw(st.integers(0, len(raw)))
        raw = raw[:i] + draw(st.binary(min_size=1, max_size=4)) + raw[i:]
    return raw


@settings(max_examples=3000, deadline=None)
@given(lines())
def test_the_prefilter_drops_only_what_the_staging_would_drop_after_parsing(line: bytes) -> None:
    assert unused_observation is not None
    if unused_observation(line):
        assert _staging_drops(line), line


@pytest.mark.parametrize("code", USED)
def test_an_observation_with_any_code_ldncare_reads_is_never_prefiltered(code: str) -> None:
    assert unused_observation is not None
    line = orjson.dumps(_obs(["8867-4", code]))
    assert not unused_observation(line)
    escaped = line.replace(code.encode(), "".join(f"\\u{ord(c):04x}" for c in code).encode())
    assert escaped != line and not unused_observation(escaped)


def test_a_synthea_vital_sign_is_prefiltered_and_a_broken_one_is_not() -> None:
    assert unused_observation is not None
    line = orjson.dumps(_obs(["72514-3"]))
    assert unused_observation(line)
    assert not unused_observation(line[:-1])  # truncated: parsed, and reported
    assert not unused_observation(line.replace(b'"final"', b'"f\xc3\xa9"'))  # non-ASCII


def _export(folder: Path, observations: list[bytes], meds: list[dict[str, Any]]) -> Path:
    folder.mkdir()
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female",
               "birthDate": "1950-01-01"}  # fmt: skip
    (folder / "Patient.ndjson").write_bytes(orjson.dumps(patient) + b"\n")
    (folder / "Observation.ndjson").write_bytes(b"\n".join(observations) + b"\n")
    (folder / "MedicationRequest.ndjson").write_bytes(b"".join(orjson.dumps(m) + b"\n"
                                                             for m in meds))  # fmt: skip
    return folder


def _vitals(n: int) -> list[bytes]:
    return [orjson.dumps(_obs(["72514-3"], rid=f"v{i}")) for i in range(n)]


def _engine(tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'ldncare.db'}"
    migrate(url)
    return make_engine(url)


def test_ckd_patient_whose_egfr_of_28_hides_among_2000_vital_signs_is_screened_for_kidney_dosing(
    tmp_path: Path,
) -> None:
    egfr = _obs([EGFR], rid="egfr", valueQuantity={"value": 28, "unit": "mL/min/{1.73_m2}"})
    lines_ = [*_vitals(1000), orjson.dumps(egfr), *_vitals(1000)]
    folder = _export(tmp_path / "export", lines_, [])
    with NdjsonExport(folder) as export:
        stats = export.stage()
    assert stats.observations_dropped == 2000 and stats.resources == 1
    engine = _engine(tmp_path)
    report = import_ndjson(engine, folder, "test", as_of=AS_OF)
    assert report.patients_imported == 1 and report.observations == 1


def test_tramadol_order_misfiled_in_observation_ndjson_still_counts_as_an_opioid(
    tmp_path: Path,
) -> None:
    tramadol = {
        "resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"text": "tramadol 50 MG Oral Tablet"},
        "subject": {"reference": "Patient/p1"}, "authoredOn": "2025-12-01",
    }  # fmt: skip
    assert unused_observation is not None and not unused_observation(orjson.dumps(tramadol))
    folder = _export(tmp_path / "export", [*_vitals(50), orjson.dumps(tramadol)], [])
    engine = _engine(tmp_path)
    report = import_ndjson(engine, folder, "test", as_of=AS_OF)
    assert report.patients_imported == 1 and report.medications_total == 1
    with engine.connect() as conn:
        classes = set(conn.execute(select(pop_medication.c.name, pop_medication.c.drug_class)))
    assert ("tramadol 50 MG Oral Tablet", "opioid") in classes


def test_a_vital_sign_line_cut_in_half_still_keeps_its_patient_out(tmp_path: Path) -> None:
    broken = orjson.dumps(_obs(["72514-3"], rid="cut"))[:-12]  # after its subject
    folder = _export(tmp_path / "export", [*_vitals(20), broken, *_vitals(20)], [])
    report = import_ndjson(_engine(tmp_path), folder, "test", as_of=AS_OF)
    assert report.patients_imported == 0 and report.patients_skipped == 1
    assert any(e.where == "Observation.ndjson:21" for e in report.errors), report.errors
