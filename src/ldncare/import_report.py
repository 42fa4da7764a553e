"""What an import did: the counts and the issues (a resource or line not imported, and why).

Shared by the three layers of an import: the FHIR reader reports issues
(:mod:`ldncare.fhir.groups`), the bulk writer counts what it wrote (:mod:`ldncare.store.bulk`)
and the orchestration hands the whole report to the CLI (:mod:`ldncare.importing`). Plain data:
it imports nothing of ldncare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ImportIssue:
    """A resource (or line) that was not imported, and why."""

    resource_type: str
    resource_id: str | None
    field: str | None
    message: str
    #: FHIR id of the patient it belonged to, when known (that patient was skipped).
    patient_id: str | None = None
    #: ``file:line`` for NDJSON, ``entry[i]`` for Bundles.
    where: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "field": self.field,
            "message": self.message,
            "patient_id": self.patient_id,
            "where": self.where,
        }


@dataclass
class ImportReport:
    """What an import did. Medication, condition and observation counts cover every patient
    read successfully (imported, updated, facts refreshed or unchanged)."""

    patients_imported: int = 0
    #: Already in the store with a different record: the record was updated (new assessment
    #: snapshot, audit "update" row) and its facts rewritten.
    patients_updated: int = 0
    #: Already in the store with the same record, but facts derived from it moved (kidney
    #: function from the age on ``as_of``, classes, doses or review dates from a newer
    #: evidence base): those facts were rewritten; the record, its assessment history and the
    #: audit log were not touched.
    patients_facts_refreshed: int = 0
    #: Already in the store, record and facts the same: nothing was written.
    patients_unchanged: int = 0
    patients_skipped: int = 0
    medications_total: int = 0
    #: Active on the import's ``as_of`` date (MedicationUse.is_active).
    medications_active: int = 0
    conditions: int = 0
    conditions_active: int = 0
    #: Lab results kept (eGFR, creatinine, liver tests, ...).
    observations: int = 0
    errors: list[ImportIssue] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    bytes_read: int = 0
    seconds: float = 0.0

    @property
    def patients_read(self) -> int:
        return (
            self.patients_imported
            + self.patients_updated
            + self.patients_facts_refreshed
            + self.patients_unchanged
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "patients": {
                "imported": self.patients_imported,
                "updated": self.patients_updated,
                "facts_refreshed": self.patients_facts_refreshed,
                "unchanged": self.patients_unchanged,
                "skipped": self.patients_skipped,
            },
            "medications": {"total": self.medications_total, "active": self.medications_active},
            "conditions": {"total": self.conditions, "active": self.conditions_active},
            "observations": self.observations,
            "errors": [e.to_json() for e in self.errors],
            "files": self.files,
            "ignored_files": self.ignored_files,
            "bytes_read": self.bytes_read,
            "seconds": round(self.seconds, 3),
        }
