"""FHIR R4 export of a plan: validates with fhir.resources R4B and with our own binding checks."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from ldncare.core.patient import Condition, MedicationUse, Patient
from ldncare.evidence.loader import load_evidence
from ldncare.fhir.export import PAIN_LOINC, plan_to_bundle, validate_bundle
from ldncare.planning import make_plan

AS_OF = date(2025, 3, 3)


@dataclass(frozen=True)
class Day:
    day: date
    pain_avg: int | None


def contract_for(patient: Patient) -> dict[str, Any]:
    return make_plan(patient, as_of=AS_OF).to_contract(load_evidence())


def pn_patient(**kw: Any) -> Patient:
    return Patient(
        id="pn-1",
        birth_date=date(1980, 5, 1),
        sex="female",
        conditions=(Condition(display="Pudendal neuralgia"),),
        **kw,
    )


def resources(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


@pytest.fixture(scope="module")
def eligible_bundle() -> dict[str, Any]:
    diary = [Day(AS_OF + timedelta(days=i), 7 - i // 3) for i in range(7)] + [Day(AS_OF, None)]
    return plan_to_bundle(contract_for(pn_patient()), patient_ref="Patient/pn-1", diary=diary)


def test_eligible_plan_bundle_validates_with_r4b_and_our_checks(
    eligible_bundle: dict[str, Any],
) -> None:
    assert validate_bundle(eligible_bundle, max_dose_mg=4.5) == []
    parsed = Bundle.model_validate(eligible_bundle)
    assert parsed.type == "collection"
    kinds = sorted({e["resource"]["resourceType"] for e in eligible_bundle["entry"]})
    # No warning or contraindication for this patient: info findings are not issues.
    assert kinds == ["CarePlan", "MedicationRequest", "Observation"]


def test_medication_request_carries_the_titration(eligible_bundle: dict[str, Any]) -> None:
    (medrx,) = resources(eligible_bundle, "MedicationRequest")
    coding = medrx["medicationCodeableConcept"]["coding"][0]
    assert (coding["code"], medrx["medicationCodeableConcept"]["text"]) == (
        "7243",
        "naltrexone (low dose, compounded)",
    )
    steps = medrx["dosageInstruction"]
    assert [s["sequence"] for s in steps] == list(range(1, len(steps) + 1))
    doses = [s["doseAndRate"][0]["doseQuantity"] for s in steps]
    assert all(d["system"] == "http://unitsofmeasure.org" and d["code"] == "mg" for d in doses)
    assert max(d["value"] for d in doses) <= 4.5
    assert doses[0]["value"] == 1.5 and doses[-1]["value"] == 4.5
    for before, after in itertools.pairwise(steps):
        end = date.fromisoformat(before["timing"]["repeat"]["boundsPeriod"]["end"])
        start = date.fromisoformat(after["timing"]["repeat"]["boundsPeriod"]["start"])
        assert start - end == timedelta(days=1)  # contiguous, no gap, no overlap
    assert all(s["timing"]["repeat"]["when"] == ["HS"] for s in steps)
    assert any("off-label" in n["text"].lower() for n in medrx["note"])


def test_careplan_links_the_order_care_items_and_review(eligible_bundle: dict[str, Any]) -> None:
    (careplan,) = resources(eligible_bundle, "CarePlan")
    assert (careplan["status"], careplan["intent"]) == ("active", "plan")
    urls = {e["fullUrl"] for e in eligible_bundle["entry"]}
    refs = [a["reference"]["reference"] for a in careplan["activity"] if "reference" in a]
    assert len(refs) == 1 and refs[0] in urls
    titles = " ".join(a["detail"]["code"]["text"] for a in careplan["activity"] if "detail" in a)
    for word in ("physical therapist", "nerve block", "review appointment"):
        assert word.lower() in titles.lower() or word.split()[0].lower() in titles.lower()


def test_pain_diary_becomes_loinc_observations(eligible_bundle: dict[str, Any]) -> None:
    observations = resources(eligible_bundle, "Observation")
    assert len(observations) == 7  # the day without a score is not exported
    assert {o["code"]["coding"][0]["code"] for o in observations} == {PAIN_LOINC}
    assert observations[0]["valueInteger"] == 7
    assert observations[0]["effectiveDateTime"] == AS_OF.isoformat()


def test_tramadol_makes_ldn_not_recommended_and_no_order_is_exported() -> None:
    patient = pn_patient(medications=(MedicationUse(name="tramadol 50 mg"),))
    bundle = plan_to_bundle(contract_for(patient), patient_ref="Patient/pn-1")
    assert validate_bundle(bundle) == []
    assert resources(bundle, "MedicationRequest") == []
    issues = resources(bundle, "DetectedIssue")
    drug = [i for i in issues if i["severity"] == "high"]
    assert drug and drug[0]["code"]["coding"][0]["code"] == "DRG"
    assert "tramadol" in drug[0]["detail"]
    (careplan,) = resources(bundle, "CarePlan")
    assert not any("reference" in a for a in careplan["activity"])


def test_pregnancy_gives_moderate_pregnancy_alert_and_order_stays() -> None:
    bundle = plan_to_bundle(contract_for(pn_patient(pregnant=True)), patient_ref="Patient/pn-1")
    assert validate_bundle(bundle, max_dose_mg=4.5) == []
    issues = [i for i in resources(bundle, "DetectedIssue") if i["code"]["text"] == "ldn.pregnancy"]
    assert issues and issues[0]["severity"] == "moderate"
    assert issues[0]["code"]["coding"][0]["code"] == "PREG"
    (medrx,) = resources(bundle, "MedicationRequest")
    assert issues[0]["implicated"][0]["reference"] in {e["fullUrl"] for e in bundle["entry"]}
    assert medrx["status"] == "active"


def test_export_is_idempotent(eligible_bundle: dict[str, Any]) -> None:
    again = plan_to_bundle(
        contract_for(pn_patient()),
        patient_ref="Patient/pn-1",
        diary=[Day(AS_OF + timedelta(days=i), 7 - i // 3) for i in range(7)],
    )
    assert [e["fullUrl"] for e in again["entry"]] == [
        e["fullUrl"] for e in eligible_bundle["entry"]
    ]


def test_validator_catches_what_r4b_models_do_not(eligible_bundle: dict[str, Any]) -> None:
    broken = copy.deepcopy(eligible_bundle)
    medrx = next(
        e["resource"]
        for e in broken["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
    )
    medrx["status"] = "bogus"
    steps = medrx["dosageInstruction"]
    steps[1]["sequence"] = 1
    bounds = steps[0]["timing"]["repeat"]["boundsPeriod"]
    bounds["end"], bounds["start"] = bounds["start"], bounds["end"]
    steps[-1]["doseAndRate"][0]["doseQuantity"]["value"] = 45
    problems = "\n".join(validate_bundle(broken, max_dose_mg=4.5))
    assert "'bogus' is not in the required value set" in problems
    assert "sequence" in problems
    assert "before start" in problems
    assert "above 4.5 mg" in problems


def test_validator_reports_r4b_structure_errors(eligible_bundle: dict[str, Any]) -> None:
    broken = copy.deepcopy(eligible_bundle)
    del next(e for e in broken["entry"] if e["resource"]["resourceType"] == "CarePlan")["resource"][
        "subject"
    ]
    assert any("subject" in p for p in validate_bundle(broken))
