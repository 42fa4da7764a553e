"""The one FHIR reference resolver (fhir/references.py) over the forms of the FHIR R4 page
"Resource References" (hl7.org/fhir/R4/references.html): contained, relative, versioned,
absolute, urn:uuid and conditional. A medication reference that resolves on one path and not on
another hides the drug (an opioid) from the checks."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldncare.fhir.references import (
    contained,
    index_resources,
    parse_reference,
    patient_key,
    resolve,
    resolve_identifier,
)

TRAMADOL: dict[str, Any] = {
    "resourceType": "Medication",
    "id": "tram",
    "identifier": [{"system": "http://example.org/formulary", "value": "T50"}],
    "code": {"text": "Tramadol 50 mg"},
}
PARACETAMOL: dict[str, Any] = {
    "resourceType": "Medication",
    "id": "para",
    "identifier": [{"system": "http://example.org/formulary", "value": "P1"}],
    "code": {"text": "Paracetamol 1 g"},
}
OXYCODONE: dict[str, Any] = {
    "resourceType": "Medication",
    "id": "oxy",
    "code": {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "1049621",
                "display": "oxycodone hydrochloride 5 MG Oral Tablet",
            }
        ]
    },
}
PATIENT: dict[str, Any] = {"resourceType": "Patient", "id": "034AB16"}
UUID = "urn:uuid:04121321-4af5-424c-a0e1-ed3aab1c349d"
INDEX = index_resources(
    [
        ("https://example.org/fhir/Medication/tram", TRAMADOL),
        (UUID, PARACETAMOL),
        (None, OXYCODONE),
        ("https://example.org/fhir/Patient/034AB16", PATIENT),
    ]
)


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Medication/tram", TRAMADOL),  # relative
        ("Medication/tram/_history/2", TRAMADOL),  # versioned: any stored version
        ("https://example.org/fhir/Medication/tram", TRAMADOL),  # absolute, the entry's fullUrl
        ("https://example.org/fhir/Medication/tram/_history/7", TRAMADOL),
        ("https://other.example.net/r4/Medication/tram", TRAMADOL),  # by Type/id
        (UUID, PARACETAMOL),  # urn:uuid: the entry's fullUrl
        ("Medication/para", PARACETAMOL),
        ("Medication?identifier=http://example.org/formulary|T50", TRAMADOL),  # conditional
        ("Medication?identifier=P1", PARACETAMOL),
        ("Medication?code=http://www.nlm.nih.gov/research/umls/rxnorm|1049621", OXYCODONE),
        ("Medication?code=1049621", OXYCODONE),  # token without system: any system
        ("Medication?_id=oxy", OXYCODONE),
        ("Medication?_id=oxy&code=http://www.nlm.nih.gov/research/umls/rxnorm|1049621", OXYCODONE),
    ],
)
def test_every_reference_form_names_the_medication(reference: str, expected: Any) -> None:
    assert resolve(reference, INDEX, resource_type="Medication") is expected


@pytest.mark.parametrize(
    "reference",
    [
        "Medication/unknown",
        "urn:uuid:00000000-0000-0000-0000-000000000000",
        "Medication?identifier=http://example.org/formulary|NOPE",
        "Medication?code=http://www.nlm.nih.gov/research/umls/rxnorm|10689",  # no such code
        "Medication?_id=nope",
        "Medication?name=oxycodone",  # a parameter not judged here
        "Medication?_id=oxy&name=oxycodone",
        "Patient/034AB16",  # a Patient is no Medication
        "#tram",  # not contained in any source given
        "",
        "not a reference",
    ],
)
def test_what_names_no_medication_resolves_to_nothing(reference: str) -> None:
    assert resolve(reference, INDEX, resource_type="Medication") is None


def test_a_conditional_reference_matching_two_resources_resolves_to_neither() -> None:
    twin = {**PARACETAMOL, "id": "para2"}
    index = index_resources([(None, PARACETAMOL), (None, twin)])
    assert resolve("Medication?identifier=P1", index) is None


def test_a_code_search_matching_two_medications_resolves_to_neither() -> None:
    twin = {**OXYCODONE, "id": "oxy2"}
    index = index_resources([(None, OXYCODONE), (None, twin)])
    assert resolve("Medication?code=1049621", index) is None
    assert resolve("Medication?code=http://other.example|1049621", INDEX) is None


def test_a_logical_reference_by_identifier_names_the_one_medication_carrying_it() -> None:
    ident = {"system": "http://example.org/formulary", "value": "T50"}
    assert resolve_identifier(ident, INDEX, "Medication") is TRAMADOL
    assert resolve_identifier({"value": "P1"}, INDEX, "Medication") is PARACETAMOL
    assert resolve_identifier({**ident, "value": "NOPE"}, INDEX, "Medication") is None
    assert resolve_identifier(ident, INDEX, "Patient") is None
    assert resolve_identifier({"system": "http://x"}, INDEX, "Medication") is None
    assert resolve_identifier("T50", INDEX, "Medication") is None


def test_contained_medication_is_found_in_the_referring_resource_only() -> None:
    order = {
        "resourceType": "MedicationRequest",
        "contained": [
            {"resourceType": "Organization", "id": "m1"},
            {"resourceType": "Medication", "id": "m1", "code": {"text": "Oxycodone 5 mg"}},
        ],
        "medicationReference": {"reference": "#m1"},
    }
    found = resolve("#m1", INDEX, source=order, resource_type="Medication")
    assert found is not None and found["code"]["text"] == "Oxycodone 5 mg"
    assert contained(order, "#m1", "Organization") == {"resourceType": "Organization", "id": "m1"}
    assert resolve("#m2", INDEX, source=order) is None
    assert contained({"contained": "not a list"}, "#m1") is None


@pytest.mark.parametrize(
    ("reference", "key"),
    [
        ("Patient/034AB16", "034AB16"),
        ("Patient/034AB16/_history/100", "034AB16"),
        ("http://example.org/fhir/Patient/034AB16", "034AB16"),
        ("https://example.org/fhir/Patient/034AB16/_history/2", "034AB16"),
        ("urn:uuid:04121321-4af5-424c-a0e1-ed3aab1c349d", "04121321-4af5-424c-a0e1-ed3aab1c349d"),
        ("Group/1", None),
        ("Patient?identifier=http://example.org/mrn|12345", None),
        ("urn:oid:1.2.3", None),
        ("#p1", None),
        ("", None),
    ],
)
def test_patient_key_of_each_subject_reference_form(reference: str, key: str | None) -> None:
    assert patient_key(reference) == key


def test_parsed_parts_of_an_absolute_versioned_reference() -> None:
    ref = parse_reference("https://example.org/fhir/Observation/bp-1/_history/3")
    assert ref is not None
    assert (ref.kind, ref.base, ref.resource_type, ref.id, ref.version) == (
        "absolute", "https://example.org/fhir", "Observation", "bp-1", "3",
    )  # fmt: skip


IDS = st.text(alphabet="ABCDEFabcdef0123456789.-", min_size=1, max_size=64)


@given(rid=IDS, version=st.none() | IDS, base=st.sampled_from(["", "https://x.org/fhir/"]))
def test_any_literal_medication_reference_resolves_to_the_resource_of_its_id(
    rid: str, version: str | None, base: str
) -> None:
    med = {"resourceType": "Medication", "id": rid}
    index = index_resources([(None, med)])
    ref = f"{base}Medication/{rid}" + (f"/_history/{version}" if version else "")
    assert resolve(ref, index, resource_type="Medication") is med
    assert patient_key(ref.replace("Medication", "Patient")) == rid


@pytest.mark.parametrize(
    "reference", ["Patient/p_1", "https://ehr.example.org/fhir/Patient/p_1/_history/2"]
)
def test_a_patient_id_outside_the_fhir_id_pattern_is_still_its_patient(reference: str) -> None:
    # Refusing it would drop her resources (an opioid among them) while she is imported.
    assert patient_key(reference) == "p_1"


# ----------------------------------------------------------- what the CDS Hooks service needs


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/034AB16", "034AB16"),
        ("Patient/034AB16/_history/3", "034AB16"),
        ("https://example.org/fhir/Patient/034AB16", "034AB16"),
        # A uuid names a Bundle entry, not a Patient id: it cannot show "another patient".
        ("urn:uuid:04121321-4af5-424c-a0e1-ed3aab1c349d", None),
        ("Patient?identifier=http://example.org/mrn|123", None),
        ("Group/7", None),
        ("#p1", None),
    ],
)
def test_literal_patient_id_reads_only_literal_patient_references(
    reference: str, expected: str | None
) -> None:
    from ldncare.fhir.references import literal_patient_id

    assert literal_patient_id(reference) == expected


@pytest.mark.parametrize(
    ("selection", "selected"),
    [
        ("MedicationRequest/rx1", True),
        ("MedicationRequest/rx1/_history/1", True),
        ("https://ehr.example.org/fhir/MedicationRequest/rx1", True),
        ("MedicationRequest/rx10", False),  # a longer id is another order
        ("ServiceRequest/rx1", False),
        ("rx1", False),
    ],
)
def test_an_order_select_selection_names_the_draft_by_any_literal_form(
    selection: str, selected: bool
) -> None:
    from ldncare.fhir.references import refers_to

    assert refers_to(selection, "MedicationRequest", "rx1") is selected


def test_full_urls_survive_taking_resources_out_of_nested_bundles() -> None:
    """A prefetch value is a Bundle (or a wrapper, or a list of them); once its resources are
    flattened, their fullUrls must still resolve an absolute or urn:uuid reference."""
    from ldncare.fhir.references import full_urls

    inner = {"resourceType": "Bundle", "entry": [{"fullUrl": UUID, "resource": PARACETAMOL}]}
    outer = {
        "resourceType": "Bundle",
        "entry": [
            {"fullUrl": "https://example.org/fhir/Medication/tram", "resource": TRAMADOL},
            {"resource": inner},
        ],
    }
    urls = full_urls([{"resource": outer}, None, "x"])
    index = index_resources((urls.get(id(r)), r) for r in (TRAMADOL, PARACETAMOL))
    assert resolve(UUID, index, resource_type="Medication") is PARACETAMOL
    assert resolve("https://example.org/fhir/Medication/tram/_history/9", index) is TRAMADOL
