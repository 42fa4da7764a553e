"""The patient as the core sees it: what adapters (FHIR, patient file, web form) produce.

Only facts the rules need are kept. Dates are ``datetime.date``; "active" is decided here, once,
so that every rule agrees on what an ended prescription is (history, not a conflict).
"""

from __future__ import annotations

import datetime as _dt
from datetime import date
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ldncare.core.quantity import Dose, find_dose

Sex = Literal["female", "male", "other", "unknown"]

MedicationStatus = Literal[
    "active",
    "on-hold",
    "completed",
    "stopped",
    "cancelled",
    "entered-in-error",
    "draft",
    "intended",
    "not-taken",
    "unknown",
]
ConditionStatus = Literal["active", "recurrence", "relapse", "inactive", "remission", "resolved"]

#: Statuses under which a medication is (or may at any moment be) in the body. "on-hold" counts:
#: a paused opioid can be resumed without a new prescription, so LDN would still conflict.
ACTIVE_MEDICATION_STATUSES = frozenset({"active", "on-hold", "intended", "unknown"})
ACTIVE_CONDITION_STATUSES = frozenset({"active", "recurrence", "relapse"})

LabKind = Literal[
    "egfr",
    "creatinine",
    "alt",
    "ast",
    "bilirubin",
    "albumin",
    "inr",
    "hcg",
    "tsh",
    "other",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_M = TypeVar("_M", bound=_Model)
# The slots every pydantic model instance has (pydantic 2: ``BaseModel.__slots__``), set
# directly: what ``BaseModel.__init__`` leaves in them after validating, without validating.
_new = object.__new__
_set_dict: Any = BaseModel.__dict__["__dict__"].__set__
_set_fields_set: Any = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra: Any = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private: Any = BaseModel.__dict__["__pydantic_private__"].__set__


def trusted(cls: type[_M], fields: dict[str, Any]) -> _M:
    """``cls(**fields)`` without validation, for a reader that has already checked every value
    against the model's types (a FHIR reader on the hot path of a CDS Hooks call: a validated
    core model costs 2-4 µs, this well under 1).

    ``fields`` must give every field of ``cls``, in the model's field order (``repr`` follows
    it), each a value ``cls`` would accept as it is
    (a ``tuple`` for a tuple, a ``date`` for a date, a ``float`` for a float, one of the
    literals): then the result equals ``cls(**fields)`` (same ``==``, ``hash``, dump and copy).
    ``fields`` becomes the instance's own dict: the caller must not keep or change it.
    """
    model = _new(cls)
    _set_dict(model, fields)
    _set_fields_set(model, set(fields))
    _set_extra(model, None)
    _set_private(model, None)
    return model


class Coding(_Model):
    system: str | None = None
    code: str
    display: str | None = None


class Condition(_Model):
    """A problem-list entry or diagnosis."""

    display: str
    codes: tuple[Coding, ...] = ()
    clinical_status: ConditionStatus = "active"
    onset: date | None = None
    abatement: date | None = None

    def is_active(self, as_of: date) -> bool:
        if self.clinical_status not in ACTIVE_CONDITION_STATUSES:
            return False
        return self.abatement is None or self.abatement > as_of


class MedicationUse(_Model):
    """A prescription or a statement that the patient takes a medicine."""

    name: str
    codes: tuple[Coding, ...] = ()
    status: MedicationStatus = "active"
    start: date | None = None
    end: date | None = None
    dose_text: str | None = None
    #: False when the source names the medicine by a reference the reader could not resolve
    #: (a Medication not in the record, a conditional or identifier reference matching none) and
    #: gives no code or name: the drug is unknown, so it could be an opioid (rule
    #: ``ldn.medication.unidentified``).
    identified: bool = True
    #: Which source record gives the medicine and how it names the drug, for messages about
    #: an unidentified one (``MedicationRequest/r1 naming Medication/ghost``).
    record: str | None = None

    @property
    def rxnorm_codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.codes if is_rxnorm(c.system))

    @property
    def named_only_by_code(self) -> bool:
        """The record gives no words for the drug, only a code (``"1819"``): whoever reads it
        knows the drug only if they know the code."""
        name = self.name.strip()
        return name.isdigit() or any(name == c.code for c in self.codes)

    @property
    def unidentified(self) -> bool:
        """Nothing names the drug: a reference nobody resolved (``identified`` false), or a
        record naming it by a code alone. A code the vocabulary knows still classifies it (an
        opioid by its RxNorm ingredient); screening checks the class first (review round 2:
        buprenorphine coded only as RxNorm 1819 was read as a medicine of no concern)."""
        return not self.identified or self.named_only_by_code

    def stated_dose(self) -> Dose | None:
        """The dose from the dosage text, else the product strength in the name (mg)."""
        return find_dose(self.dose_text) or find_dose(self.name)

    def is_active(self, as_of: date) -> bool:
        if self.status not in ACTIVE_MEDICATION_STATUSES:
            return False
        if self.start is not None and self.start > as_of and self.status != "intended":
            return False
        return self.end is None or self.end >= as_of


#: Statuses of a record whose medicine was never taken (or the record is void).
NEVER_TAKEN_MEDICATION_STATUSES = frozenset({"cancelled", "entered-in-error", "draft", "not-taken"})


#: RxNorm's code system: its FHIR URI, and its HL7 OID as some EHRs still send it.
RXNORM_OID = "urn:oid:2.16.840.1.113883.6.88"


def is_rxnorm(system: str | None) -> bool:
    """A coding whose system is RxNorm (no system: a bare code, read as RxNorm as before)."""
    return system is None or "rxnorm" in system.lower() or system == RXNORM_OID


def unidentified_may_still_act(med: MedicationUse, as_of: date, interval_days: int) -> bool:
    """An unidentified medicine that may still rule out LDN: in use, or ended without a stop
    date, or stopped less than ``interval_days`` (the longest opioid-free interval, methadone
    or buprenorphine) before ``as_of``. It could have been such an opioid."""
    if not med.unidentified or med.status in NEVER_TAKEN_MEDICATION_STATUSES:
        return False
    if med.is_active(as_of) or med.end is None:
        return True
    return med.end + _dt.timedelta(days=interval_days) > as_of


class LabResult(_Model):
    """A laboratory value. ``kind`` is resolved by the adapter from LOINC or from the file."""

    kind: LabKind
    value: float | None = None
    value_text: str | None = None
    unit: str | None = None
    date: _dt.date | None = None
    loinc: str | None = None
    display: str | None = None
    #: Upper limit of normal, when the source gives it (used for "raised liver enzymes").
    upper_limit: float | None = None


class Allergy(_Model):
    substance: str
    codes: tuple[Coding, ...] = ()
    active: bool = True


#: The largest weight (kg) and height (cm) a Patient may have: above, a unit was misread.
MAX_WEIGHT_KG = 500
MAX_HEIGHT_CM = 300


class Patient(_Model):
    """Everything the clinical core may use about one person."""

    id: str
    name: str | None = None
    birth_date: date | None = None
    sex: Sex = "unknown"
    weight_kg: float | None = Field(default=None, gt=0, le=MAX_WEIGHT_KG)
    height_cm: float | None = Field(default=None, gt=0, le=MAX_HEIGHT_CM)
    conditions: tuple[Condition, ...] = ()
    medications: tuple[MedicationUse, ...] = ()
    labs: tuple[LabResult, ...] = ()
    allergies: tuple[Allergy, ...] = ()
    pregnant: bool | None = None
    breastfeeding: bool | None = None
    #: Surgery planned in the future that will need opioid analgesia.
    planned_surgery: date | None = None
    frail: bool | None = None
    #: Pharmacogenomic phenotypes, e.g. {"CYP2D6": "poor metabolizer"}.
    phenotypes: dict[str, str] = Field(default_factory=dict)

    def age_on(self, day: date) -> int | None:
        if self.birth_date is None:
            return None
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years

    def active_medications(self, as_of: date) -> tuple[MedicationUse, ...]:
        return tuple(m for m in self.medications if m.is_active(as_of))

    def active_conditions(self, as_of: date) -> tuple[Condition, ...]:
        return tuple(c for c in self.conditions if c.is_active(as_of))

    def latest_lab(self, kind: LabKind) -> LabResult | None:
        """Most recent result of ``kind`` with a date (undated results rank last)."""
        results = [lab for lab in self.labs if lab.kind == kind]
        if not results:
            return None
        return max(results, key=lambda lab: lab.date or date.min)
