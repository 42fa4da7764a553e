"""What the pages and the API do, once: create a patient, assess, adjust the plan, read a record.

Every function takes the logged-in user; access is checked here (not in the routes) and every
read or write reaches the audit log through the repository's ``actor``.

The web layer goes route -> service -> repository, one way: the routes (``api.py``,
``pages.py``, ``ask_page.py``) import nothing of ``ldncare.store``; the single reads and writes
they make after their access check go through the names at the end of this module
(``tests/unit/test_layers.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine

from ldncare.core.diary import DiaryEntry
from ldncare.core.patient import Patient
from ldncare.core.plan_changes import PlanChanges, describe_changes
from ldncare.core.plan_contract import PlanContract, read_plan
from ldncare.core.quantity import parse_dose
from ldncare.core.response import ResponseAssessment
from ldncare.core.status import Status
from ldncare.core.titration import TitrationOptions
from ldncare.errors import InvalidInput, LdncareError
from ldncare.evidence.loader import load_evidence
from ldncare.patient_file import patient_from_data
from ldncare.planning import changes_since, make_plan
from ldncare.render.report import Report, build_report
from ldncare.store import repository
from ldncare.store.cds import CardFare
from ldncare.store.ehr_links import EhrSource, follow_patient, linked_patient
from ldncare.store.external_id import EXTERNAL_ID_PATTERN, MAX_EXTERNAL_ID, content_disposition
from ldncare.store.models import AssessmentRow, PatientRow, PlanRow, ReviewNoteRow
from ldncare.store.population import safety_alerts
from ldncare.store.repository import ExternalId
from ldncare.store.summaries import PatientSummary, patient_summaries
from ldncare.web import forms
from ldncare.web.auth import CurrentUser, authorize_patient, require_clinician
from ldncare.web.views import judge, patient_status


def _clinic_for(user: CurrentUser, requested: str | None) -> str | None:
    if user.role == "admin":
        return requested or user.clinic_id
    if requested and requested != user.clinic_id:
        raise InvalidInput(
            f"you can add patients to your own clinic ({user.clinic_id}) only", field="clinic"
        )
    return user.clinic_id


def plan_contract(
    patient: Patient,
    *,
    start: date | None,
    today: date,
    nantes: Mapping[str, bool | None] | None,
    titration: TitrationOptions | None = None,
) -> dict[str, Any]:
    plan = make_plan(patient, start=start, as_of=today, titration=titration, nantes=nantes)
    return plan.to_contract(load_evidence())


def create_patient(
    engine: Engine,
    user: CurrentUser,
    data: Mapping[str, Any],
    *,
    today: date,
    start: date | None = None,
    nantes: Mapping[str, bool | None] | None = None,
    clinic: str | None = None,
) -> PatientRow:
    """Store a patient (patient-file format) with the first assessment and plan v1."""
    require_clinician(user)
    clinic_id = _clinic_for(user, clinic)
    patient = patient_from_data(dict(data), today=today)
    contract = plan_contract(patient, start=start, today=today, nantes=nantes)
    return repository.add_patient(
        engine, patient, plan_contract=contract, clinic_id=clinic_id, actor=user.actor
    )


def run_assessment(
    engine: Engine,
    user: CurrentUser,
    ref: int | str,
    data: Mapping[str, Any],
    *,
    today: date,
    start: date | None = None,
    nantes: Mapping[str, bool | None] | None = None,
    reason: str | None = None,
) -> PlanRow:
    """Record a new assessment of a stored patient and the plan it gives (a new version)."""
    require_clinician(user)
    row = authorize_patient(engine, user, ref)
    values = dict(data)
    if str(values.get("id", row.external_id)) != row.external_id:
        raise InvalidInput(
            f"the assessment is for {values.get('id')!r} but this patient is {row.external_id!r}",
            field="id",
        )
    values["id"] = row.external_id
    patient = patient_from_data(values, today=today)
    return _record_assessment(
        engine, user, row, patient, today=today, start=start, nantes=nantes, reason=reason
    )


def run_form_assessment(
    engine: Engine,
    user: CurrentUser,
    ref: int | str,
    form: Mapping[str, Any],
    *,
    today: date,
    start: date | None = None,
    nantes: Mapping[str, bool | None] | None = None,
    reason: str | None = None,
) -> PlanRow:
    """Record a re-assessment made on the patient form: the last assessment with the form's
    edits (:func:`ldncare.web.forms.apply_edits`), since the form shows only part of it.

    A form filled from an older version of the record than the latest is refused: its edits
    were made against what the clinician saw then, and applied now they would undo what was
    recorded since (a form without the version field, from an older client, is not checked)."""
    require_clinician(user)
    row = authorize_patient(engine, user, ref)
    last = latest_assessment(engine, row.id)
    snapshot = last.snapshot if last is not None else row.snapshot
    seen = forms.text(form, forms.RECORD_VERSION, limit=64)
    if seen is not None and seen != forms.record_version(snapshot):
        raise InvalidInput(
            "the record changed since this form was opened (for example, another assessment "
            "was recorded); nothing was saved: reload the form to see the current record and "
            "enter your changes again"
        )
    previous = Patient.model_validate(snapshot)
    patient = forms.apply_edits(previous, form, external_id=row.external_id, today=today)
    return _record_assessment(
        engine, user, row, patient, today=today, start=start, nantes=nantes, reason=reason
    )


def _record_assessment(
    engine: Engine,
    user: CurrentUser,
    row: PatientRow,
    patient: Patient,
    *,
    today: date,
    start: date | None,
    nantes: Mapping[str, bool | None] | None,
    reason: str | None,
) -> PlanRow:
    contract = plan_contract(patient, start=start, today=today, nantes=nantes)
    repository.add_assessment(engine, row.id, patient.model_dump(mode="json"), actor=user.actor)
    return repository.save_plan(
        engine, row.id, contract, reason=reason or f"assessment of {today}", actor=user.actor
    )


def latest_assessment(engine: Engine, patient_id: int) -> AssessmentRow | None:
    return repository.latest_assessment_row(engine, patient_id)


def nantes_answers(
    contract: PlanContract | Mapping[str, Any],
) -> dict[str, bool | None] | None:
    """The checklist answers a plan's Nantes result was made from (unknowns left out)."""
    result = read_plan(contract).nantes
    if result is None:
        return None
    answers: dict[str, bool | None] = {}
    for present in (
        result.essential_present,
        result.complementary_present,
        result.exclusions_present,
        result.associated_present,
    ):
        answers.update(dict.fromkeys(present, True))
    answers.update(dict.fromkeys(result.essential_absent, False))
    return answers


@dataclass(frozen=True)
class Adjustment:
    reason: str
    start: date | None = None
    target_dose: str | None = None
    step_days: int | None = None
    review_weeks: int | None = None
    slow: bool = False
    time_of_day: str | None = None


def adjust_plan(
    engine: Engine, user: CurrentUser, ref: int | str, change: Adjustment, *, today: date
) -> PlanRow:
    """A new plan version from the latest assessment with the clinician's titration choices."""
    require_clinician(user)
    if not change.reason.strip():
        raise InvalidInput("say why the plan changes", field="reason")
    row = authorize_patient(engine, user, ref)
    assessment = latest_assessment(engine, row.id)
    snapshot = assessment.snapshot if assessment is not None else row.snapshot
    patient = Patient.model_validate(snapshot)
    stored = repository.latest_plan(engine, row.id, actor=user.actor)
    current = None if stored is None else read_plan(stored.contract)
    start = change.start
    if start is None and current is not None and current.ldn.schedule:
        start = current.ldn.schedule[0].start_date
    if change.time_of_day not in (None, "bedtime", "morning"):
        raise InvalidInput("time of day is 'bedtime' or 'morning'", field="time_of_day")
    titration = TitrationOptions(
        start=start or today,
        target_dose=None if not change.target_dose else parse_dose(change.target_dose),
        step_days=change.step_days,
        review_weeks=change.review_weeks,
        slow=change.slow,
        time_of_day=change.time_of_day,  # type: ignore[arg-type]
    )
    nantes = None if current is None else nantes_answers(current)
    contract = plan_contract(patient, start=start, today=today, nantes=nantes, titration=titration)
    return repository.save_plan(engine, row.id, contract, reason=change.reason, actor=user.actor)


@dataclass(frozen=True)
class PatientRecord:
    """Everything the clinician's patient page shows, read once and audited."""

    row: PatientRow
    plans: list[PlanRow]
    diary: list[DiaryEntry]
    flags: dict[date, list[str]]
    notes: list[ReviewNoteRow]
    response: ResponseAssessment | None
    status: Status
    #: The latest plan's contract, parsed once (None without a plan).
    latest: PlanContract | None = None
    #: What the installed evidence base changes against the latest plan, when that plan was made
    #: with another base (issue 22); None when it was made with this one or there is no plan.
    changes: PlanChanges | None = None
    #: Why the comparison could not be made (the stored record no longer plans), if it failed.
    changes_error: str = ""

    @property
    def change_lines(self) -> list[str]:
        return [] if self.changes is None else describe_changes(self.changes)

    @property
    def plan(self) -> PlanRow | None:
        return self.plans[-1] if self.plans else None

    @property
    def contract(self) -> dict[str, Any] | None:
        """The latest plan's contract as stored (the API returns it unchanged)."""
        return None if self.plan is None else self.plan.contract

    @property
    def report(self) -> Report | None:
        return None if self.latest is None else build_report(self.latest)


def patient_record(
    engine: Engine, user: CurrentUser, ref: int | str, *, today: date
) -> PatientRecord:
    row = authorize_patient(engine, user, ref)
    actor = user.actor
    row = repository.get_patient(engine, row.id, actor=actor)
    plans = repository.list_plans(engine, row.id, actor=actor)
    diary = repository.list_diary(engine, row.id, actor=actor)
    flags = repository.diary_flags(engine, row.id, actor=actor)
    notes = repository.list_review_notes(engine, row.id, actor=actor)
    contract = plans[-1].contract if plans else None
    evidence = load_evidence()
    response = judge(diary, contract, today, evidence)
    alerts = safety_alerts(engine, today, [row.id]).get(row.id, ())
    status = patient_status(contract, diary, today, evidence, notes[-1] if notes else None, alerts)
    changes: PlanChanges | None = None
    changes_error = ""
    if contract is not None and contract.get("evidence") != evidence.release.to_contract():
        # The plan was made with another evidence base: the same comparison as
        # `ldncare patient changes` (the plan made again from the record under this base).
        try:
            record = Patient.model_validate(
                repository.current_snapshot(engine, row.id, actor=actor)
            )
            changes = changes_since(record, contract)
        except (LdncareError, ValueError) as exc:
            changes_error = str(exc)
    latest = None if contract is None else read_plan(contract)
    return PatientRecord(
        row, plans, diary, flags, notes, response, status, latest, changes, changes_error
    )


# --- the store, as the routes reach it ----------------------------------------------------------
# One read or write each, made by a route after its own access check (authorize_patient,
# require_clinician). Named here so that the routes import nothing of the store.
get_patient = repository.get_patient
latest_plan = repository.latest_plan
list_plans = repository.list_plans
list_diary = repository.list_diary
add_or_update_diary_entry = repository.add_or_update_diary_entry
add_to_diary_day = repository.add_to_diary_day
import_diary_csv = repository.import_diary_csv
export_diary_csv = repository.export_diary_csv
list_review_notes = repository.list_review_notes
add_review_note = repository.add_review_note
audit = repository.audit
audit_entries = repository.audit_entries

__all__ = [
    "EXTERNAL_ID_PATTERN",
    "MAX_EXTERNAL_ID",
    "Adjustment",
    "AssessmentRow",
    "CardFare",
    "EhrSource",
    "ExternalId",
    "PatientRecord",
    "PatientRow",
    "PatientSummary",
    "PlanRow",
    "ReviewNoteRow",
    "add_or_update_diary_entry",
    "add_review_note",
    "add_to_diary_day",
    "adjust_plan",
    "audit",
    "audit_entries",
    "content_disposition",
    "create_patient",
    "export_diary_csv",
    "follow_patient",
    "get_patient",
    "import_diary_csv",
    "latest_assessment",
    "latest_plan",
    "linked_patient",
    "list_diary",
    "list_plans",
    "list_review_notes",
    "nantes_answers",
    "patient_record",
    "patient_summaries",
    "plan_contract",
    "run_assessment",
]
