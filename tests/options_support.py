"""Small patient factory for the options and Nantes tests.

Patients are built directly as :class:`Patient`; medicines and conditions are classified by the
shipped vocabulary (``ldncare.evidence.vocabulary``). If that module is missing, a tiny
name -> classes table stands in, so these tests do not depend on its arrival.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ldncare.core.context import ClinicalContext, build_context
from ldncare.core.options import Option, rank_options
from ldncare.core.patient import Condition, LabResult, MedicationUse, Patient
from ldncare.evidence.loader import data_root, load_evidence_from
from ldncare.evidence.models import Evidence

AS_OF = date(2026, 6, 1)

_FALLBACK_MEDS: dict[str, frozenset[str]] = {
    "phenelzine": frozenset({"maoi", "serotonergic"}),
    "selegiline": frozenset({"maoi", "serotonergic"}),
    "sertraline": frozenset({"ssri", "serotonergic"}),
    "citalopram": frozenset({"ssri", "serotonergic", "qt_prolonging"}),
    "sumatriptan": frozenset({"triptan", "serotonergic"}),
    "lithium": frozenset({"lithium", "serotonergic"}),
    "oxycodone": frozenset({"opioid", "cns_depressant"}),
    "lorazepam": frozenset({"benzodiazepine", "cns_depressant"}),
    "tramadol": frozenset({"opioid", "tramadol", "serotonergic", "cns_depressant"}),
    "amiodarone": frozenset({"qt_prolonging"}),
}
_FALLBACK_CONDITIONS: dict[str, frozenset[str]] = {
    "atrioventricular block": frozenset({"cardiac_conduction", "heart_disease"}),
    "depressive": frozenset({"depression"}),
    "anxiety": frozenset({"anxiety"}),
    "insomnia": frozenset({"insomnia"}),
    "cirrhosis": frozenset({"hepatic_impairment"}),
    "myocardial infarction": frozenset({"recent_mi", "heart_disease"}),
    "angle-closure glaucoma": frozenset({"angle_closure_glaucoma"}),
    "urinary retention": frozenset({"urinary_retention"}),
    "hypertension": frozenset({"hypertension"}),
    "obstructive pulmonary": frozenset({"respiratory_disease"}),
    "opioid use disorder": frozenset({"opioid_use_disorder", "substance_misuse"}),
    "pregnancy": frozenset({"pregnancy"}),
}


class _TableClassifier:
    def __init__(self, table: dict[str, frozenset[str]]) -> None:
        self.table = table

    def classify(self, item: Any) -> frozenset[str]:
        text = (getattr(item, "name", None) or getattr(item, "display", "")).lower()
        out: set[str] = set()
        for key, classes in self.table.items():
            if key in text:
                out |= classes
        return frozenset(out)


def classifiers() -> tuple[Any, Any]:
    try:
        from ldncare.evidence.vocabulary import load_vocabulary
    except ImportError:  # vocabulary not shipped yet
        return _TableClassifier(_FALLBACK_MEDS), _TableClassifier(_FALLBACK_CONDITIONS)
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
