"""Small patient factory for the options and Nantes tests.

Patients are built directly as :class:`Patient`; medicines and conditions are classified by the
shipped vocabulary (``ldncare.evidence.vocabulary``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ldncare.core.context import ClinicalContext, build_context
from ldncare.core.options import Option, rank_options
from ldncare.core.patient import Condition, LabResult, MedicationUse, Patient
from ldncare.evidence.loader import data_root, load_evidence_from
from ldncare.evidence.models import Evidence
from ldncare.evidence.vocabulary import load_vocabulary

AS_OF = date(2026, 6, 1)


def classifiers() -> tuple[Any, Any]:
    """The shipped vocabulary: the options tests run against the real classification."""
    vocab = load_vocabulary()
    return vocab.medications, vocab.conditions


def evidence() -> Evidence:
    return load_evidence_from(data_root())


def patient(
    *,
    age: int | None = 50,
    sex: str = "female",
    weight_kg: float | None = 70,
    meds: tuple[str | tuple[str, str], ...] | list[str | tuple[str, str]] = (),
    stopped_meds: tuple[tuple[str, date], ...] = (),
    conditions: tuple[str, ...] | list[str] = (),
    creatinine: tuple[float, str] | None = None,
    egfr: float | None = None,
    phenotypes: dict[str, str] | None = None,
    pregnant: bool | None = None,
    breastfeeding: bool | None = None,
) -> Patient:
    labs: list[LabResult] = []
    if creatinine is not None:
        labs.append(
            LabResult(
                kind="creatinine", value=creatinine[0], unit=creatinine[1], date=date(2026, 5, 1)
            )
        )
    if egfr is not None:
        labs.append(LabResult(kind="egfr", value=egfr, unit="mL/min/1.73m2", date=date(2026, 5, 1)))
    medications = [
        MedicationUse(name=m) if isinstance(m, str) else MedicationUse(name=m[0], dose_text=m[1])
        for m in meds
    ]
    medications += [MedicationUse(name=m, status="stopped", end=end) for m, end in stopped_meds]
    return Patient(
        id="vignette",
        birth_date=None if age is None else date(AS_OF.year - age, 1, 1),
        sex=sex,  # type: ignore[arg-type]
        weight_kg=weight_kg,
        medications=tuple(medications),
        conditions=tuple(Condition(display=c) for c in conditions),
        labs=tuple(labs),
        phenotypes=phenotypes or {},
        pregnant=pregnant,
        breastfeeding=breastfeeding,
    )


def context(p: Patient) -> ClinicalContext:
    meds, conds = classifiers()
    return build_context(p, AS_OF, meds=meds, conditions=conds)


def options_for(p: Patient, ev: Evidence | None = None) -> dict[str, Option]:
    ranked = rank_options(context(p), ev or evidence(), start=AS_OF)
    return {o.drug: o for o in ranked}


def ranked_for(p: Patient, ev: Evidence | None = None) -> tuple[Option, ...]:
    return rank_options(context(p), ev or evidence(), start=AS_OF)


def rules_of(option: Option) -> set[str]:
    return {r.rule for r in option.reasons}


def fhir_bundle(
    *,
    age: int = 50,
    sex: str = "female",
    weight_kg: float | None = 70,
    meds: tuple[tuple[str, str | dict[str, Any] | None], ...] = (),
    conditions: tuple[str, ...] = (),
    creatinine_mg_dl: float | None = None,
) -> dict[str, Any]:
    """The same kind of patient as a FHIR R4 Bundle (Patient, MedicationStatement with a
    dosage text, Condition, Observation), read by the real FHIR reader."""
    ref = {"reference": "Patient/p1"}
    entries: list[dict[str, Any]] = [
        {
            "resource": {
                "resourceType": "Patient",
                "id": "p1",
                "gender": sex,
                "birthDate": date(AS_OF.year - age, 1, 1).isoformat(),
            }
        }
    ]
    for i, (name, dose_text) in enumerate(meds):
        statement: dict[str, Any] = {
            "resourceType": "MedicationStatement",
            "id": f"m{i}",
            "status": "active",
            "subject": ref,
            "medicationCodeableConcept": {"text": name},
        }
        if isinstance(dose_text, dict):  # a structured Dosage (doseAndRate, timing)
            statement["dosage"] = [dose_text]
        elif dose_text:
            statement["dosage"] = [{"text": dose_text}]
        entries.append({"resource": statement})
    for i, text in enumerate(conditions):
        entries.append(
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": f"c{i}",
                    "subject": ref,
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "code": {"text": text},
                }
            }
        )
    observations: list[tuple[str, float, str]] = []
    if weight_kg is not None:
        observations.append(("29463-7", weight_kg, "kg"))
    if creatinine_mg_dl is not None:
        observations.append(("2160-0", creatinine_mg_dl, "mg/dL"))
    for i, (loinc, value, unit) in enumerate(observations):
        entries.append(
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": f"o{i}",
                    "status": "final",
                    "subject": ref,
                    "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                    "effectiveDateTime": "2026-05-01",
                    "valueQuantity": {"value": value, "unit": unit},
                }
            }
        )
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def options_for_bundle(bundle: dict[str, Any], ev: Evidence | None = None) -> dict[str, Option]:
    from ldncare.fhir import patient_from_bundle

    return options_for(patient_from_bundle(bundle), ev)
