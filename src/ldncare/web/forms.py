"""Turning HTML form fields into the patient-file format and diary entries, and back."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from ldncare.core.diary import SIDE_EFFECT_KINDS
from ldncare.errors import InvalidInput
from ldncare.evidence.nantes import NantesCriteria

MAX_FIELD = 5000
MAX_LINES = 100
#: The results the patient form asks for, with the unit the form states.
LAB_UNITS = {"egfr": "mL/min/1.73m2", "creatinine": "mg/dL", "alt": "U/L", "ast": "U/L"}
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


def prefill(snapshot: Mapping[str, Any] | None) -> dict[str, str]:
    """Form values from a stored assessment snapshot (a ``Patient`` dump)."""
    if not snapshot:
        return {}
    values: dict[str, str] = {
        "name": str(snapshot.get("name") or ""),
        "birth_date": str(snapshot.get("birth_date") or ""),
        "sex": str(snapshot.get("sex") or "unknown"),
        "planned_surgery": str(snapshot.get("planned_surgery") or ""),
    }
    values["conditions"] = "\n".join(
        str(c["display"])
        for c in snapshot.get("conditions", [])
        if c.get("clinical_status") in ("active", "recurrence", "relapse")
    )
    values["medications"] = "\n".join(
        str(m["name"]) + (f" | {m['dose_text']}" if m.get("dose_text") else "")
        for m in snapshot.get("medications", [])
        if m.get("status") in ("active", "on-hold", "intended", "unknown")
    )
    for lab in snapshot.get("labs", []):
        if lab.get("kind") in LAB_FIELDS and lab.get("value") is not None:
            values[str(lab["kind"])] = f"{lab['value']:g}"
    for key in ("pregnant", "breastfeeding", "frail"):
        values[key] = "yes" if snapshot.get(key) else ""
    return values
