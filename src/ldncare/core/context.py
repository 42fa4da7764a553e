"""A patient seen on one day, with every medication and condition classified once.

Rules ask questions such as "which active medications are opioids?"; answering them from this
precomputed view keeps every rule consistent and the whole screen fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from ldncare.core.patient import Condition, MedicationUse, Patient


class MedicationClassifier(Protocol):
    def classify(self, med: MedicationUse) -> frozenset[str]: ...

    def code_display(self, code: str) -> str | None: ...


class ConditionClassifier(Protocol):
    def classify(self, cond: Condition) -> frozenset[str]: ...


@dataclass(frozen=True)
class ClassifiedMedication:
    med: MedicationUse
    classes: frozenset[str]
    active: bool


@dataclass(frozen=True)
class ClassifiedCondition:
    condition: Condition
    classes: frozenset[str]
    active: bool


@dataclass(frozen=True)
class ClinicalContext:
    patient: Patient
    as_of: date
    medications: tuple[ClassifiedMedication, ...]
    conditions: tuple[ClassifiedCondition, ...]

    @property
    def age(self) -> int | None:
        return self.patient.age_on(self.as_of)

    def active_meds(self, cls: str) -> tuple[MedicationUse, ...]:
        """Active medications that belong to class ``cls``."""
        return tuple(m.med for m in self.medications if m.active and cls in m.classes)

    def past_meds(self, cls: str) -> tuple[MedicationUse, ...]:
        """Medications of class ``cls`` that are no longer active (history)."""
        return tuple(m.med for m in self.medications if not m.active and cls in m.classes)

    def active_conditions(self, cls: str) -> tuple[Condition, ...]:
        return tuple(c.condition for c in self.conditions if c.active and cls in c.classes)

    def ever_conditions(self, cls: str) -> tuple[Condition, ...]:
        return tuple(c.condition for c in self.conditions if cls in c.classes)

    def with_medications(self, added: Sequence[ClassifiedMedication]) -> ClinicalContext:
        """This context with more medications (e.g. draft orders), already classified.

        The same as building the context again for the patient with those medications, without
        classifying the others a second time.
        """
        if not added:
            return self
        patient = self.patient.model_copy(
            update={"medications": self.patient.medications + tuple(m.med for m in added)}
        )
        return ClinicalContext(
            patient=patient,
            as_of=self.as_of,
            medications=self.medications + tuple(added),
            conditions=self.conditions,
        )


def build_context(
    patient: Patient,
    as_of: date,
    meds: MedicationClassifier,
    conditions: ConditionClassifier,
) -> ClinicalContext:
    return ClinicalContext(
        patient=patient,
        as_of=as_of,
        medications=tuple(
            ClassifiedMedication(readable(m, meds), meds.classify(m), m.is_active(as_of))
            for m in patient.medications
        ),
        conditions=tuple(
            ClassifiedCondition(c, conditions.classify(c), c.is_active(as_of))
            for c in patient.conditions
        ),
    )


def readable(med: MedicationUse, meds: MedicationClassifier) -> MedicationUse:
    """``med`` named in words when its record names it by nothing but a code the vocabulary
    knows (``"7804"`` -> ``"oxycodone (RxNorm 7804)"``), or by a reference nobody resolved
    whose code it knows: every message then names the drug, not a bare code or a URL
    (pharmacist review round 2). Anything else is returned as it is."""
    if not med.unidentified:
        return med
    for code in med.rxnorm_codes:
        display = meds.code_display(code)
        if display:
            return med.model_copy(update={"name": f"{display} (RxNorm {code})"})
    return med
