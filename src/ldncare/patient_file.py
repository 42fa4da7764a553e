"""Read a patient from a file: the ldncare patient-file format (JSON or YAML) or a FHIR Bundle.

The format is documented in ``docs/patient-file.md``; an example ships as
``ldncare/examples/pn-example.yaml``. Every error is an :class:`~ldncare.errors.InvalidInput`
with a one-line message and the dotted path of the offending field (``medications[1].start``).
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ldncare.core.daily_dose import doses_per_day
from ldncare.core.patient import (
    Allergy,
    Coding,
    Condition,
    LabResult,
    MedicationUse,
    Patient,
)
from ldncare.core.quantity import parse_dose
from ldncare.errors import InvalidInput, MissingFile
from ldncare.fhir.patient_bundle import patient_from_bundle
from ldncare.json_input import JsonProblem, loads_strict

__all__ = ["load_patient", "parse_patient_file", "patient_from_data"]

_TOP_KEYS = {
    "id", "name", "birth_date", "sex", "weight_kg", "height_cm", "conditions", "medications",
    "labs", "allergies", "pregnant", "breastfeeding", "planned_surgery", "frail", "phenotypes",
}  # fmt: skip
_CONDITION_KEYS = {"name", "code", "system", "status", "onset", "resolved"}
_MEDICATION_KEYS = {"name", "rxnorm", "status", "start", "end", "dose", "frequency", "identified"}
_LAB_KEYS = {"test", "value", "unit", "date", "upper_limit"}
_ALLERGY_KEYS = {"substance", "code", "system", "active"}
_LAB_TESTS = ("egfr", "creatinine", "alt", "ast", "bilirubin", "albumin", "inr", "hcg", "tsh")
_SEXES = ("female", "male", "other", "unknown")
_PHENOTYPE_GENES = ("CYP2D6", "CYP2C19")
_PHENOTYPES = ("poor", "intermediate", "normal", "rapid", "ultrarapid")
_CODE_SYSTEMS = {
    "snomed": "http://snomed.info/sct",
    "sct": "http://snomed.info/sct",
    "icd10": "http://hl7.org/fhir/sid/icd-10",
    "icd-10": "http://hl7.org/fhir/sid/icd-10",
    "icd10cm": "http://hl7.org/fhir/sid/icd-10-cm",
    "icd-10-cm": "http://hl7.org/fhir/sid/icd-10-cm",
}
_BARE_NUMBER = re.compile(r"^\s*[-+]?\d+(?:[.,]\d+)?\s*$")
_RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_MED_STATUSES = ("active", "on-hold", "completed", "stopped", "cancelled", "intended", "unknown")
_COND_STATUSES = ("active", "recurrence", "relapse", "inactive", "remission", "resolved")


def _fail(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, field=field)


def _check_keys(raw: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        prefix = f"{where}." if where else ""
        raise _fail(
            f"{prefix}{unknown[0]}", f"unknown field; accepted: {', '.join(sorted(allowed))}"
        )


def _as_dict(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(field, f"must be a mapping, got {type(value).__name__}")
    return value


def _as_list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(field, f"must be a list, got {type(value).__name__}")
    return value


def _text(value: Any, field: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise _fail(field, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail(field, f"must be text, got {type(value).__name__}")
    text = str(value).strip()
    if required and not text:
        raise _fail(field, "must not be empty")
    return text or None


def _date(value: Any, field: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _fail(field, f"{value!r} is not a date; write YYYY-MM-DD")


#: The earliest birth date accepted (docs/SAFETY.md H17); the latest is today. 0001-01-01 or
#: 9999-12-31 are typing errors that gave ages of 2025 and -7974 and an "eligible" plan.
EARLIEST_BIRTH = date(1900, 1, 1)


def check_birth_date(born: date | None, field: str, *, today: date | None = None) -> None:
    """Refuse a birth date before 1900 or after ``today`` (default: the real today)."""
    if born is None:
        return
    latest = today or date.today()
    if not EARLIEST_BIRTH <= born <= latest:
        raise _fail(
            field,
            f"{born.isoformat()} is not a possible birth date: birth dates from "
            f"{EARLIEST_BIRTH.isoformat()} to today ({latest.isoformat()}) are accepted",
        )


def _number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(field, f"must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        # YAML's .nan / .inf: NaN compares false with every threshold, so it would pass every
        # safety check (an eGFR of NaN gave no kidney warning).
        raise _fail(field, f"must be a finite number, got {value!r}")
    return float(value)


def _bool(value: Any, field: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise _fail(field, f"must be true or false, got {value!r}")


def _choice(value: Any, field: str, choices: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    text = str(value).strip().lower()
    if text not in choices:
        raise _fail(field, f"{value!r} is not one of {', '.join(choices)}")
    return text


def _condition(raw: Any, field: str) -> Condition:
    if isinstance(raw, str):
        raw = {"name": raw}
    raw = _as_dict(raw, field)
    _check_keys(raw, _CONDITION_KEYS, field)
    name = _text(raw.get("name"), f"{field}.name", required=True)
    assert name is not None
    codes: tuple[Coding, ...] = ()
    code = _text(raw.get("code"), f"{field}.code")
    if code:
        system_key = _text(raw.get("system"), f"{field}.system") or "snomed"
        system = _CODE_SYSTEMS.get(system_key.lower(), system_key)
        codes = (Coding(system=system, code=code, display=name),)
    resolved = _date(raw.get("resolved"), f"{field}.resolved")
    status = _choice(
        raw.get("status"), f"{field}.status", _COND_STATUSES, "resolved" if resolved else "active"
    )
    return Condition(
        display=name,
        codes=codes,
        clinical_status=status,
        onset=_date(raw.get("onset"), f"{field}.onset"),
        abatement=resolved,
    )


def _medication(raw: Any, field: str) -> MedicationUse:
    if isinstance(raw, str):
        raw = {"name": raw}
    raw = _as_dict(raw, field)
    _check_keys(raw, _MEDICATION_KEYS, field)
    name = _text(raw.get("name"), f"{field}.name", required=True)
    assert name is not None
    rxnorm = _text(raw.get("rxnorm"), f"{field}.rxnorm")
    raw_dose = raw.get("dose")
    if raw_dose is not None and (not isinstance(raw_dose, str) or _BARE_NUMBER.match(raw_dose)):
        parse_dose(raw_dose, field=f"{field}.dose")  # raises: a bare number has no unit
    dose = _text(raw_dose, f"{field}.dose")
    dose = _with_frequency(dose, _text(raw.get("frequency"), f"{field}.frequency"), field)
    start = _date(raw.get("start"), f"{field}.start")
    end = _date(raw.get("end"), f"{field}.end")
    if start and end and end < start:
        raise _fail(f"{field}.end", f"{end} is before start {start}")
    return MedicationUse(
        name=name,
        codes=(Coding(system=_RXNORM, code=rxnorm),) if rxnorm else (),
        status=_choice(raw.get("status"), f"{field}.status", _MED_STATUSES, "active"),
        start=start,
        end=end,
        dose_text=dose,
        identified=_flag(raw.get("identified"), f"{field}.identified"),
    )


def _flag(value: Any, field: str) -> bool:
    """``identified``: false for a medicine the source record names by a reference nobody could
    resolve (the drug is unknown); true when absent."""
    if value is None:
        return True
    if not isinstance(value, bool):
        raise _fail(field, f"must be true or false, not {value!r}")
    return value


def _with_frequency(dose: str | None, frequency: str | None, field: str) -> str | None:
    """The optional ``frequency`` ("twice daily", "every 8 hours", "BID") joins the dose text,
    so the daily total can be read and a current dose checked. It must be understood, and it
    must not contradict a frequency already written in ``dose``."""
    if frequency is None:
        return dose
    times = doses_per_day(frequency)
    if times is None:
        raise _fail(
            f"{field}.frequency",
            f"{frequency!r} is not understood; write e.g. 'once daily', 'twice daily', "
            "'three times a day', 'every 8 hours', 'BID', 'TDS' or 'at night'",
        )
    stated = doses_per_day(dose) if dose else None
    if stated is not None and stated != times:
        raise _fail(
            f"{field}.frequency",
            f"{frequency!r} contradicts the frequency in dose {dose!r}; give it once",
        )
    if stated is not None:
        return dose
    return f"{dose} {frequency}" if dose else frequency


def _lab(raw: Any, field: str) -> LabResult:
    raw = _as_dict(raw, field)
    _check_keys(raw, _LAB_KEYS, field)
    test = _choice(raw.get("test"), f"{field}.test", _LAB_TESTS, "")
    if not test:
        raise _fail(f"{field}.test", f"is required; one of {', '.join(_LAB_TESTS)}")
    value = raw.get("value")
    number = value_text = None
    if isinstance(value, str):
        value_text = value.strip()
    else:
        number = _number(value, f"{field}.value")
    if number is None and value_text is None:
        raise _fail(f"{field}.value", "is required")
    unit = _text(raw.get("unit"), f"{field}.unit")
    if number is not None and unit is None and test not in ("inr",):
        raise _fail(f"{field}.unit", f"is required for {test} (e.g. mL/min/1.73m2, mg/dL, U/L)")
    return LabResult(
        kind=test,
        value=number,
        value_text=value_text,
        unit=unit,
        date=_date(raw.get("date"), f"{field}.date"),
        upper_limit=_number(raw.get("upper_limit"), f"{field}.upper_limit"),
    )


def _allergy(raw: Any, field: str) -> Allergy:
    if isinstance(raw, str):
        raw = {"substance": raw}
    raw = _as_dict(raw, field)
    _check_keys(raw, _ALLERGY_KEYS, field)
    substance = _text(raw.get("substance"), f"{field}.substance", required=True)
    assert substance is not None
    code = _text(raw.get("code"), f"{field}.code")
    system = _text(raw.get("system"), f"{field}.system")
    codes = (
        (Coding(system=_CODE_SYSTEMS.get((system or "").lower(), system), code=code),)
        if code
        else ()
    )
    active = _bool(raw.get("active"), f"{field}.active")
    return Allergy(substance=substance, codes=codes, active=True if active is None else active)


def _phenotypes(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    raw = _as_dict(raw, "phenotypes")
    out: dict[str, str] = {}
    for gene, value in raw.items():
        key = str(gene).upper()
        if key not in _PHENOTYPE_GENES:
            raise _fail(
                f"phenotypes.{gene}", f"unknown gene; accepted: {', '.join(_PHENOTYPE_GENES)}"
            )
        text = str(value).strip().lower().removesuffix(" metabolizer").removesuffix(" metaboliser")
        if text not in _PHENOTYPES:
            raise _fail(f"phenotypes.{gene}", f"{value!r} is not one of {', '.join(_PHENOTYPES)}")
        out[key] = text
    return out


def patient_from_data(data: Any, *, today: date | None = None) -> Patient:
    """Build a :class:`Patient` from parsed patient-file data (a mapping). ``today`` bounds the
    birth date (default: the real today)."""
    raw = _as_dict(data, "(top level)")
    _check_keys(raw, _TOP_KEYS, "")
    pid = _text(raw.get("id"), "id", required=True)
    assert pid is not None
    born = _date(raw.get("birth_date"), "birth_date")
    check_birth_date(born, "birth_date", today=today)
    try:
        return Patient(
            id=pid,
            name=_text(raw.get("name"), "name"),
            birth_date=born,
            sex=_choice(raw.get("sex"), "sex", _SEXES, "unknown"),
            weight_kg=_number(raw.get("weight_kg"), "weight_kg"),
            height_cm=_number(raw.get("height_cm"), "height_cm"),
            conditions=tuple(
                _condition(c, f"conditions[{i}]")
                for i, c in enumerate(_as_list(raw.get("conditions"), "conditions"))
            ),
            medications=tuple(
                _medication(m, f"medications[{i}]")
                for i, m in enumerate(_as_list(raw.get("medications"), "medications"))
            ),
            labs=tuple(
                _lab(lab, f"labs[{i}]") for i, lab in enumerate(_as_list(raw.get("labs"), "labs"))
            ),
            allergies=tuple(
                _allergy(a, f"allergies[{i}]")
                for i, a in enumerate(_as_list(raw.get("allergies"), "allergies"))
            ),
            pregnant=_bool(raw.get("pregnant"), "pregnant"),
            breastfeeding=_bool(raw.get("breastfeeding"), "breastfeeding"),
            planned_surgery=_date(raw.get("planned_surgery"), "planned_surgery"),
            frail=_bool(raw.get("frail"), "frail"),
            phenotypes=_phenotypes(raw.get("phenotypes")),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise _fail(loc, str(first["msg"]).lower()) from None


def parse_patient_file(text: str, *, source: str = "patient file") -> Patient:
    """Parse file content: JSON or YAML; a FHIR Bundle goes to :func:`patient_from_bundle`."""
    stripped = text.lstrip()
    try:
        data = loads_strict(text) if stripped.startswith(("{", "[")) else yaml.safe_load(text)
    except JsonProblem as exc:
        raise InvalidInput(f"{source}: {exc}") from None
    except RecursionError:
        raise InvalidInput(f"{source}: nested too deeply to read") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise InvalidInput(f"{source}: not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: expected a mapping of patient fields or a FHIR Bundle")
    if data.get("resourceType") == "Bundle":
        patient = patient_from_bundle(data)
        check_birth_date(patient.birth_date, "Patient.birthDate")
        return patient
    if "resourceType" in data:
        raise InvalidInput(
            f"{source}: a FHIR {data['resourceType']} is not accepted; give a Bundle",
            field="resourceType",
        )
    return patient_from_data(data)


def load_patient(path: Path) -> Patient:
    """Read a patient file (JSON/YAML patient format or FHIR Bundle) from ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MissingFile(f"patient file {path} does not exist") from None
    except IsADirectoryError:
        raise InvalidInput(f"patient file {path} is a directory") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"patient file {path} is not UTF-8 text") from None
    return parse_patient_file(text, source=str(path))
