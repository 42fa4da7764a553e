"""The CDS Hooks prefetch read once (issue #18): ``build_patient`` reads each resource straight
into the core's patient (``_read_prefetch``, the importer's per-resource rules) instead of
wrapping the prefetch into a Bundle and re-reading it (``_read_via_bundle``, kept for a prefetch
with anything unreadable in it). The two must give the same patient, for every prefetch."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.cdshooks.fetch import resources_in
from ldncare.cdshooks.hooks import (
    _read_via_bundle,
    _readable_patient,
    build_patient,
)
from ldncare.evidence.vocabulary import load_vocabulary
from ldncare.fhir.references import full_urls
from ldncare.planning import context_for
from tests.integration.test_cdshooks import condition, egfr, fhir_patient, med_request
from tests.shared_data import synthea_bundles

TODAY = date.today()
PID = "p1"


def _old_reading(pid: str | None, resources: list[dict[str, Any]], urls: dict[int, str]) -> Any:
    """What ``build_patient`` gave before: the prefetch wrapped into a Bundle and re-read."""
    chosen = next(
        (r for r in resources if r.get("resourceType") == "Patient" and r.get("id") == pid), None
    )
    return _readable_patient(_read_via_bundle(pid, chosen, resources, urls))


def _observation(code: str, value: Any, days_ago: int, system: str = "http://loinc.org") -> dict:
    return {
        "resourceType": "Observation",
        "id": f"o-{code}-{days_ago}",
        "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": (TODAY - timedelta(days=days_ago)).isoformat(),
        "valueQuantity": {"value": value, "unit": "x"},
    }


def _by_reference(text: str, n: int, *, legacy: bool) -> list[dict[str, Any]]:
    """An order naming its drug by a Medication in the prefetch (by ``urn:uuid`` fullUrl), in
    R4 or as a DSTU2 MedicationOrder."""
    url = f"urn:uuid:0000000{n}-aaaa-4bbb-8ccc-000000000000"
    order: dict[str, Any] = {
        "resourceType": "MedicationOrder" if legacy else "MedicationRequest",
        "id": f"ref-{n}",
        "status": "active",
        "medicationReference": {"reference": url},
        ("patient" if legacy else "subject"): {"reference": f"Patient/{PID}"},
        ("dateWritten" if legacy else "authoredOn"): TODAY.isoformat(),
    }
    if not legacy:
        order["intent"] = "order"
    medication = {"resourceType": "Medication", "id": f"med-{n}", "code": {"text": text}}
    return [
        {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": order}]},
        {"resourceType": "Bundle", "type": "searchset", "entry": [
            {"fullUrl": url, "resource": medication}]},
    ]  # fmt: skip


DRUGS = ["oxycodone hydrochloride 5 mg oral tablet", "naltrexone 4.5 mg capsule", "tramadol 50 mg",
         "amoxicillin 500 mg", "gabapentin 300 mg capsule"]  # fmt: skip
#: Read (eGFR, creatinine, weight, ALT) and never read (blood pressure, BMI, heart rate).
CODES = ["33914-3", "2160-0", "29463-7", "1742-6", "8480-6", "39156-5", "8867-4"]


@st.composite
def prefetches(draw: st.DrawFn) -> list[Any]:
    """A prefetch as an EHR may send it: search Bundles of the patient's conditions, orders and
    labs, now and then an order about another patient, a DSTU2 order, a drug named by a
    Medication reference, or something unreadable (a bad status, a lab value that is text)."""
    items: list[dict[str, Any]] = []
    gender = draw(st.sampled_from(["female", "male", "female", "nonsense"]))
    problems = ["Pudendal neuralgia", "Chronic kidney disease", "Opioid use disorder", "Asthma"]
    for text in draw(st.lists(st.sampled_from(problems), max_size=4)):
        items.append(condition(text))
    for i, drug in enumerate(draw(st.lists(st.sampled_from(DRUGS), max_size=5))):
        status = draw(st.sampled_from(["active", "active", "completed", "stopped", "bogus"]))
        pid = draw(st.sampled_from([PID, PID, PID, "someone-else"]))
        items.append(med_request(drug, rid=f"m{i}", status=status, pid=pid, dose_mg=300))
    for code, value, days in draw(
        st.lists(
            st.tuples(
                st.sampled_from(CODES),
                st.one_of(st.floats(1, 200), st.just("high")),
                st.integers(0, 900),
            ),
            max_size=12,
        )
    ):
        items.append(_observation(code, value, days))
    if draw(st.booleans()):
        items.append(egfr(draw(st.floats(5, 120)), pid="someone-else"))
    refs = [
        r
        for n, (text, legacy) in enumerate(
            draw(st.lists(st.tuples(st.sampled_from(DRUGS), st.booleans()), max_size=2))
        )
        for r in _by_reference(text, n, legacy=legacy)
    ]
    order = draw(st.permutations(items)) if items else []
    return [
        fhir_patient(gender=gender),
        {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in order]},
        *refs,
    ]


@settings(max_examples=200, deadline=None)
@given(prefetches())
def test_prefetch_read_once_gives_the_patient_the_bundle_reader_gives(prefetch: list[Any]) -> None:
    resources = [r for value in prefetch for r in resources_in(value)]
    urls = full_urls(prefetch)
    assert build_patient(PID, resources, urls) == _old_reading(PID, resources, urls)


@settings(max_examples=100, deadline=None)
@given(prefetches())
def test_an_active_opioid_in_the_prefetch_is_never_missed(prefetch: list[Any]) -> None:
    resources = [r for value in prefetch for r in resources_in(value)]
    urls = full_urls(prefetch)
    ctx = context_for(build_patient(PID, resources, urls), TODAY)
    vocab = load_vocabulary().medications
    opioid_orders = [
        m for m in _old_reading(PID, resources, urls).medications
        if m.is_active(TODAY) and "opioid" in vocab.classify(m)
    ]  # fmt: skip
    assert len(ctx.active_meds("opioid")) == len(opioid_orders)


def test_oxycodone_named_only_by_a_medication_reference_is_read_for_a_dstu2_order() -> None:
    prefetch = [fhir_patient(), *_by_reference(DRUGS[0], 1, legacy=True)]
    resources = [r for value in prefetch for r in resources_in(value)]
    patient = build_patient(PID, resources, full_urls(prefetch))
    assert [m.name for m in context_for(patient, TODAY).active_meds("opioid")] == [DRUGS[0]]


def test_oxycodone_of_another_patient_is_left_out_and_the_rest_kept() -> None:
    resources = [
        fhir_patient(),
        condition("Pudendal neuralgia"),
        med_request(DRUGS[0], pid="someone-else"),
        med_request(DRUGS[1]),
    ]
    patient = build_patient(PID, resources)
    assert [m.name for m in patient.medications] == [DRUGS[1]]
    assert [c.display for c in patient.conditions] == ["Pudendal neuralgia"]


def test_an_unreadable_order_is_dropped_and_the_opioid_beside_it_still_read() -> None:
    resources = [fhir_patient(), med_request("amoxicillin", status="bogus"), med_request(DRUGS[0])]
    patient = build_patient(PID, resources)
    assert [m.name for m in patient.medications] == [DRUGS[0]]


@pytest.mark.parametrize("path", synthea_bundles(), ids=lambda p: p.name.split("_")[0])
def test_synthea_record_as_a_prefetch_reads_as_the_bundle_reader_reads_it(path: Path) -> None:
    bundle = json.loads(path.read_text())
    resources = resources_in(bundle)
    pid = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    urls = full_urls(bundle)
    assert build_patient(pid, resources, urls) == _old_reading(pid, resources, urls)
