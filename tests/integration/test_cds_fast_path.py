"""What the CDS Hooks call path reads must give what the full reader gives.

Three speed-ups of the CDS Hooks path are checked here against the slower originals:

- ``CdsCalls`` (pure ASGI) answers service calls exactly as the FastAPI route does;
- ``patient_from_bundle(latest_labs_only=True)`` keeps only the lab the core would read;
- ``ClinicalContext.with_medications`` equals building the context again.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.cdshooks import CdsSettings, create_cds_app
from ldncare.cdshooks.fetch import resources_in
from ldncare.cdshooks.hooks import build_patient
from ldncare.cdshooks.service import CORS_HEADERS, build_router
from ldncare.core.context import ClassifiedMedication
from ldncare.core.patient import LabKind, MedicationUse, Patient
from ldncare.core.screening import screen
from ldncare.errors import InvalidInput
from ldncare.evidence.loader import load_evidence
from ldncare.evidence.vocabulary import load_vocabulary
from ldncare.fhir.patient_bundle import (
    LAB_LOINC,
    LOINC,
    medication_from_resource,
    patient_from_bundle,
)
from ldncare.fhir.tags import OUTPUT_TAG
from ldncare.planning import context_for
from tests.integration.test_cdshooks import (
    FHIR,
    ISSUER,
    REAL,
    SECRET,
    SERVICE_FOR_HOOK,
    FakeFhir,
    _load,
    egfr,
    fhir_patient,
    hook_request,
    med_request,
    on_ldn_and_oxycodone,
    pn_without_contraindications,
    token,
)
from tests.shared_data import synthea_bundles

TODAY = date.today()
KINDS: tuple[LabKind, ...] = get_args(LabKind)


# --------------------------------------------------------------------------- fast path = route


def _clients(fhir: FakeFhir | None = None, **overrides: Any) -> tuple[TestClient, TestClient]:
    """(the app with CdsCalls, an app with only the FastAPI router), same settings."""
    config = CdsSettings(
        trusted_issuers={ISSUER: {"hs256_secret": SECRET}},
        app_url="https://ldncare.test",
        **overrides,
    )
    transport = httpx.MockTransport(fhir or FakeFhir())
    plain = FastAPI()
    plain.include_router(build_router(config, transport=transport))
    return (
        TestClient(create_cds_app(config, transport=transport)),
        TestClient(plain),
    )


def _without_uuids(value: Any) -> Any:
    """Cards and suggestions get a new uuid on every call: compare everything else."""
    if isinstance(value, dict):
        return {k: _without_uuids(v) for k, v in value.items() if k != "uuid"}
    if isinstance(value, list):
        return [_without_uuids(v) for v in value]
    return value


def _comparable(response: httpx.Response) -> tuple[int, Any, dict[str, str | None]]:
    cors = {k: response.headers.get(k) for k in CORS_HEADERS}
    return response.status_code, _without_uuids(response.json()), cors


def _cases() -> list[tuple[str, str, bytes]]:
    cases: list[tuple[str, str, bytes]] = []
    for path in REAL:
        body, raw = _load(path)
        service = SERVICE_FOR_HOOK[body["hook"]] if body else "ldncare-order-sign"
        cases.append((path.name, service, raw.encode()))
    drafts = [med_request("naltrexone 1.5 mg", status="draft", rid="ldn-draft")]
    gabapentin = med_request(
        "gabapentin 600 mg oral capsule", rid="gaba", status="draft", dose_mg=600, per_day=3
    )
    made = {
        "ldn-and-oxycodone-view": hook_request("patient-view", resources=on_ldn_and_oxycodone()),
        "pn-consider-ldn": hook_request("patient-view", resources=pn_without_contraindications()),
        "naltrexone-ordered-on-opioid": hook_request(
            "order-select", resources=on_ldn_and_oxycodone(), drafts=drafts
        ),
        "gabapentin-above-band": hook_request(
            "order-sign", resources=[fhir_patient(), egfr(25)], drafts=[gabapentin]
        ),
    }
    for name, body in made.items():
        service = SERVICE_FOR_HOOK[body["hook"]]
        cases.append((name, service, json.dumps(body).encode()))
    cases += [
        ("not-json", "ldncare-patient-view", b"{not json"),
        ("no-context", "ldncare-patient-view", b'{"hook": "patient-view", "hookInstance": "x"}'),
        ("wrong-hook", "ldncare-order-sign", json.dumps(made["pn-consider-ldn"]).encode()),
        ("unknown-service", "no-such-service", b"{}"),
    ]
    return cases


CASES = _cases()


@pytest.mark.parametrize(("name", "service", "raw"), CASES, ids=[c[0] for c in CASES])
def test_fast_path_answers_as_the_route_does(name: str, service: str, raw: bytes) -> None:
    fast, plain = _clients(demo=True)
    url = f"/cds-services/{service}"
    headers = {"Content-Type": "application/json"}
    assert _comparable(fast.post(url, content=raw, headers=headers)) == _comparable(
        plain.post(url, content=raw, headers=headers)
    )


def test_fast_path_checks_the_jwt_as_the_route_does() -> None:
    fast, plain = _clients(fhir_timeout=1.0)
    service = "ldncare-patient-view"
    body = json.dumps(hook_request("patient-view", resources=on_ldn_and_oxycodone())).encode()
    url = f"/cds-services/{service}"
    json_type = {"Content-Type": "application/json"}
    for client in (fast, plain):
        missing = client.post(url, content=body, headers=json_type)
        assert missing.status_code == 401 and "error" in missing.json()
        wrong_aud = client.post(
            url,
            content=body,
            headers={
                "Authorization": f"Bearer {token(service, aud='https://elsewhere/x')}",
                **json_type,
            },
        )
        assert wrong_aud.status_code == 401
    answers = [
        _comparable(
            c.post(
                url,
                content=body,
                headers={"Authorization": f"Bearer {token(service)}", **json_type},
            )
        )
        for c in (fast, plain)
    ]
    assert answers[0] == answers[1] and answers[0][0] == 200 and answers[0][1]["cards"]


def test_fast_path_leaves_feedback_discovery_and_preflight_to_the_router() -> None:
    fast, _ = _clients(demo=True)
    assert fast.get("/cds-services").status_code == 200
    assert fast.options("/cds-services/ldncare-patient-view").status_code == 204
    feedback = fast.post(
        "/cds-services/ldncare-patient-view/feedback",
        json={
            "feedback": [
                {
                    "card": "0c1b2a39-5e4f-4d8a-9b7c-6a5d4e3f2a11",
                    "outcome": "accepted",
                    "outcomeTimestamp": "2026-12-04T13:00:00Z",
                }
            ]
        },
    )
    assert feedback.status_code == 200
    assert fast.get("/cds-services/ldncare-patient-view").status_code == 405


def test_fhir_server_fallback_is_used_by_the_fast_path() -> None:
    fake = FakeFhir(on_ldn_and_oxycodone())
    fast, _ = _clients(fake, demo=True, demo_fhir_servers=[FHIR])
    body = hook_request("patient-view", resources=None, with_prefetch=False)
    assert body["fhirServer"] == FHIR
    cards = fast.post("/cds-services/ldncare-patient-view", json=body).json()["cards"]
    assert any(c["indicator"] == "critical" for c in cards)
    assert any(r.url.path == "/r4/Patient/p1" for r in fake.requests)


# --------------------------------------------------------------------------- latest labs only


@cache
def _synthea(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def _same_for_decisions(full: Patient, lean: Patient) -> None:
    for kind in KINDS:
        assert lean.latest_lab(kind) == full.latest_lab(kind), kind
    assert lean.model_copy(update={"labs": ()}) == full.model_copy(update={"labs": ()})
    assert len({lab.kind for lab in lean.labs}) == len(lean.labs)
    evidence = load_evidence()
    assert screen(context_for(lean, TODAY), evidence) == screen(context_for(full, TODAY), evidence)


@pytest.mark.parametrize("path", synthea_bundles(), ids=lambda p: p.stem[:30])
def test_latest_labs_only_decides_as_the_full_reader(path: Path) -> None:
    bundle = _synthea(path)
    full = patient_from_bundle(bundle)
    lean = patient_from_bundle(bundle, latest_labs_only=True)
    _same_for_decisions(full, lean)


def _observation(i: int, code: str, day: date | None, value: float) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"o{i}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "valueQuantity": {"value": value, "unit": "x"},
    }
    if day is not None:
        obs["effectiveDateTime"] = day.isoformat()
    return obs


def _bundle_of_observations(rows: list[tuple[str, int | None, float]]) -> dict[str, Any]:
    """A patient's Bundle with one Observation a row: (code, days after 1 Jan 2026 or no
    date, value)."""
    start = date(2026, 1, 1)
    resources = [
        _observation(i, code, None if d is None else start + timedelta(days=d), value)
        for i, (code, d, value) in enumerate(rows)
    ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Patient", "id": "p"}}]
        + [{"resource": r} for r in resources],
    }


_LAB_CODES = sorted(LAB_LOINC)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_LAB_CODES),
            st.none() | st.integers(min_value=0, max_value=6),  # few days: many ties
            st.floats(min_value=0, max_value=500, allow_nan=False),
        ),
        max_size=25,
    )
)
def test_latest_labs_only_keeps_the_lab_latest_lab_picks(
    labs: list[tuple[str, int | None, float]],
) -> None:
    bundle = _bundle_of_observations(labs)
    full = patient_from_bundle(bundle)
    lean = patient_from_bundle(bundle, latest_labs_only=True)
    for kind in KINDS:
        assert lean.latest_lab(kind) == full.latest_lab(kind)


#: Observation codes ldncare reads nothing from (blood pressure, BMI, hemoglobin A1c): the lean
#: reader skips them unread.
_UNREAD_CODES = ["8480-6", "8462-4", "39156-5", "4548-4"]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_LAB_CODES + _UNREAD_CODES + ["29463-7", "8302-2"]),
            st.none() | st.integers(min_value=0, max_value=6),
            st.floats(min_value=1, max_value=500, allow_nan=False),
        ),
        max_size=25,
    )
)
def test_vital_signs_and_labs_ldncare_never_reads_change_no_decision(
    observations: list[tuple[str, int | None, float]],
) -> None:
    """A Synthea-like mix of vital signs and labs: skipping the unread ones leaves every lab,
    the weight and the height the full reader gives."""
    bundle = _bundle_of_observations(observations)
    full = patient_from_bundle(bundle)
    lean = patient_from_bundle(bundle, latest_labs_only=True)
    _same_for_decisions(full, lean)


def test_an_unread_vital_sign_with_a_malformed_coding_is_still_checked() -> None:
    """Only a plainly unread Observation is skipped; one whose coding is not an object is read
    the long way and refused as before."""
    odd = _observation(1, "8480-6", date(2026, 3, 1), 120)
    odd["code"]["coding"].append("8480-6")
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Patient", "id": "p"}}, {"resource": odd}],
    }
    with pytest.raises(InvalidInput):
        patient_from_bundle(bundle, latest_labs_only=True)


def test_malformed_older_lab_is_dropped_as_the_full_reader_drops_it() -> None:
    new = _observation(1, "33914-3", date(2026, 3, 1), 25)
    old = _observation(2, "33914-3", date(2025, 1, 1), 90)
    old["valueQuantity"]["value"] = "ninety"  # not a number
    patient = {"resourceType": "Patient", "id": "p1"}
    lean = build_patient("p1", [patient, old, new])
    latest = lean.latest_lab("egfr")
    assert latest is not None and latest.value == 25
    # The malformed one the latest: dropped, and the older valid one is read instead.
    newer_bad = _observation(3, "33914-3", date(2026, 6, 1), 10)
    newer_bad["valueQuantity"]["value"] = "ten"
    again = build_patient("p1", [patient, newer_bad, new])
    latest = again.latest_lab("egfr")
    assert latest is not None and latest.value == 25


# --------------------------------------------------------------------------- context + drafts


@pytest.mark.parametrize("path", synthea_bundles()[:8], ids=lambda p: p.stem[:30])
def test_context_with_medications_equals_a_new_context(path: Path) -> None:
    patient = patient_from_bundle(_synthea(path))
    vocab = load_vocabulary().medications
    drafts = [
        MedicationUse(name="Tramadol 50 MG Oral Tablet", status="active"),
        MedicationUse(name="naltrexone 1.5 mg", status="active"),
    ]
    ctx = context_for(patient, TODAY)
    added = ctx.with_medications(
        [ClassifiedMedication(m, vocab.classify(m), m.is_active(TODAY)) for m in drafts]
    )
    rebuilt = context_for(
        patient.model_copy(update={"medications": patient.medications + tuple(drafts)}), TODAY
    )
    assert added == rebuilt
    assert ctx.with_medications([]) is ctx


# --------------------------------------------------------------------------- draft orders


def _medication_resources() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in REAL:
        body, _ = _load(path)
        if body:
            context = body.get("context", {})
            for value in (*body.get("prefetch", {}).values(), context.get("draftOrders")):
                found += [
                    r
                    for r in resources_in(value)
                    if r.get("resourceType") in ("MedicationRequest", "MedicationStatement")
                ]
    for path in synthea_bundles()[:6]:
        found += [
            e["resource"]
            for e in _synthea(path)["entry"]
            if e["resource"]["resourceType"] in ("MedicationRequest", "MedicationStatement")
        ][:40]
    tagged = dict(found[0], meta={"tag": [OUTPUT_TAG]})
    broken = dict(found[0], status=7)
    return [*found, tagged, broken]


def _via_bundle(resource: dict[str, Any]) -> MedicationUse | str | None:
    stub = {"resourceType": "Patient", "id": "draft"}
    bundle = {"resourceType": "Bundle", "entry": [{"resource": stub}, {"resource": resource}]}
    try:
        meds = patient_from_bundle(bundle).medications
    except InvalidInput as exc:
        return f"error: {exc}"
    return meds[0] if meds else None


def test_a_medication_read_alone_equals_the_one_read_from_a_bundle() -> None:
    resources = _medication_resources()
    assert len(resources) > 100
    for resource in resources:
        try:
            alone: MedicationUse | str | None = medication_from_resource(resource)
        except InvalidInput as exc:
            alone = f"error: {exc}"
        assert alone == _via_bundle(resource), resource.get("id")
    assert medication_from_resource(resources[-2]) is None  # ldncare's own output
