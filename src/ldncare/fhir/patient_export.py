"""The core :class:`Patient` back out as FHIR R4 resources (the inverse of ``patient_bundle``).

Together with :func:`ldncare.fhir.export.plan_to_bundle` this makes one Bundle that carries both
what ldncare was told (Patient, Condition, MedicationRequest/Statement, Observation,
AllergyIntolerance) and what it proposed (CarePlan, LDN MedicationRequest, DetectedIssue), so
a receiving system can check the plan against its inputs, and ldncare can re-plan from it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ldncare.core.patient import Coding, LabResult, MedicationUse, Patient
from ldncare.fhir.export import PainDiaryDay, plan_to_bundle
from ldncare.fhir.patient_bundle import BODY_HEIGHT, BODY_WEIGHT, LOINC, PREGNANCY_STATUS

EXT = "https://ldncare.org/fhir/StructureDefinition"
CLINICAL_STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ALLERGY_STATUS = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
#: LOINC used when a lab came from a patient file without its own code (same table as import).
DEFAULT_LAB_LOINC: dict[str, str] = {
    "egfr": "33914-3",
    "creatinine": "2160-0",
    "alt": "1742-6",
    "ast": "1920-8",
    "bilirubin": "1975-2",
    "albumin": "1751-7",
    "inr": "6301-6",
    "hcg": "2106-3",
    "tsh": "3016-3",
}
#: Statuses a MedicationRequest can carry in R4; the others go in a MedicationStatement.
_REQUEST_STATUSES = frozenset(
    {"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft",
     "unknown"}
)  # fmt: skip


def _codings(codes: Iterable[Coding]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in {"system": c.system, "code": c.code, "display": c.display}.items() if v}
        for c in codes
    ]


def _concept(text: str, codes: Iterable[Coding]) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": text}
    codings = _codings(codes)
    if codings:
        concept["coding"] = codings
    return concept


def _patient(p: Patient) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Patient", "id": p.id, "gender": p.sex}
    if p.name:
        res["name"] = [{"text": p.name}]
    if p.birth_date:
        res["birthDate"] = p.birth_date.isoformat()
    ext: list[dict[str, Any]] = []
    if p.planned_surgery:
        ext.append({"url": f"{EXT}/planned-surgery", "valueDate": p.planned_surgery.isoformat()})
    if p.frail is not None:
        ext.append({"url": f"{EXT}/frail", "valueBoolean": p.frail})
    if p.breastfeeding is not None:
        ext.append({"url": f"{EXT}/breastfeeding", "valueBoolean": p.breastfeeding})
    for gene, phenotype in sorted(p.phenotypes.items()):
        ext.append(
            {
                "url": f"{EXT}/phenotype",
                "extension": [
                    {"url": "gene", "valueString": gene},
                    {"url": "phenotype", "valueString": phenotype},
                ],
            }
        )
    if ext:
        res["extension"] = ext
    return res


def _medication(m: MedicationUse, ref: str, i: int, pid: str) -> dict[str, Any]:
    concept = _concept(m.name, m.codes)
    if m.status in _REQUEST_STATUSES:
        res: dict[str, Any] = {
            "resourceType": "MedicationRequest",
            "id": f"{pid}-med-{i}",
            "status": m.status,
            "intent": "order",
            "subject": {"reference": ref},
            "medicationCodeableConcept": concept,
        }
        if m.start:
            res["authoredOn"] = m.start.isoformat()
        if m.start or m.end:
            period = {
                "start": m.start.isoformat() if m.start else None,
                "end": m.end.isoformat() if m.end else None,
            }
            res["dispenseRequest"] = {"validityPeriod": {k: v for k, v in period.items() if v}}
    else:
        res = {
            "resourceType": "MedicationStatement",
            "id": f"{pid}-med-{i}",
            "status": m.status,
            "subject": {"reference": ref},
            "medicationCodeableConcept": concept,
        }
        if m.start or m.end:
            period = {
                "start": m.start.isoformat() if m.start else None,
                "end": m.end.isoformat() if m.end else None,
            }
            res["effectivePeriod"] = {k: v for k, v in period.items() if v}
    if not m.identified:
        # The source named the drug by a reference nobody resolved: the export says so, so
        # that reading it back keeps rule ldn.medication.unidentified (an unknown drug).
        res["extension"] = [{"url": f"{EXT}/medication-unidentified", "valueBoolean": True}]
        if m.record:  # the source record it came from, for the finding's message
            res["extension"].append({"url": f"{EXT}/medication-record", "valueString": m.record})
    if m.dose_text:
        res["dosage" if res["resourceType"] == "MedicationStatement" else "dosageInstruction"] = [
            {"text": m.dose_text}
        ]
    return res


def _observation(
    pid: str,
    i: int,
    ref: str,
    code: str,
    display: str,
    value: dict[str, Any],
    when: str | None,
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"{pid}-obs-{i}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}], "text": display},
        "subject": {"reference": ref},
        **value,
    }
    if when:
        res["effectiveDateTime"] = when
    return res


def _lab(lab: LabResult, pid: str, i: int, ref: str) -> dict[str, Any] | None:
    code = lab.loinc or DEFAULT_LAB_LOINC.get(lab.kind)
    if code is None:
        return None
    value: dict[str, Any]
    if lab.value is not None:
        quantity: dict[str, Any] = {"value": lab.value}
        if lab.unit:
            quantity["unit"] = lab.unit
        value = {"valueQuantity": quantity}
    elif lab.value_text:
        value = {"valueString": lab.value_text}
    else:
        return None
    if lab.upper_limit is not None:
        value["referenceRange"] = [{"high": {"value": lab.upper_limit, "unit": lab.unit or ""}}]
    when = lab.date.isoformat() if lab.date else None
    return _observation(pid, i, ref, code, lab.display or lab.kind, value, when)


def patient_to_resources(p: Patient, ref: str | None = None) -> list[dict[str, Any]]:
    """FHIR R4 resources (plain dicts) for everything the core knows about ``p``.

    ``ref`` is how the resources point at the patient (default ``Patient/<id>``).
    """
    ref = ref or f"Patient/{p.id}"
    out: list[dict[str, Any]] = [_patient(p)]
    for i, c in enumerate(p.conditions):
        cond: dict[str, Any] = {
            "resourceType": "Condition",
            "id": f"{p.id}-cond-{i}",
            "clinicalStatus": {"coding": [{"system": CLINICAL_STATUS, "code": c.clinical_status}]},
            "code": _concept(c.display, c.codes),
            "subject": {"reference": ref},
        }
        if c.onset:
            cond["onsetDateTime"] = c.onset.isoformat()
        if c.abatement:
            cond["abatementDateTime"] = c.abatement.isoformat()
        out.append(cond)
    out += [_medication(m, ref, i, p.id) for i, m in enumerate(p.medications)]
    n = 0
    for lab in p.labs:
        obs = _lab(lab, p.id, n, ref)
        if obs is not None:
            out.append(obs)
            n += 1
    if p.weight_kg is not None:
        out.append(
            _observation(
                p.id,
                n,
                ref,
                BODY_WEIGHT,
                "Body weight",
                {"valueQuantity": {"value": p.weight_kg, "unit": "kg"}},
                None,
            )
        )
        n += 1
    if p.height_cm is not None:
        out.append(
            _observation(
                p.id,
                n,
                ref,
                BODY_HEIGHT,
                "Body height",
                {"valueQuantity": {"value": p.height_cm, "unit": "cm"}},
                None,
            )
        )
        n += 1
    if p.pregnant is not None:
        answer = "LA15173-0" if p.pregnant else "LA26683-5"
        out.append(
            _observation(
                p.id,
                n,
                ref,
                PREGNANCY_STATUS,
                "Pregnancy status",
                {"valueCodeableConcept": {"coding": [{"system": LOINC, "code": answer}]}},
                None,
            )
        )
    for i, a in enumerate(p.allergies):
        out.append(
            {
                "resourceType": "AllergyIntolerance",
                "id": f"{p.id}-allergy-{i}",
                "clinicalStatus": {
                    "coding": [
                        {"system": ALLERGY_STATUS, "code": "active" if a.active else "inactive"}
                    ]
                },
                "code": _concept(a.substance, a.codes),
                "patient": {"reference": ref},
            }
        )
    return out


def _urn(key: str) -> str:
    # Stable across exports of the same patient, so a receiver can de-duplicate.
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'ldncare:' + key)}"


def export_bundle(
    patient: Patient,
    contract: Mapping[str, Any],
    diary: Iterable[PainDiaryDay] = (),
    earlier: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """One collection Bundle: the patient's inputs, then ldncare's plan resources (tagged).

    ``patient`` is the latest assessment (what ``contract``, the latest plan, was made from);
    ``earlier`` plan contracts ride along in the CarePlan (see :func:`plan_to_bundle`)."""
    ref = _urn(f"Patient/{patient.id}")
    bundle = plan_to_bundle(contract, patient_ref=ref, diary=diary, earlier=earlier)
    inputs = [
        {
            "fullUrl": ref
            if r["resourceType"] == "Patient"
            else _urn(f"{r['resourceType']}/{r['id']}"),
            "resource": r,
        }
        for r in patient_to_resources(patient, ref)
    ]
    bundle["entry"] = inputs + list(bundle["entry"])
    return bundle


__all__ = ["export_bundle", "patient_to_resources"]
