"""Turning HTML form fields into the patient-file format and diary entries, and back."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any, TypeVar

from ldncare.core.diary import SIDE_EFFECT_KINDS
from ldncare.core.patient import (
    ACTIVE_CONDITION_STATUSES,
    ACTIVE_MEDICATION_STATUSES,
    Condition,
    LabKind,
    LabResult,
    MedicationUse,
    Patient,
)
from ldncare.errors import InvalidInput
from ldncare.evidence.nantes import NantesCriteria
from ldncare.patient_file import patient_from_data

MAX_FIELD = 5000
MAX_LINES = 100
#: The results the patient form asks for, with the unit the form states.
LAB_UNITS: dict[LabKind, str] = {
    "egfr": "mL/min/1.73m2",
    "creatinine": "mg/dL",
    "alt": "U/L",
    "ast": "U/L",
}
LAB_FIELDS = tuple(LAB_UNITS)


def text(form: Mapping[str, Any], key: str, *, limit: int = 256) -> str | None:
    value = form.get(key)
    if value is None or not isinstance(value, str):
        return None
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"at most {limit} characters", field=key)
    return value or None


#: Dates outside these are typing errors; refusing them also keeps date arithmetic (a schedule
#: of weeks after a start day) from running past the calendar's end.
EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2199, 12, 31)
DAY_RANGE = f"dates from {EARLIEST_DAY.isoformat()} to {LATEST_DAY.isoformat()} are accepted"


def day(form: Mapping[str, Any], key: str) -> date | None:
    value = text(form, key, limit=10)
    if value is None:
        return None
    try:
        found = date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a date (YYYY-MM-DD)", field=key) from None
    if not EARLIEST_DAY <= found <= LATEST_DAY:
        raise InvalidInput(f"{value!r} is out of range: {DAY_RANGE}", field=key)
    return found


def lines(form: Mapping[str, Any], key: str) -> list[str]:
    value = text(form, key, limit=MAX_FIELD) or ""
    out = [line.strip() for line in value.splitlines() if line.strip()]
    if len(out) > MAX_LINES:
        raise InvalidInput(f"at most {MAX_LINES} lines", field=key)
    return out


def patient_data(
    form: Mapping[str, Any], *, external_id: str | None, today: date
) -> dict[str, Any]:
    """The patient-file mapping from the patient form (validated later by the patient file
    reader, which names the offending field)."""
    data: dict[str, Any] = {"id": external_id or text(form, "external_id", limit=128)}
    for key in ("name", "sex"):
        if (value := text(form, key)) is not None:
            data[key] = value
    for key in ("birth_date", "planned_surgery"):
        if (value := text(form, key, limit=10)) is not None:
            data[key] = value
    data["conditions"] = [{"name": n} for n in lines(form, "conditions")]
    meds = []
    for line in lines(form, "medications"):
        name, _, dose = line.partition("|")
        med: dict[str, Any] = {"name": name.strip()}
        if dose.strip():
            med["dose"] = dose.strip()
        meds.append(med)
    data["medications"] = meds
    labs = []
    for test in LAB_FIELDS:
        if (value := text(form, test, limit=16)) is not None:
            try:
                number = float(value.replace(",", "."))
            except ValueError:
                raise InvalidInput(f"{value!r} is not a number", field=test) from None
            if not 0 <= number <= 100000:
                raise InvalidInput(f"{value} is out of range", field=test)
            labs.append(
                {"test": test, "value": number, "unit": LAB_UNITS[test], "date": today.isoformat()}
            )
    data["labs"] = labs
    for key in ("pregnant", "breastfeeding", "frail"):
        data[key] = form.get(key) == "yes"
    return data


def nantes(
    form: Mapping[str, Any], criteria: NantesCriteria | None
) -> dict[str, bool | None] | None:
    """Checklist answers, or None when the clinician left the whole checklist blank."""
    if criteria is None:
        return None
    answers: dict[str, bool | None] = {}
    for item in criteria.items:
        value = form.get(f"nantes_{item.id}")
        answers[item.id] = True if value == "yes" else False if value == "no" else None
    if all(v is None for v in answers.values()):
        return None
    return answers


def diary_entry(form: Mapping[str, Any]) -> dict[str, Any]:
    """A diary mapping for ``parse_entry`` (it checks ranges and names the field)."""
    entry: dict[str, Any] = {"day": text(form, "day", limit=10)}
    for key in ("pain_avg", "pain_worst", "sitting_minutes", "sleep_quality", "pgic"):
        if (value := text(form, key, limit=8)) is not None:
            entry[key] = value
    taken = form.get("dose_taken")
    if taken in ("yes", "no"):
        entry["dose_taken"] = taken == "yes"
    if (dose := text(form, "dose", limit=32)) is not None:
        entry["dose_mg"] = dose
    effect = text(form, "side_effect", limit=32)
    if effect is not None:
        if effect not in SIDE_EFFECT_KINDS:
            raise InvalidInput(f"{effect!r} is not on the list", field="side_effect")
        entry["side_effects"] = [{"effect": effect, "severity": text(form, "severity") or "mild"}]
    if (notes := text(form, "notes", limit=2000)) is not None:
        entry["notes"] = notes
    return entry


# --- what the patient form shows of a stored record, and a re-assessment's edits of it ------------
#
# The form shows part of the record only: current medicines and conditions, four results, a few
# facts. A re-assessment is the last snapshot with the form's edits applied, never the form
# alone: rebuilt from the form, a stopped opioid (with the end date its washout runs from), a
# naltrexone allergy, coded medicines, weight, other results would vanish on an unchanged
# resubmit, and a patient LDN is not recommended for would become eligible.

T = TypeVar("T")


def _shown_medication(med: MedicationUse) -> bool:
    return med.status in ACTIVE_MEDICATION_STATUSES


def _shown_condition(condition: Condition) -> bool:
    return condition.clinical_status in ACTIVE_CONDITION_STATUSES


def _medication_line(med: MedicationUse) -> str:
    return (med.name + (f" | {med.dose_text}" if med.dose_text else "")).strip()


def _condition_line(condition: Condition) -> str:
    return condition.display.strip()


def _shown_lab(patient: Patient, kind: LabKind) -> LabResult | None:
    """The result the core reads for ``kind`` (the latest), when it has a number to show."""
    lab = patient.latest_lab(kind)
    return lab if lab is not None and lab.value is not None else None


def _show_number(value: float) -> str:
    return f"{value:g}"


def prefill(snapshot: Mapping[str, Any] | None) -> dict[str, str]:
    """Form values from a stored assessment snapshot (a ``Patient`` dump)."""
    if not snapshot:
        return {}
    patient = Patient.model_validate(snapshot)
    values: dict[str, str] = {
        "name": patient.name or "",
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else "",
        "sex": patient.sex,
        "planned_surgery": patient.planned_surgery.isoformat() if patient.planned_surgery else "",
    }
    values["conditions"] = "\n".join(
        _condition_line(c) for c in patient.conditions if _shown_condition(c)
    )
    values["medications"] = "\n".join(
        _medication_line(m) for m in patient.medications if _shown_medication(m)
    )
    for kind in LAB_FIELDS:
        if (lab := _shown_lab(patient, kind)) is not None and lab.value is not None:
            values[kind] = _show_number(lab.value)
    for key in ("pregnant", "breastfeeding", "frail"):
        values[key] = "yes" if getattr(patient, key) else ""
    return values


def _edit_items(
    previous: Sequence[T],
    *,
    shown: Callable[[T], bool],
    line: Callable[[T], str],
    form_lines: Sequence[str],
    form_items: Sequence[T],
    revise: Callable[[T, T], T | None] | None = None,
) -> tuple[T, ...]:
    """``previous`` with the form's list edits: an item the form did not show is kept; a shown
    item is kept as stored while its line is still there, else dropped; a new line is added.
    ``revise(old, new)`` may turn a changed line into an edit of a shown item (a new dose)."""
    unmatched = [i for i, item in enumerate(previous) if shown(item)]
    kept: dict[int, T] = {}
    changed: list[T] = []
    for text, new in zip(form_lines, form_items, strict=True):
        same = next((i for i in unmatched if line(previous[i]) == text), None)
        if same is None:
            changed.append(new)
        else:
            unmatched.remove(same)
            kept[same] = previous[same]
    added: list[T] = []
    for new in changed:
        for i in unmatched:
            revised = revise(previous[i], new) if revise is not None else None
            if revised is not None:
                unmatched.remove(i)
                kept[i] = revised
                break
        else:
            added.append(new)
    out = [kept.get(i, item) for i, item in enumerate(previous) if not shown(item) or i in kept]
    return (*out, *added)


def _new_dose(old: MedicationUse, new: MedicationUse) -> MedicationUse | None:
    """Only the dose changed: the same medicine, with its codes, status and dates."""
    if old.name.strip().casefold() != new.name.casefold():
        return None
    return old.model_copy(update={"dose_text": new.dose_text})


def _edit_labs(
    previous: Patient, edited: Patient, sent: set[str], today: date
) -> tuple[LabResult, ...]:
    labs = list(previous.labs)
    for kind in LAB_FIELDS:
        if kind not in sent:
            continue
        shown = _shown_lab(previous, kind)
        new = next((lab for lab in edited.labs if lab.kind == kind), None)
        if new is None:
            if shown is not None:  # the clinician cleared the value
                labs = [lab for lab in labs if lab.kind != kind]
            continue
        # The form shows a rounded number; the stored one (and its date) stands if unchanged.
        if (
            shown is not None
            and shown.value is not None
            and new.value
            in (
                shown.value,
                float(_show_number(shown.value)),
            )
        ):
            continue
        # A new value is today's result; one already dated today or later is what it corrects
        # (left in place, it could still rank as the latest).
        labs = [lab for lab in labs if lab.kind != kind or lab.date is None or lab.date < today]
        labs.append(new)
    return tuple(labs)


def apply_edits(
    previous: Patient, form: Mapping[str, Any], *, external_id: str, today: date
) -> Patient:
    """The patient after a re-assessment on the patient form: ``previous`` (the last snapshot)
    with what the form changed. Fields the form does not show, and fields a post leaves out,
    are kept as stored; a result the form did not change keeps its date."""
    edited = patient_from_data(patient_data(form, external_id=external_id, today=today))
    sent = {str(key) for key in form}
    update: dict[str, Any] = {"id": external_id}
    for key in ("name", "birth_date", "sex", "planned_surgery"):
        if key in sent:
            update[key] = getattr(edited, key)
    for key in ("pregnant", "breastfeeding", "frail"):
        # A checkbox says "yes" or nothing: unticked clears a yes but leaves "not known" unknown.
        before = getattr(previous, key)
        update[key] = True if getattr(edited, key) else (False if before else before)
    if "conditions" in sent:
        update["conditions"] = _edit_items(
            previous.conditions,
            shown=_shown_condition,
            line=_condition_line,
            form_lines=lines(form, "conditions"),
            form_items=edited.conditions,
        )
    if "medications" in sent:
        update["medications"] = _edit_items(
            previous.medications,
            shown=_shown_medication,
            line=_medication_line,
            form_lines=lines(form, "medications"),
            form_items=edited.medications,
            revise=_new_dose,
        )
    update["labs"] = _edit_labs(previous, edited, sent, today)
    return Patient.model_validate({**previous.model_dump(), **update})
