"""The FHIR reader builds the core's patient without validating twice (``core.patient.trusted``,
issue #18 speed): what it builds must be exactly what the validated models would be."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from ldncare.core.patient import (
    Allergy,
    Coding,
    Condition,
    LabResult,
    MedicationUse,
    Patient,
    trusted,
)
from ldncare.errors import InvalidInput
from ldncare.fhir.patient_bundle import patient_from_bundle
from tests.shared_data import synthea_bundles

texts = st.text(min_size=1, max_size=12)
maybe_text = st.none() | texts
days = st.none() | st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))
codings = st.tuples(
    *[st.builds(Coding, system=maybe_text, code=texts, display=maybe_text)] * 2
) | st.just(())
numbers = st.none() | st.floats(allow_nan=False, allow_infinity=False, width=64)

conditions = st.fixed_dictionaries(
    {
        "display": texts,
        "codes": codings,
        "clinical_status": st.sampled_from(["active", "recurrence", "inactive", "resolved"]),
        "onset": days,
        "abatement": days,
    }
)
medications = st.fixed_dictionaries(
    {
        "name": texts,
        "codes": codings,
        "status": st.sampled_from(["active", "on-hold", "stopped", "draft", "unknown"]),
        "start": days,
        "end": days,
        "dose_text": maybe_text,
        "identified": st.booleans(),
        "record": maybe_text,
    }
)
labs = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["egfr", "creatinine", "alt", "ast", "other"]),
        "value": numbers,
        "value_text": maybe_text,
        "unit": maybe_text,
        "date": days,
        "loinc": maybe_text,
        "display": maybe_text,
        "upper_limit": numbers,
    }
)
allergies = st.fixed_dictionaries({"substance": texts, "codes": codings, "active": st.booleans()})


def same(cls: type[BaseModel], fields: dict[str, Any]) -> None:
    fields = {name: fields[name] for name in cls.model_fields}  # trusted() takes field order
    validated = cls(**fields)
    built = trusted(cls, dict(fields))
    assert built == validated
    assert hash(built) == hash(validated)
    assert repr(built) == repr(validated)
    assert built.model_dump() == validated.model_dump()
    assert built.model_fields_set == validated.model_fields_set
    assert built.model_copy(update={}) == validated.model_copy(update={})


@given(conditions)
def test_trusted_condition_is_the_validated_one(fields: dict[str, Any]) -> None:
    same(Condition, fields)


@given(medications)
def test_trusted_medication_is_the_validated_one(fields: dict[str, Any]) -> None:
    same(MedicationUse, fields)


@given(labs)
def test_trusted_lab_is_the_validated_one(fields: dict[str, Any]) -> None:
    same(LabResult, fields)


@given(allergies)
def test_trusted_allergy_is_the_validated_one(fields: dict[str, Any]) -> None:
    same(Allergy, fields)


@pytest.mark.parametrize("path", synthea_bundles(), ids=lambda p: p.name[:20])
def test_reader_builds_valid_patients_from_synthea_records(path: Any) -> None:
    """Every model the reader builds unvalidated passes validation unchanged: dumping the
    patient and validating the dump gives the same patient."""
    patient = patient_from_bundle(json.loads(path.read_text()))
    assert patient.conditions
    assert Patient.model_validate(patient.model_dump()) == patient


def test_implausible_weight_is_still_refused_by_the_model() -> None:
    """The bounds the reader does not check itself are the model's: 620 kg is refused."""
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "p1"}},
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "w",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                    "effectiveDateTime": "2026-01-01",
                    "valueQuantity": {"value": 620, "unit": "kg"},
                }
            },
        ],
    }
    with pytest.raises(InvalidInput, match="weight_kg"):
        patient_from_bundle(bundle)
