"""A patient's current state: the facts every reader of a stored patient needs, derived once.

Screening (``ldncare screen``), the dashboard, ``export --fhir`` and the API all look at the same
few facts of a patient: which medicines are taken and of which class (an opioid, naltrexone,
LDN), at what dose, which conditions are active, the kidney function, a pregnancy. They are
derived here, by :func:`current_state`, from one :class:`~ldncare.core.patient.Patient` (the
latest assessment), whatever wrote it: the patient file (``ldncare patient add``), the web form,
the API, a FHIR import or a re-assessment. The store keeps the result beside the assessment
(``store/facts.py``), so no reader derives them a second way.

Pure: the vocabulary and the LDN dosing figures come from the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import NamedTuple

from ldncare.core.patient import (
    ACTIVE_CONDITION_STATUSES,
    ACTIVE_MEDICATION_STATUSES,
    MedicationUse,
    Patient,
    Sex,
)
from ldncare.core.renal import estimate_renal_function
from ldncare.core.vocabulary import Vocabulary
from ldncare.errors import InvalidInput


class MedicationFact(NamedTuple):
    """One (medication, class) pair; a medication of no known class has one with class None.

    Fields in the column order of ``pop_medication``.
    """

    seq: int
    name: str
    rxnorm: str | None
    status: str
    #: The status is one under which the medicine may be in the body.
    status_active: bool
    start: date | None
    end: date | None
    #: Milligrams per dose, from the dosage text or the product strength; None when unknown.
    dose_mg: float | None
    #: For the LDN class: start + the trial length; None otherwise.
    review_date: date | None
    drug_class: str | None

    def is_active(self, as_of: date) -> bool:
        """:meth:`MedicationUse.is_active` (and ``population.med_active``) on the fact."""
        if not self.status_active:
            return False
        if self.start is not None and self.start > as_of and self.status != "intended":
            return False
        return self.end is None or self.end >= as_of


class ConditionFact(NamedTuple):
    """One (condition, class) pair; only classified conditions are kept."""

    seq: int
    name: str
    code: str | None
    status_active: bool
    onset: date | None
    abatement: date | None
    condition_class: str

    def is_active(self, as_of: date) -> bool:
        return self.status_active and (self.abatement is None or self.abatement > as_of)


class LabFact(NamedTuple):
    kind: str
    value: float | None
    unit: str | None
    date: date | None


@dataclass(frozen=True)
class CurrentState:
    """The derived facts of one patient (see the module docstring)."""

    external_id: str
    name: str | None
    birth_date: date | None
    sex: Sex
    #: Latest recorded pregnancy status; None when never recorded.
    pregnant: bool | None
    #: Kidney function (Cockcroft-Gault, else eGFR) on the day the state was derived, mL/min.
    renal_ml_min: float | None
    renal_method: str | None
    renal_basis: str | None
    medications: tuple[MedicationFact, ...]
    conditions: tuple[ConditionFact, ...]
    labs: tuple[LabFact, ...]

    def active_medications(self, drug_class: str, as_of: date) -> tuple[MedicationFact, ...]:
        """Active medications of ``drug_class`` on ``as_of``."""
        return tuple(
            m for m in self.medications if m.drug_class == drug_class and m.is_active(as_of)
        )

    def on_ldn_medication(self, as_of: date) -> bool:
        """An active naltrexone at no more than the LDN maximum (or of unknown dose)."""
        return bool(self.active_medications("ldn", as_of))

    def ldn_dose_mg(self, as_of: date) -> float | None:
        """The highest known dose of an active LDN medication, mg; None when none is known."""
        doses = [m.dose_mg for m in self.active_medications("ldn", as_of) if m.dose_mg is not None]
        return max(doses) if doses else None


def _dose_of(med: MedicationUse) -> float | None:
    dose = med.stated_dose()
    return None if dose is None else float(dose.mg_value)


def current_state(
    patient: Patient,
    as_of: date,
    *,
    vocabulary: Vocabulary,
    ldn_max_mg: Decimal | float,
    review: timedelta,
    dose: Callable[[MedicationUse], float | None] = _dose_of,
) -> CurrentState:
    """The facts of ``patient`` (its latest assessment) on ``as_of``.

    ``ldn_max_mg`` and ``review`` (the trial length) come from the evidence base (ldn.yaml);
    ``dose`` reads milligrams per dose of a medication (the importer passes a memoised one).
    """
    limit = float(ldn_max_mg)
    # ``_make`` builds a fact straight from a tuple: this runs for every row of a bulk import.
    new_med, new_cond = MedicationFact._make, ConditionFact._make
    classify_med = vocabulary.medications.classify
    classify_cond = vocabulary.conditions.classify
    meds: list[MedicationFact] = []
    for seq, m in enumerate(patient.medications):
        classes = set(classify_med(m))
        mg = dose(m)
        review_date = None
        # LDN = naltrexone at no more than the LDN maximum; an unknown dose counts as LDN so that
        # its safety checks (opioids, pregnancy) are never silently skipped.
        if "naltrexone" in classes and (mg is None or mg <= limit):
            classes.add("ldn")
            review_date = m.start + review if m.start else None
        rx = m.rxnorm_codes
        active = m.status in ACTIVE_MEDICATION_STATUSES
        if not classes:
            meds.append(
                new_med((seq, m.name, rx[0] if rx else None, m.status, active, m.start, m.end,
                         mg, None, None))
            )  # fmt: skip
        for cls in sorted(classes):
            meds.append(
                new_med((seq, m.name, rx[0] if rx else None, m.status, active, m.start, m.end,
                         mg, review_date if cls == "ldn" else None, cls))
            )  # fmt: skip
    conds: list[ConditionFact] = []
    for seq, c in enumerate(patient.conditions):
        for cls in sorted(classify_cond(c)):
            conds.append(
                new_cond((seq, c.display, c.codes[0].code if c.codes else None,
                          c.clinical_status in ACTIVE_CONDITION_STATUSES, c.onset,
                          c.abatement, cls))
            )  # fmt: skip
    new_lab = LabFact._make
    labs = tuple(new_lab((lab.kind, lab.value, lab.unit, lab.date)) for lab in patient.labs)
    try:
        renal = estimate_renal_function(patient, as_of)
    except InvalidInput:
        renal = None
    return CurrentState(
        external_id=patient.id,
        name=patient.name,
        birth_date=patient.birth_date,
        sex=patient.sex,
        pregnant=patient.pregnant,
        renal_ml_min=renal.crcl_ml_min if renal else None,
        renal_method=renal.method if renal else None,
        renal_basis=renal.basis if renal else None,
        medications=tuple(meds),
        conditions=tuple(conds),
        labs=labs,
    )
