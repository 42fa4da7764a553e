"""An Observation code with leading or trailing whitespace (review L1: an eGFR coded
``" 33914-3"``). A FHIR ``code`` may not have any (FHIR R4 datatypes, code:
``[^\\s]+( [^\\s]+)*``, https://hl7.org/fhir/R4/datatypes.html#code): ldncare refuses the
patient and says why, on every path -- the Bundle reader, the NDJSON staging with and without
the msgspec prefilter -- and never drops the lab silently as "a code it does not read"."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.fhir import prefilter
from ldncare.fhir.ndjson import USED_OBSERVATION_CODES
from ldncare.importing import import_bundle, import_ndjson
from ldncare.store.db import open_engine

AS_OF = date(2026, 11, 15)
PADDED = [" 33914-3", "33914-3 ", "\t62238-1", "33914-3\n"]


def _patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1950-03-01"}


def _egfr(pid: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"egfr-{pid}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2026-10-01",
        "valueQuantity": {"value": 24, "unit": "mL/min/1.73m2"},
    }


def _ndjson_import(tmp_path: Path, code: str) -> Any:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "Patient.ndjson").write_text(json.dumps(_patient("ckd4")) + "\n")
    (folder / "Observation.ndjson").write_text(json.dumps(_egfr("ckd4", code)) + "\n")
    engine = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        return import_ndjson(engine, folder, "test", as_of=AS_OF, workdir=tmp_path)
    finally:
        engine.dispose()


def _says_why(report: Any, code: str) -> bool:
    return any(
        repr(code) in e.message and "whitespace" in e.message and e.patient_id == "ckd4"
        for e in report.errors
    )


@pytest.mark.parametrize("code", PADDED)
@pytest.mark.parametrize("with_prefilter", [True, False], ids=["prefilter", "no-prefilter"])
def test_stage_4_ckd_egfr_with_a_padded_loinc_code_refuses_the_patient_aloud_from_ndjson(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str, with_prefilter: bool
) -> None:
    """eGFR 24 coded with whitespace: imported without it, the record would look like normal
    kidney function; the patient is refused and the message names the code."""
    if with_prefilter:
        assert prefilter.unused_observation is not None, "msgspec is a locked dependency"
    else:
        monkeypatch.setattr(prefilter, "unused_observation", None)
    report = _ndjson_import(tmp_path, code)
    assert report.patients_skipped == 1 and report.patients_read == 0
    assert _says_why(report, code)


@pytest.mark.parametrize("code", PADDED)
def test_stage_4_ckd_egfr_with_a_padded_loinc_code_refuses_the_patient_aloud_from_a_bundle(
    tmp_path: Path, code: str
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": _patient("ckd4")}, {"resource": _egfr("ckd4", code)}],
    }
    engine = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        report = import_bundle(engine, bundle, "test", as_of=AS_OF)
    finally:
        engine.dispose()
    assert report.patients_skipped == 1 and _says_why(report, code)


def test_an_unpadded_egfr_still_imports(tmp_path: Path) -> None:
    report = _ndjson_import(tmp_path, "33914-3")
    assert report.errors == [] and report.patients_read == 1 and report.observations == 1


_SPACE = st.text(alphabet=" \t\r\n\u00a0\u2003", min_size=1, max_size=3)


@settings(max_examples=200, deadline=None)
@given(
    code=st.sampled_from(sorted(USED_OBSERVATION_CODES)),
    before=st.one_of(st.just(""), _SPACE),
    after=st.one_of(st.just(""), _SPACE),
)
def test_the_prefilter_never_drops_a_used_code_whatever_whitespace_surrounds_it(
    code: str, before: str, after: str
) -> None:
    """Safety invariant: a line whose code trims to one ldncare reads is never dropped unread."""
    unused = prefilter.unused_observation
    assert unused is not None
    line = json.dumps(_egfr("p", before + code + after)).encode()
    assert unused(line) is False
