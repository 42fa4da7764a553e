"""Read one patient out of a FHIR R4 Bundle (transaction, collection, searchset, ...).

Plain dicts, read defensively: real bundles (Synthea, EHR exports, CDS Hooks prefetch) are large
and loosely filled, so unknown elements are ignored, but a wrong *type* where we need a value is
an :class:`~ldncare.errors.InvalidInput` naming the resource type, its id and the field.

What is read:

- Patient: id, name, birthDate, gender.
- Condition: code, clinicalStatus, onset/abatement; refuted / entered-in-error ones are dropped.
- MedicationRequest / MedicationStatement: status, medicationCodeableConcept or
  medicationReference (resolved against Medication resources in the bundle or ``contained``),
  dates (authoredOn, effective[x], dispenseRequest.validityPeriod) -> start/end, dosage text.
- Observation: labs mapped by LOINC (below), body weight and height (latest value), pregnancy
  status (LOINC 82810-3).
- AllergyIntolerance: substance and clinical status.

With several Patient resources in the bundle, ``patient_id`` is required and only resources whose
subject/patient reference points to that patient are kept. With one Patient, every clinical
resource in the bundle is taken as that patient's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from pydantic import ValidationError

from ldncare.core.patient import (
    MAX_HEIGHT_CM,
    MAX_WEIGHT_KG,
    Allergy,
    Coding,
    Condition,
    LabKind,
    LabResult,
    MedicationUse,
    Patient,
    trusted,
    unidentified_may_still_act,
)
from ldncare.errors import InvalidInput
from ldncare.fhir.references import (
    contained,
    index_resources,
    parse_reference,
    patient_key,
    resolve,
    resolve_identifier,
)
from ldncare.fhir.tags import is_ldncare_output

LOINC = "http://loinc.org"

#: LOINC codes -> LabKind. Each code was checked against public terminology (LOINC tables in
#: FHIR IGs and OMOP phenotype definitions found with the `search` tool) or Synthea data.
LAB_LOINC: dict[str, LabKind] = {
    # eGFR: MDRD (33914-3, 48642-3, 48643-1, 50044-7, 70969-1), CKD-EPI (62238-1, 88293-6,
    # 88294-4), CKD-EPI 2021 creatinine (98979-8) and creatinine-cystatin C (98980-6),
    # cystatin-based (50210-4).
    "33914-3": "egfr",
    "48642-3": "egfr",
    "48643-1": "egfr",
    "50044-7": "egfr",
    "70969-1": "egfr",
    "62238-1": "egfr",
    "88293-6": "egfr",
    "88294-4": "egfr",
    "98979-8": "egfr",
    "98980-6": "egfr",
    "50210-4": "egfr",
    # Creatinine in serum/plasma (2160-0) and in blood (38483-4, used by Synthea).
    "2160-0": "creatinine",
    "38483-4": "creatinine",
    "1742-6": "alt",
    "1920-8": "ast",
    "1975-2": "bilirubin",
    "1751-7": "albumin",
    "6301-6": "inr",
    "34714-6": "inr",
    # hCG: serum/plasma quantitative (19080-1), beta subunit (21198-7), presence in serum
    # (2118-8) and urine (2106-3, 2112-1, 80384-1).
    "19080-1": "hcg",
    "21198-7": "hcg",
    "2118-8": "hcg",
    "2106-3": "hcg",
    "2112-1": "hcg",
    "80384-1": "hcg",
    "3016-3": "tsh",
    "3015-5": "tsh",
}
BODY_WEIGHT = "29463-7"
BODY_HEIGHT = "8302-2"
PREGNANCY_STATUS = "82810-3"
#: LOINC answer codes of pregnancy status (LL4129-4).
_PREGNANT = {"LA15173-0": True, "LA26683-5": False}

_MED_STATUSES = frozenset(
    {
        "active", "on-hold", "completed", "stopped", "cancelled", "entered-in-error", "draft",
        "intended", "not-taken", "unknown",
    }
)  # fmt: skip
_COND_STATUSES = frozenset({"active", "recurrence", "relapse", "inactive", "remission", "resolved"})
_SKIP_VERIFICATION = frozenset({"refuted", "entered-in-error"})
_SKIP_OBS_STATUS = frozenset({"entered-in-error", "cancelled"})
_CLINICAL = frozenset(
    {"Condition", "MedicationRequest", "MedicationStatement", "Observation", "AllergyIntolerance"}
)
_DATE_RE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")

# Codings repeat across resources and requests (the same LOINC and RxNorm codes), and a Coding
# is frozen, so one validated instance per (system, code, display) is shared. (Building models
# with ``model_construct`` instead was measured slower than validating them, with pydantic 2.)
_CODINGS: dict[tuple[str | None, str, str | None], Coding] = {}
_CODINGS_MAX = 50_000


def _coding(system: str | None, code: str, display: str | None) -> Coding:
    key = (system, code, display)
    found = _CODINGS.get(key)
    if found is None:
        if len(_CODINGS) >= _CODINGS_MAX:
            _CODINGS.clear()
        found = _CODINGS[key] = Coding(system=system, code=code, display=display)
    return found


class _Where:
    """Names a resource in error messages: ``MedicationRequest/abc (entry[3])``."""

    __slots__ = ("_resource", "index", "rtype")

    def __init__(self, index: int, resource: Mapping[str, Any]) -> None:
        self.index = index
        self.rtype = str(resource.get("resourceType"))
        self._resource = resource

    @property
    def label(self) -> str:
        rid = self._resource.get("id")
        return f"{self.rtype}/{rid}" if rid else f"{self.rtype} without id"

    def error(self, field: str, message: str) -> InvalidInput:
        return InvalidInput(
            f"{self.label}: {field} {message}", field=f"entry[{self.index}].resource.{field}"
        )


# The same date strings recur within a bundle and across requests (lab runs, order dates):
# valid ones are remembered, bounded like the codings. Invalid ones are never stored, so each
# still raises its own error.
_DATES: dict[str, date] = {}
_DATES_MAX = 50_000


def parse_fhir_date(value: Any, where: _Where, field: str) -> date | None:
    """FHIR date/dateTime -> date. Partial dates take the first day ("2019-05" -> 1 May)."""
    if value is None:
        return None
    if type(value) is str:
        known = _DATES.get(value)
        if known is not None:
            return known
    elif not isinstance(value, str):
        raise where.error(field, f"must be a date string, got {type(value).__name__}")
    m = _DATE_RE.match(value)
    if not m:
        raise where.error(field, f"{value!r} is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)")
    try:
        day = date(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1))
    except ValueError:
        raise where.error(field, f"{value!r} is not a valid calendar date") from None
    if len(_DATES) >= _DATES_MAX:
        _DATES.clear()
    _DATES[str(value)] = day
    return day


def parse_fhir_birth_date(value: Any, where: _Where, field: str) -> date | None:
    """A birthDate: a partial one takes the latest day it allows ("2008-12" -> 31 December
    2008, "2010" -> 31 December 2010), so a patient who may still be under 18 is never read as
    an adult (the minor check errs towards the younger age)."""
    first = parse_fhir_date(value, where, field)
    if first is None or not isinstance(value, str):
        return first
    m = _DATE_RE.match(value)
    if m is None or m.group(3):
        return first
    if m.group(2):
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return following - timedelta(days=1)
    return date(first.year, 12, 31)


def _obj(value: Any, where: _Where, field: str) -> Mapping[str, Any]:
    if type(value) is dict:  # the common case (parsed JSON), before the generic checks
        return value
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise where.error(field, f"must be an object, got {type(value).__name__}")
    return value


def _list(value: Any, where: _Where, field: str) -> list[Any]:
    if type(value) is list:
        return value
    if value is None:
        return []
    if not isinstance(value, list):
        raise where.error(field, f"must be a list, got {type(value).__name__}")
    return value


def _str(value: Any, where: _Where, field: str) -> str | None:
    if value is None or type(value) is str:
        return value
    if not isinstance(value, str):
        raise where.error(field, f"must be a string, got {type(value).__name__}")
    return value


def _codings(concept: Mapping[str, Any], where: _Where, field: str) -> tuple[Coding, ...]:
    raw_list = concept.get("coding")
    if raw_list is None:
        return ()
    if type(raw_list) is not list:  # field names are formatted only on the error path
        raw_list = _list(raw_list, where, f"{field}.coding")
    out = []
    for i, raw in enumerate(raw_list):
        if type(raw) is dict:  # fast path: plain JSON with string members
            code, system, display = raw.get("code"), raw.get("system"), raw.get("display")
            if (
                type(code) is str
                and (system is None or type(system) is str)
                and (display is None or type(display) is str)
            ):
                out.append(_coding(system, code, display))
                continue
        c = _obj(raw, where, f"{field}.coding[{i}]")
        code = c.get("code")
        if code is None:
            continue
        if type(code) is not str:
            if not isinstance(code, str):
                raise where.error(f"{field}.coding[{i}].code", "must be a string")
            code = str(code)
        system = c.get("system")
        if system is not None and type(system) is not str:
            system = str(_str(system, where, f"{field}.coding[{i}].system"))
        display = c.get("display")
        if display is not None and type(display) is not str:
            display = str(_str(display, where, f"{field}.coding[{i}].display"))
        out.append(_coding(system, code, display))
    return tuple(out)


def _concept_text(concept: Mapping[str, Any], codes: tuple[Coding, ...], where: _Where,
                  field: str) -> str | None:  # fmt: skip
    text = concept.get("text")
    if text is not None and type(text) is not str:
        text = _str(text, where, f"{field}.text")
    if text and text.strip():
        return text.strip()
    for c in codes:
        if c.display:
            return c.display
    # A coding may carry only a display (no code): still the best name there is.
    for raw in _list(concept.get("coding"), where, f"{field}.coding"):
        if isinstance(raw, Mapping) and isinstance(raw.get("display"), str) and raw["display"]:
            return str(raw["display"])
    return codes[0].code if codes else None


def _status_code(concept: Any, where: _Where, field: str) -> str | None:
    if concept is None:
        return None
    if type(concept) is dict:
        # Fast path (every clinicalStatus and verificationStatus of a record): codings that
        # are plain JSON objects with string members, as _codings checks them, give the first
        # code without a Coding built for each; anything else is read the long way below.
        raw_list = concept.get("coding")
        if type(raw_list) is list and raw_list:
            first: str | None = None
            for raw in raw_list:
                if type(raw) is not dict:
                    break
                code, system, display = raw.get("code"), raw.get("system"), raw.get("display")
                if not (
                    type(code) is str
                    and (system is None or type(system) is str)
                    and (display is None or type(display) is str)
                ):
                    break
                if first is None:
                    first = code
            else:
                return first
    obj = _obj(concept, where, field)
    for c in _codings(obj, where, field):
        return c.code
    return None


def _ref(value: Any, where: _Where, field: str) -> str | None:
    return _str(_obj(value, where, field).get("reference"), where, f"{field}.reference")


def _entries(bundle: Any) -> Iterator[tuple[int, str | None, Mapping[str, Any]]]:
    if not isinstance(bundle, Mapping):
        raise InvalidInput(f"expected a FHIR Bundle object, got {type(bundle).__name__}")
    if bundle.get("resourceType") != "Bundle":
        raise InvalidInput(
            f"expected resourceType 'Bundle', got {bundle.get('resourceType')!r}",
            field="resourceType",
        )
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise InvalidInput("Bundle.entry must be a list", field="entry")
    for i, entry in enumerate(entries):
        if type(entry) is not dict and not isinstance(entry, Mapping):
            raise InvalidInput(f"Bundle.entry[{i}] must be an object", field=f"entry[{i}]")
        resource = entry.get("resource")
        if resource is None:
            continue
        if (type(resource) is not dict and not isinstance(resource, Mapping)) or not isinstance(
            resource.get("resourceType"), str
        ):
            raise InvalidInput(
                f"Bundle.entry[{i}].resource must be a FHIR resource with a resourceType",
                field=f"entry[{i}].resource",
            )
        full_url = entry.get("fullUrl")
        yield i, full_url if isinstance(full_url, str) else None, resource


class _BundleReader:
    def __init__(self, bundle: Any, patient_id: str | None) -> None:
        self.items = list(_entries(bundle))
        patients = [(i, u, r) for i, u, r in self.items if r["resourceType"] == "Patient"]
        if not patients:
            raise InvalidInput("Bundle contains no Patient resource", field="entry")
        if patient_id is None:
            if len(patients) > 1:
                ids = ", ".join(str(r.get("id")) for _, _, r in patients)
                raise InvalidInput(
                    f"Bundle holds {len(patients)} Patient resources ({ids}); "
                    "choose one with patient_id",
                    field="patient_id",
                )
            chosen = patients[0]
        else:
            found = [p for p in patients if p[2].get("id") == patient_id]
            if not found:
                ids = ", ".join(str(r.get("id")) for _, _, r in patients)
                raise InvalidInput(
                    f"no Patient with id {patient_id!r} in the Bundle (found: {ids})",
                    field="patient_id",
                )
            chosen = found[0]
        self.patient_index, full_url, self.patient = chosen
        self.single = len(patients) == 1
        pid = self.patient.get("id")
        self.patient_refs = {f"Patient/{pid}", f"urn:uuid:{pid}"}
        if full_url:
            self.patient_refs.add(full_url)
        # Medication resources by every reference form that may point at them.
        self.medications = index_resources(
            (url, r) for _, url, r in self.items if r["resourceType"] == "Medication"
        )
        self.patient_id = pid

    def belongs(self, resource: Mapping[str, Any], where: _Where) -> bool:
        if self.single:
            return True
        ref = _ref(resource.get("subject"), where, "subject") or _ref(
            resource.get("patient"), where, "patient"
        )
        if ref is None:
            return False
        return ref in self.patient_refs or patient_key(ref) == self.patient_id


def find_medication(
    reference: str, medications: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The Medication a (not contained) ``medicationReference`` points at, or None.

    ``medications`` maps ``Medication/id`` and full URLs to the resources. A versioned
    reference (``Medication/x/_history/3``) is looked up without its version: an export or a
    Bundle holds one version of each Medication, and leaving the drug unnamed because the
    version differs would hide it (an opioid, say) from every check.
    """
    return resolve(reference, medications, resource_type="Medication")


def conditional_codes(reference: str) -> tuple[Coding, ...]:
    """The codes a conditional ``Medication?code=system|code`` reference searches for (a comma
    is FHIR's "or": each one is given); none for any other reference."""
    ref = parse_reference(reference)
    if ref is None or ref.kind != "conditional" or ref.resource_type != "Medication":
        return ()
    found: list[Coding] = []
    for name, value in ref.query:
        if name != "code":
            continue
        for token in value.split(","):
            system, _bar, code = token.strip().rpartition("|")
            if code.strip():
                found.append(Coding(system=system.strip() or None, code=code.strip()))
    return tuple(found)


def _flagged_unidentified(resource: Mapping[str, Any]) -> bool:
    """ldncare's own export of a medicine whose drug its source did not identify
    (``patient_export``: extension ``medication-unidentified``)."""
    exts = resource.get("extension")
    return any(
        isinstance(e, Mapping)
        and e.get("url") == f"{EXT}/medication-unidentified"
        and e.get("valueBoolean") is True
        for e in (exts if isinstance(exts, list) else [])
    )


def _exported_record(resource: Mapping[str, Any]) -> str | None:
    """The source record ldncare's own export names for an unidentified medicine (extension
    ``medication-record``), so reading it back gives the same message; None without one."""
    exts = resource.get("extension")
    for e in exts if isinstance(exts, list) else []:
        if (
            isinstance(e, Mapping)
            and e.get("url") == f"{EXT}/medication-record"
            and isinstance(e.get("valueString"), str)
        ):
            return str(e["valueString"])
    return None


def medication_reference_text(resource: Mapping[str, Any]) -> str | None:
    """How a MedicationRequest/Statement names its Medication, for messages: the
    ``medicationReference.reference``, else its identifier written as the conditional reference
    ``Medication?identifier=system|value`` that would find it; None when neither is given."""
    ref_obj = resource.get("medicationReference")
    if not isinstance(ref_obj, Mapping):
        return None
    ref = ref_obj.get("reference")
    if isinstance(ref, str) and ref.strip():
        return ref.strip()
    ident = ref_obj.get("identifier")
    if isinstance(ident, Mapping) and isinstance(ident.get("value"), str):
        system = ident.get("system")
        token = f"{system}|{ident['value']}" if isinstance(system, str) else ident["value"]
        return f"Medication?identifier={token}"
    return None


def _medication(
    resource: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]], where: _Where
) -> MedicationUse:
    status = _str(resource.get("status"), where, "status") or "unknown"
    if status not in _MED_STATUSES:
        raise where.error("status", f"{status!r} is not a MedicationRequest/Statement status")
    codes: tuple[Coding, ...] = ()
    name: str | None = None
    identified = True
    if "medicationCodeableConcept" in resource:
        concept = _obj(resource["medicationCodeableConcept"], where, "medicationCodeableConcept")
        codes = _codings(concept, where, "medicationCodeableConcept")
        name = _concept_text(concept, codes, where, "medicationCodeableConcept")
    elif "medicationReference" in resource:
        ref_obj = _obj(resource["medicationReference"], where, "medicationReference")
        ref = _str(ref_obj.get("reference"), where, "medicationReference.reference")
        med: Mapping[str, Any] | None = None
        if ref and ref.startswith("#"):
            for j, c in enumerate(_list(resource.get("contained"), where, "contained")):
                _obj(c, where, f"contained[{j}]")  # each contained item must be an object
            med = contained(resource, ref, "Medication")
        elif ref:
            med = find_medication(ref, medications)
        elif "identifier" in ref_obj:  # a logical reference: the Medication carrying it
            med = resolve_identifier(ref_obj["identifier"], medications, "Medication")
            ref = medication_reference_text(resource)
        if med is None and ref:
            # A search by code that matches no Medication still names the drug's code
            # (``Medication?code=rxnorm|7804``): classify by it (pharmacist review, case 19).
            codes = conditional_codes(ref)
        if med is not None:
            mwhere = _Where(where.index, med)
            concept = _obj(med.get("code"), mwhere, "code")
            codes = _codings(concept, mwhere, "code")
            name = _concept_text(concept, codes, mwhere, "code")
        if name is None:
            display = _str(ref_obj.get("display"), where, "medicationReference.display")
            fallback = f"medication {ref} without code" if med else f"unresolved medication {ref}"
            # Neither a code, a name nor a display: the drug is unknown (it may be an opioid).
            identified = bool(display)
            name = display or fallback
    if not name:
        raise where.error("medication[x]", "is missing: no medicationCodeableConcept or Reference")
    record = None
    if _flagged_unidentified(resource):
        identified = False
        record = _exported_record(resource)
    elif not identified:
        ref_text = medication_reference_text(resource)
        record = f"{where.label} naming {ref_text}" if ref_text else where.label

    start = end = None
    if where.rtype == "MedicationRequest":
        start = parse_fhir_date(resource.get("authoredOn"), where, "authoredOn")
        dispense = _obj(resource.get("dispenseRequest"), where, "dispenseRequest")
        validity = _obj(dispense.get("validityPeriod"), where, "dispenseRequest.validityPeriod")
        vstart = parse_fhir_date(
            validity.get("start"), where, "dispenseRequest.validityPeriod.start"
        )
        end = parse_fhir_date(validity.get("end"), where, "dispenseRequest.validityPeriod.end")
        start = start or vstart
        if end is None:
            end = _bounds_end(resource, where)
    else:
        if "effectiveDateTime" in resource:
            start = parse_fhir_date(resource["effectiveDateTime"], where, "effectiveDateTime")
        period = _obj(resource.get("effectivePeriod"), where, "effectivePeriod")
        start = start or parse_fhir_date(period.get("start"), where, "effectivePeriod.start")
        end = parse_fhir_date(period.get("end"), where, "effectivePeriod.end")
        start = start or parse_fhir_date(resource.get("dateAsserted"), where, "dateAsserted")

    dose_text = None
    dosage_key = "dosageInstruction" if where.rtype == "MedicationRequest" else "dosage"
    dosages = _list(resource.get(dosage_key), where, dosage_key)
    if dosages:
        first = _obj(dosages[0], where, f"{dosage_key}[0]")
        dose_text = _str(first.get("text"), where, f"{dosage_key}[0].text")
        if dose_text is None:
            rates = _list(first.get("doseAndRate"), where, f"{dosage_key}[0].doseAndRate")
            if rates:
                q = _obj(_obj(rates[0], where, "doseAndRate[0]").get("doseQuantity"), where,
                         f"{dosage_key}[0].doseAndRate[0].doseQuantity")  # fmt: skip
                if isinstance(q.get("value"), int | float):
                    unit = q.get("unit") or q.get("code") or ""
                    dose_text = f"{q['value']} {unit}".strip() + _timing_text(first.get("timing"))
    # Every value checked above (status among the FHIR ones, dates parsed, strings checked):
    # built without validating again (core.patient.trusted).
    return trusted(
        MedicationUse,
        {
            "name": name,
            "codes": codes,
            "status": status,
            "start": start,
            "end": end,
            "dose_text": dose_text,
            "identified": identified,
            "record": record,
        },
    )


def _bounds_end(resource: Mapping[str, Any], where: _Where) -> date | None:
    """End of ``dosageInstruction[0].timing.repeat.boundsPeriod``: when the course was written
    to stop, for an order without a dispense validity end."""
    dosages = _list(resource.get("dosageInstruction"), where, "dosageInstruction")
    if not dosages:
        return None
    timing = _obj(_obj(dosages[0], where, "dosageInstruction[0]").get("timing"), where,
                  "dosageInstruction[0].timing")  # fmt: skip
    repeat = _obj(timing.get("repeat"), where, "dosageInstruction[0].timing.repeat")
    bounds = _obj(
        repeat.get("boundsPeriod"), where, "dosageInstruction[0].timing.repeat.boundsPeriod"
    )
    return parse_fhir_date(
        bounds.get("end"), where, "dosageInstruction[0].timing.repeat.boundsPeriod.end"
    )


def _condition(resource: Mapping[str, Any], where: _Where) -> Condition | None:
    verification = _status_code(resource.get("verificationStatus"), where, "verificationStatus")
    if verification in _SKIP_VERIFICATION:
        return None
    concept = _obj(resource.get("code"), where, "code")
    codes = _codings(concept, where, "code")
    display = _concept_text(concept, codes, where, "code")
    if display is None:
        raise where.error("code", "is missing: a Condition needs a code or text")
    onset = parse_fhir_date(resource.get("onsetDateTime"), where, "onsetDateTime")
    if onset is None:
        period = _obj(resource.get("onsetPeriod"), where, "onsetPeriod")
        onset = parse_fhir_date(period.get("start"), where, "onsetPeriod.start")
    abatement = parse_fhir_date(resource.get("abatementDateTime"), where, "abatementDateTime")
    if abatement is None:
        period = _obj(resource.get("abatementPeriod"), where, "abatementPeriod")
        abatement = parse_fhir_date(period.get("end"), where, "abatementPeriod.end")
    status = _status_code(resource.get("clinicalStatus"), where, "clinicalStatus")
    if status is None:
        status = "resolved" if abatement else "active"
    if status not in _COND_STATUSES:
        raise where.error("clinicalStatus", f"{status!r} is not a Condition clinical status")
    return trusted(
        Condition,
        {
            "display": display,
            "codes": codes,
            "clinical_status": status,
            "onset": onset,
            "abatement": abatement,
        },
    )


def _allergy(resource: Mapping[str, Any], where: _Where) -> Allergy | None:
    verification = _status_code(resource.get("verificationStatus"), where, "verificationStatus")
    if verification in _SKIP_VERIFICATION:
        return None
    concept = _obj(resource.get("code"), where, "code")
    codes = _codings(concept, where, "code")
    substance = _concept_text(concept, codes, where, "code")
    if substance is None:
        return None
    status = _status_code(resource.get("clinicalStatus"), where, "clinicalStatus")
    return trusted(
        Allergy, {"substance": substance, "codes": codes, "active": status in (None, "active")}
    )


def _obs_date(resource: Mapping[str, Any], where: _Where) -> date | None:
    if "effectiveDateTime" in resource:
        return parse_fhir_date(resource["effectiveDateTime"], where, "effectiveDateTime")
    period = _obj(resource.get("effectivePeriod"), where, "effectivePeriod")
    if period:
        return parse_fhir_date(period.get("start"), where, "effectivePeriod.start")
    return parse_fhir_date(resource.get("issued"), where, "issued")


def _quantity(resource: Mapping[str, Any], where: _Where) -> tuple[float | None, str | None]:
    q = _obj(resource.get("valueQuantity"), where, "valueQuantity")
    if not q:
        return None, None
    value = q.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise where.error("valueQuantity.value", f"must be a number, got {value!r}")
    unit = q.get("unit") or q.get("code")
    return (float(value) if value is not None else None), (str(unit) if unit else None)


_WEIGHT_TO_KG = {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237, "lb": 0.45359237, "lbs": 0.45359237}
_HEIGHT_TO_CM = {"cm": 1.0, "m": 100.0, "mm": 0.1, "[in_i]": 2.54, "in": 2.54}


EXT = "https://ldncare.org/fhir/StructureDefinition"


def _extensions(patient: Mapping[str, Any], where: _Where) -> dict[str, Any]:
    """ldncare's own Patient extensions (written by ``patient_export``), when present."""
    out: dict[str, Any] = {}
    phenotypes: dict[str, str] = {}
    for i, ext in enumerate(_list(patient.get("extension", []), where, "extension")):
        ext = _obj(ext, where, f"extension[{i}]")
        url = ext.get("url")
        if url == f"{EXT}/planned-surgery":
            out["planned_surgery"] = parse_fhir_date(ext.get("valueDate"), where, "extension")
        elif url in (f"{EXT}/frail", f"{EXT}/breastfeeding"):
            value = ext.get("valueBoolean")
            if not isinstance(value, bool):
                raise where.error(f"extension[{i}].valueBoolean", "must be true or false")
            out[url.rsplit("/", 1)[1]] = value
        elif url == f"{EXT}/phenotype":
            parts = {
                p.get("url"): p.get("valueString")
                for p in ext.get("extension", [])
                if isinstance(p, Mapping)
            }
            gene, phenotype = parts.get("gene"), parts.get("phenotype")
            if isinstance(gene, str) and isinstance(phenotype, str):
                phenotypes[gene] = phenotype
    if phenotypes:
        out["phenotypes"] = phenotypes
    return out


#: FHIR R4 timing abbreviations that say how many doses a day (value set
#: timing-abbreviation); written out so that the daily total of a current dose can be read.
_TIMING_CODES = {"QD": "once a day", "BID": "twice a day", "TID": "three times a day",
                 "QID": "four times a day", "AM": "once a day", "PM": "once a day",
                 "QOD": "every other day"}  # fmt: skip


def _timing_text(timing: Any) -> str:
    """The dose frequency of a structured Timing as words to append to the dose (" 3 times a
    day", " every 6 hours", " twice a day"); empty when no daily total can be read from it."""
    if not isinstance(timing, Mapping):
        return ""
    repeat = timing.get("repeat")
    if isinstance(repeat, Mapping):
        freq, period, unit = repeat.get("frequency"), repeat.get("period"), repeat.get("periodUnit")
        if isinstance(freq, int) and freq > 0 and period in (1, None) and unit == "d":
            return f" {freq} times a day"
        if freq in (1, None) and isinstance(period, int | float) and period > 0 and unit == "h":
            return f" every {period:g} hours"
    code = timing.get("code")
    if isinstance(code, Mapping):
        for coding in code.get("coding") or []:
            if isinstance(coding, Mapping) and coding.get("code") in _TIMING_CODES:
                return " " + _TIMING_CODES[str(coding["code"])]
    return ""


def unidentified_medicines(
    resources: Iterable[Mapping[str, Any]],
    medications: Mapping[str, Mapping[str, Any]],
    as_of: date,
    interval_days: int,
) -> list[str]:
    """How each MedicationRequest/MedicationStatement of ``resources`` in use, or ended less
    than ``interval_days`` ago (the longest opioid-free interval) or with no stop date, names a
    drug that ``medications`` (Medication resources by every key, :func:`index_resources`)
    cannot identify: the references (or ``Medication?identifier=`` for a logical one) a CDS
    service must fetch, or answer 412 for, before deciding. Read as :func:`patient_from_bundle`
    reads them (so what it would flag with rule ``ldn.medication.unidentified`` or
    ``ldn.medication.unidentified_stopped`` is listed); unreadable ones are skipped, as the
    patient reader skips them for CDS Hooks."""
    refs: list[str] = []
    for r in resources:
        if r.get("resourceType") not in ("MedicationRequest", "MedicationStatement"):
            continue
        if "medicationReference" not in r or "medicationCodeableConcept" in r:
            continue
        try:
            med = medication_from_resource(r, medications)
        except InvalidInput:
            continue
        if med is None or not unidentified_may_still_act(med, as_of, interval_days):
            continue
        ref = medication_reference_text(r) or "medicationReference (empty)"
        if ref not in refs:
            refs.append(ref)
    return refs


def medication_from_resource(
    resource: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]] | None = None
) -> MedicationUse | None:
    """One MedicationRequest or MedicationStatement read on its own (a CDS Hooks draft order).

    The same as the medication :func:`patient_from_bundle` reads from a Bundle holding only
    this resource, a Patient and the ``medications`` (Medication resources by ``Medication/id``
    and full URL): ``None`` for ldncare's own output, :class:`InvalidInput` for what it would
    reject; references to Medication resources not given stay unresolved.
    """
    if "meta" in resource and is_ldncare_output(resource):
        return None
    return _medication(resource, medications or {}, _Where(1, resource))


def patient_from_bundle(
    bundle: dict[str, Any], *, patient_id: str | None = None, latest_labs_only: bool = False
) -> Patient:
    """Build the core :class:`Patient` from a FHIR R4 Bundle.

    ``latest_labs_only`` keeps one lab result per kind: the one
    :meth:`Patient.latest_lab` would pick from the full list (latest date, the first in bundle
    order on a tie). The clinical core reads labs only through ``latest_lab``, so decisions are
    the same; a CDS Hooks call that only decides (prefetch may hold up to 100 labs) then
    builds a few lab models instead of all of them. Every lab's date is still parsed and
    checked; the values of the labs left out are not read, and an Observation whose codes are
    none ldncare reads (blood pressure, BMI: most of a Synthea record) is not read at all.
    """
    reader = _BundleReader(bundle, patient_id)
    pwhere = _Where(reader.patient_index, reader.patient)
    _patient_id(reader.patient, pwhere)  # before any resource: the first error to name
    parts = _PatientParts(reader.medications, latest_labs_only)
    for index, _url, resource in reader.items:
        rtype = resource["resourceType"]
        if rtype not in _CLINICAL:
            continue
        if latest_labs_only and rtype == "Observation" and reads_nothing_of(resource):
            continue  # a vital sign or lab ldncare never reads (most of a Synthea record)
        where = _Where(index, resource)
        if ("meta" in resource and is_ldncare_output(resource)) or not reader.belongs(
            resource, where
        ):
            continue  # ldncare's own plan output is not patient data
        parts.add(resource, where)
    return parts.patient(reader.patient, pwhere)


def patient_from_resources(
    patient: Mapping[str, Any],
    resources: Iterable[Mapping[str, Any]],
    medications: Mapping[str, Mapping[str, Any]],
) -> Patient:
    """The core :class:`Patient` from ``patient`` and the resources of that patient alone (a
    CDS Hooks prefetch), read once each: the same as ``patient_from_bundle(latest_labs_only=
    True)`` on a Bundle of ``patient`` followed by ``resources``, without building one.

    ``medications`` is the index :func:`~ldncare.fhir.references.index_resources` makes of the
    Medication resources a ``medicationReference`` may point at. A resource that is not a
    clinical one ldncare reads is skipped; errors name the resource as its position in that
    Bundle would (``entry[i]``). Every Observation given is read: the caller leaves out those
    :func:`reads_nothing_of` (once, before its other work with them; reading one gives nothing
    either way, so this only saves time).
    """
    _patient_id(patient, _Where(0, patient))
    parts = _PatientParts(medications, latest_labs_only=True)
    for index, resource in enumerate(resources, start=1):
        rtype = resource.get("resourceType")
        if rtype not in _CLINICAL:
            continue
        if "meta" in resource and is_ldncare_output(resource):
            continue
        parts.add(resource, _Where(index, resource))
    return parts.patient(patient, _Where(0, patient))


def patient_from_group(
    patient: Mapping[str, Any],
    resources: Sequence[Mapping[str, Any]],
    medications: Mapping[str, Mapping[str, Any]],
) -> Patient:
    """The core :class:`Patient` of one import group (the importer's lean path, issue 20):
    the same as :func:`patient_from_bundle` (every lab kept) on a collection Bundle of
    ``patient`` followed by ``resources`` and then Medication entries, without building that
    Bundle or checking its entries again: the caller's resources are already dicts with a
    string ``resourceType``, none of them a Patient or a Medication, all of this patient.

    ``medications`` is the index :func:`~ldncare.fhir.references.index_resources` makes of
    those Medication entries. Errors name a resource as its position in that Bundle would
    (``entry[i]``, the patient ``entry[0]``). :func:`patient_from_resources` is the same with
    one lab per kind (CDS Hooks decides; an import stores every lab).
    """
    pwhere = _Where(0, patient)
    _patient_id(patient, pwhere)
    parts = _PatientParts(medications, latest_labs_only=False)
    clinical = _CLINICAL
    for index, resource in enumerate(resources, start=1):
        if resource["resourceType"] not in clinical:
            continue
        if "meta" in resource and is_ldncare_output(resource):
            continue
        parts.add(resource, _Where(index, resource))
    return parts.patient(patient, pwhere)


def _patient_id(patient: Mapping[str, Any], where: _Where) -> str:
    pid = patient.get("id")
    if not isinstance(pid, str) or not pid:
        raise where.error("id", "is missing: the Patient needs an id")
    return pid


class _PatientParts:
    """What the clinical resources of one patient add up to, read one resource at a time (the
    FHIR -> core rules of every reader of a patient: Bundle, CDS Hooks prefetch)."""

    def __init__(
        self, medications: Mapping[str, Mapping[str, Any]], latest_labs_only: bool
    ) -> None:
        self.medications_index = medications
        self.latest_labs_only = latest_labs_only
        self.conditions: list[Condition] = []
        self.medications: list[MedicationUse] = []
        self.labs: list[LabResult] = []
        self.allergies: list[Allergy] = []
        self.weight: tuple[date, float] | None = None
        self.height: tuple[date, float] | None = None
        self.pregnant: tuple[date, bool] | None = None
        self.latest: dict[LabKind, tuple[date, Mapping[str, Any], _Where, Coding, date | None]] = {}

    def add(self, resource: Mapping[str, Any], where: _Where) -> None:
        """Read one Condition, MedicationRequest/Statement, AllergyIntolerance or Observation
        of this patient (ldncare's own output already left out)."""
        rtype = where.rtype
        if rtype == "Condition":
            cond = _condition(resource, where)
            if cond is not None:
                self.conditions.append(cond)
        elif rtype in ("MedicationRequest", "MedicationStatement"):
            self.medications.append(_medication(resource, self.medications_index, where))
        elif rtype == "AllergyIntolerance":
            allergy = _allergy(resource, where)
            if allergy is not None:
                self.allergies.append(allergy)
        else:
            self._observation(resource, where)

    def _observation(self, resource: Mapping[str, Any], where: _Where) -> None:
        if self.latest_labs_only and self._latest_lab_plainly(resource, where):
            return
        self._observation_checked(resource, where)

    def _latest_lab_plainly(self, resource: Mapping[str, Any], where: _Where) -> bool:
        """The common lab or vital sign of a CDS Hooks prefetch -- a string status, a list of
        plain codings whose first read code is a lab's, the weight or the height -- read
        without a Coding built for each coding; False (nothing done) for anything else, which
        :meth:`_observation_checked` reads with every check. Same result, same errors."""
        status = resource.get("status")
        concept = resource.get("code")
        if (status is not None and type(status) is not str) or type(concept) is not dict:
            return False
        codings = concept.get("coding")
        if type(codings) is not list:
            return False
        found: tuple[str | None, str, str | None] | None = None
        for raw in codings:
            if type(raw) is not dict:
                return False
            code, system, display = raw.get("code"), raw.get("system"), raw.get("display")
            if not (
                type(code) is str
                and (system is None or type(system) is str)
                and (display is None or type(display) is str)
            ):
                return False
            if system is None or system == LOINC:
                if code != code.strip():
                    return False  # a padded code may be refused: the long way says so
                if found is None and code in _READ_CODES:
                    found = (system, code, display)
        if found is None or found[1] == PREGNANCY_STATUS:
            return False
        if status in _SKIP_OBS_STATUS:
            return True
        when = _obs_date(resource, where)
        rank = when or date.min
        code = found[1]
        if code == BODY_WEIGHT:
            self._weight(resource, where, rank)
        elif code == BODY_HEIGHT:
            self._height(resource, where, rank)
        else:
            kind = LAB_LOINC[code]
            if kind not in self.latest or rank > self.latest[kind][0]:
                self.latest[kind] = (rank, resource, where, _coding(*found), when)
        return True

    def _weight(self, resource: Mapping[str, Any], where: _Where, rank: date) -> None:
        value, unit = _quantity(resource, where)
        factor = _WEIGHT_TO_KG.get(unit or "kg")
        if value is not None and factor and (self.weight is None or rank >= self.weight[0]):
            self.weight = (rank, round(value * factor, 2))

    def _height(self, resource: Mapping[str, Any], where: _Where, rank: date) -> None:
        value, unit = _quantity(resource, where)
        factor = _HEIGHT_TO_CM.get(unit or "cm")
        if value is not None and factor and (self.height is None or rank >= self.height[0]):
            self.height = (rank, round(value * factor, 1))

    def _observation_checked(self, resource: Mapping[str, Any], where: _Where) -> None:
        if _str(resource.get("status"), where, "status") in _SKIP_OBS_STATUS:
            return
        concept = _obj(resource.get("code"), where, "code")
        loincs = [c for c in _codings(concept, where, "code") if c.system in (LOINC, None)]
        _refuse_padded_codes(loincs, where)
        when = _obs_date(resource, where)
        rank = when or date.min
        for coding in loincs:
            code = coding.code
            if code == BODY_WEIGHT:
                self._weight(resource, where, rank)
            elif code == BODY_HEIGHT:
                self._height(resource, where, rank)
            elif code == PREGNANCY_STATUS:
                answer = _obj(resource.get("valueCodeableConcept"), where,
                              "valueCodeableConcept")  # fmt: skip
                for c in _codings(answer, where, "valueCodeableConcept"):
                    if c.code in _PREGNANT and (self.pregnant is None or rank >= self.pregnant[0]):
                        self.pregnant = (rank, _PREGNANT[c.code])
            elif code in LAB_LOINC:
                kind = LAB_LOINC[code]
                if not self.latest_labs_only:
                    self.labs.append(_lab(resource, where, kind, coding, when))
                elif kind not in self.latest or rank > self.latest[kind][0]:
                    self.latest[kind] = (rank, resource, where, coding, when)
            else:
                continue
            break

    def patient(self, patient: Mapping[str, Any], pwhere: _Where) -> Patient:
        """The core Patient: ``patient`` (the FHIR Patient) with everything added."""
        pid = _patient_id(patient, pwhere)
        labs = self.labs + [
            _lab(r, w, kind, c, when) for kind, (_, r, w, c, when) in self.latest.items()
        ]
        name = _patient_name(patient, pwhere)
        gender = _str(patient.get("gender"), pwhere, "gender") or "unknown"
        if gender not in ("female", "male", "other", "unknown"):
            raise pwhere.error("gender", f"{gender!r} is not one of female, male, other, unknown")
        weight = self.weight[1] if self.weight else None
        height = self.height[1] if self.height else None
        fields: dict[str, Any] = {
            "id": pid,
            "name": name,
            "birth_date": parse_fhir_birth_date(patient.get("birthDate"), pwhere, "birthDate"),
            "sex": gender,
            "weight_kg": weight,
            "height_cm": height,
            "conditions": tuple(self.conditions),
            "medications": tuple(self.medications),
            "labs": tuple(labs),
            "allergies": tuple(self.allergies),
            "pregnant": self.pregnant[1] if self.pregnant else None,
            "breastfeeding": None,
            "planned_surgery": None,
            "frail": None,
            "phenotypes": {},
        }
        fields.update(_extensions(patient, pwhere))
        # Every value is read and checked above; only the weight and height bounds are the
        # model's own: inside them it is built without validating again (core.patient.trusted),
        # outside them the model says what is wrong.
        if (weight is None or 0 < weight <= MAX_WEIGHT_KG) and (
            height is None or 0 < height <= MAX_HEIGHT_CM
        ):
            return trusted(Patient, fields)
        try:
            return Patient(**fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise InvalidInput(f"Patient/{pid}: {loc} {first['msg']}", field=loc) from None


def _refuse_padded_codes(codings: Sequence[Coding], where: _Where) -> None:
    """A LOINC code with leading or trailing whitespace (``" 33914-3"``) that the reader would
    take once trimmed is refused aloud, never read as "some other code" and dropped: a FHIR
    ``code`` has no leading or trailing whitespace (FHIR R4 datatypes, code: regex
    ``[^\\s]+( [^\\s]+)*``, https://hl7.org/fhir/R4/datatypes.html#code)."""
    for coding in codings:
        code = coding.code
        if code != code.strip() and code.strip() in _READ_CODES:
            raise where.error(
                "code.coding.code",
                f"{code!r} has leading or trailing whitespace, which a FHIR code may not have; "
                f"it reads as the LOINC code {code.strip()!r}, but it is not taken as that "
                "unasked: remove the whitespace in the source system and export again",
            )


#: The Observation codes the reader takes anything from.
_READ_CODES = frozenset({BODY_WEIGHT, BODY_HEIGHT, PREGNANCY_STATUS, *LAB_LOINC})


def reads_nothing_of(observation: Mapping[str, Any]) -> bool:
    """Whether an Observation plainly has no code the reader takes anything from: a list of
    plain codings, none of them one of :data:`_READ_CODES`. Anything unusual in its ``code``
    (no coding list, a coding that is not an object) is read the long way, with its checks."""
    concept = observation.get("code")
    if type(concept) is not dict:
        return False
    codings = concept.get("coding")
    if type(codings) is not list or not codings:
        return False
    for c in codings:
        if type(c) is not dict:
            return False
        code = c.get("code")
        if type(code) is not str or code in _READ_CODES or code != code.strip():
            return False
    return True


def _lab(resource: Mapping[str, Any], where: _Where, kind: LabKind, coding: Coding,
         when: date | None) -> LabResult:  # fmt: skip
    value, unit = _quantity(resource, where)
    value_text = _str(resource.get("valueString"), where, "valueString")
    if value_text is None and "valueCodeableConcept" in resource:
        answer = _obj(resource["valueCodeableConcept"], where, "valueCodeableConcept")
        value_text = _concept_text(
            answer, _codings(answer, where, "valueCodeableConcept"), where, "valueCodeableConcept"
        )
    upper: float | None = None
    ranges = _list(resource.get("referenceRange"), where, "referenceRange")
    if ranges:
        high = _obj(_obj(ranges[0], where, "referenceRange[0]").get("high"), where,
                    "referenceRange[0].high")  # fmt: skip
        hv = high.get("value")
        if isinstance(hv, int | float) and not isinstance(hv, bool):
            upper = float(hv)
    return trusted(
        LabResult,
        {
            "kind": kind,
            "value": value,
            "value_text": value_text,
            "unit": unit,
            "date": when,
            "loinc": coding.code,
            "display": coding.display,
            "upper_limit": upper,
        },
    )


def _patient_name(patient: Mapping[str, Any], where: _Where) -> str | None:
    names = _list(patient.get("name"), where, "name")
    if not names:
        return None
    official = next(
        (n for n in names if isinstance(n, Mapping) and n.get("use") == "official"), names[0]
    )
    first = _obj(official, where, "name[0]")
    text = _str(first.get("text"), where, "name[0].text")
    if text:
        return text
    given = [g for g in _list(first.get("given"), where, "name[0].given") if isinstance(g, str)]
    family = _str(first.get("family"), where, "name[0].family")
    parts = [*given, *([family] if family else [])]
    return " ".join(parts) or None
