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
    meds: tuple[str, ...] | list[str] = (),
    stopped_meds: tuple[tuple[str, date], ...] = (),
    conditions: tuple[str, ...] | list[str] = (),
    creatinine: tuple[float, str] | None = None,
    egfr: float | None = None,
    phenotypes: dict[str, str] | None = None,
    pregnant: bool | None = None,
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
    medications = [MedicationUse(name=m) for m in meds]
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
