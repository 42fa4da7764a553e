"""Turning HTML form fields into the patient-file format and diary entries, and back."""

from __future__ import annotations

import hashlib
import json
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


def _stopped(today: date) -> Callable[[MedicationUse], MedicationUse]:
    """What a medicine line deleted from the form becomes: stopped today, not gone. Dropped, a
    deleted opioid would take its end date with it, and with that the washout LDN must wait for
    (deleting the line is the obvious way to record "stopped today")."""

    def stop(med: MedicationUse) -> MedicationUse:
        if med.start is not None and med.start > today:
            # It was to begin later: withdrawn before the first dose, so nothing to wash out
            # (and an end before its start would be an impossible period).
            return med.model_copy(update={"status": "cancelled"})
        # An end already recorded on or before today is the day it really ended.
        end = med.end if med.end is not None and med.end <= today else today
        return med.model_copy(update={"status": "stopped", "end": end})

    return stop


def _resolved(today: date) -> Callable[[Condition], Condition]:
    """What a condition line deleted from the form becomes: resolved today, not gone. Some
    conditions count as history (opioid use disorder, whatever its status), which a dropped
    line would erase."""

    def resolve(condition: Condition) -> Condition:
        known = condition.abatement
        abatement = known if known is not None and known <= today else today
        return condition.model_copy(update={"clinical_status": "resolved", "abatement": abatement})

    return resolve


def _unit_key(unit: str) -> str:
    # Only spellings that are plainly the same unit: case, spaces, a superscript two.
    return "".join(unit.split()).casefold().replace("\u00b2", "2")


def _in_form_unit(lab: LabResult, kind: LabKind) -> bool:
    """The result is in the unit the form states for ``kind``. Anything else (another unit,
    another spelling of one, no unit) is not: no conversion is guessed."""
    return lab.unit is not None and _unit_key(lab.unit) == _unit_key(LAB_UNITS[kind])


def _shown_lab(patient: Patient, kind: LabKind) -> LabResult | None:
    """The result the core reads for ``kind`` (the latest), when it has a number in the form's
    unit: a creatinine in umol/L shown under the form's mg/dL would be read 88 times too high,
    and an unchanged resubmit would store it as mg/dL."""
    lab = patient.latest_lab(kind)
    if lab is None or lab.value is None or not _in_form_unit(lab, kind):
        return None
    return lab


def _show_number(value: float) -> str:
    return f"{value:g}"


#: The hidden form field with the version of the record the form was filled from.
RECORD_VERSION = "record_version"


def record_version(snapshot: Mapping[str, Any]) -> str:
    """A fingerprint of a stored snapshot. The form carries the one it was filled from, so that
    a re-assessment from a form opened before someone else's is refused instead of silently
    undoing theirs (its edits are applied to the record the clinician saw, not the newest)."""
    canonical = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def prefill(snapshot: Mapping[str, Any] | None) -> dict[str, str]:
    """Form values from a stored assessment snapshot (a ``Patient`` dump)."""
    if not snapshot:
        return {}
    patient = Patient.model_validate(snapshot)
    values: dict[str, str] = {
        RECORD_VERSION: record_version(snapshot),
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
        elif (latest := patient.latest_lab(kind)) is not None and latest.value is not None:
            # Not shown in the form's unit: say that a result exists, so a blank field is not
            # read as "never measured".
            when = f" on {latest.date.isoformat()}" if latest.date else ""
            values[f"{kind}_elsewhere"] = (
                f"{_show_number(latest.value)} {latest.unit or '(no unit)'}{when}"
            )
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
    remove: Callable[[T], T],
    revise: Callable[[T, T], T | None] | None = None,
) -> tuple[T, ...]:
    """``previous`` with the form's list edits: an item the form did not show is kept; a shown
    item is kept as stored while its line is still there, else it becomes ``remove(item)``
    (stopped, resolved: the record keeps it as history); a new line is added.
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
    for i in unmatched:
        kept[i] = remove(previous[i])
    return (*(kept.get(i, item) for i, item in enumerate(previous)), *added)


def _new_dose(old: MedicationUse, new: MedicationUse) -> MedicationUse | None:
    """Only the dose changed: the same medicine, with its codes, status and dates."""
    if old.name.strip().casefold() != new.name.casefold():
        return None
    return old.model_copy(update={"dose_text": new.dose_text})


def _on_or_after(lab: LabResult, shown: LabResult) -> bool:
    if shown.date is None:  # the latest undated: there are no dated ones
        return lab.date is None
    return lab.date is not None and lab.date >= shown.date


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
                # Only the cleared result goes, with any dated with it or later (one would
                # rank as the latest in its place); earlier results are real history the form
                # never showed (a mistyped eGFR 25 cleared must not take last year's 92).
                labs = [lab for lab in labs if lab.kind != kind or not _on_or_after(lab, shown)]
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
        if shown is not None and shown.upper_limit is not None and _in_form_unit(shown, kind):
            # The form asks for the value only. The laboratory's upper limit of normal, in the
            # same unit, still applies; without it raised liver enzymes would go unflagged.
            new = new.model_copy(update={"upper_limit": shown.upper_limit})
        labs.append(new)
    return tuple(labs)


def apply_edits(
    previous: Patient, form: Mapping[str, Any], *, external_id: str, today: date
) -> Patient:
    """The patient after a re-assessment on the patient form: ``previous`` (the last snapshot)
    with what the form changed. Fields the form does not show, and fields a post leaves out,
    are kept as stored; a result the form did not change keeps its date; a medicine or
    condition line deleted is kept as stopped or resolved today."""
    edited = patient_from_data(
        patient_data(form, external_id=external_id, today=today), today=today
    )
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
            remove=_resolved(today),
        )
    if "medications" in sent:
        update["medications"] = _edit_items(
            previous.medications,
            shown=_shown_medication,
            line=_medication_line,
            form_lines=lines(form, "medications"),
            form_items=edited.medications,
            remove=_stopped(today),
            revise=_new_dose,
        )
    update["labs"] = _edit_labs(previous, edited, sent, today)
    return Patient.model_validate({**previous.model_dump(), **update})
