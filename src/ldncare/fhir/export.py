"""Export an ldncare plan (the ``ldncare.plan/1`` contract) as a FHIR R4 ``collection`` Bundle.

The Bundle holds, all linked by ``urn:uuid`` full URLs so that it stands on its own:

- one ``CarePlan`` (status ``active``, intent ``plan``) whose activities are the LDN
  ``MedicationRequest`` (by reference), one ``detail`` activity per care item (physical therapy,
  nerve block, lifestyle, referral, monitoring, ...) and the review appointment;
- one ``MedicationRequest`` for LDN whose ``dosageInstruction`` carries the titration, one
  ``Dosage`` per step in ``sequence`` order with ``timing.repeat.boundsPeriod`` and the dose in
  UCUM milligrams. Its intent is ``plan``: ldncare proposes, the prescriber orders.
  **When LDN is not recommended** (a contraindication was found) the plan has no schedule and
  *no* ``MedicationRequest`` is exported at all -- not even a ``draft`` one -- so that an EHR
  can never turn a contraindicated proposal into an order by signing it. The CarePlan then
  carries only the care activities and the ``DetectedIssue`` resources explain why;
- one ``DetectedIssue`` per contraindication or warning finding (``info`` findings are not
  issues); codes are from the HL7 v3 ActCode detected-issue hierarchy;
- optionally one ``Observation`` per diary day with an average pain score (LOINC 72514-3); a
  day given as a whole ``DiaryEntry`` also carries the day itself (extension
  :data:`~ldncare.fhir.tags.DIARY_ENTRY_EXT`, read back on import), and a day with no pain
  score but something else recorded (a dose, a side effect) is exported too, its value
  absent with the data-absent-reason ``unknown``.

Codes used here, and where they were checked:

- RxNorm ingredient 7243 = naltrexone (facts.md; ``ldn.yaml`` ``rxnorm_ingredient``).
- LOINC 72514-3 "Pain severity - 0-10 verbal numeric rating [Score] - Reported" (facts.md;
  display confirmed on a LOINC code page found with the search tool).
- v3 ActCode DRG "Drug Interaction Alert", DUPTHPY "Duplicate Therapy Alert", ALGY "Allergy
  Alert", COND "Condition Alert", PREG "Pregnancy Alert", LACT "Lactation Alert", AGE "Age
  Alert", LAB "Lab Alert": the ActCode detected-issue value set (HL7 THO ValueSet
  detectedissue-code, and the v3 value set 2.16.840.1.113883.1.11.16656 listing), and the
  official R4 examples DetectedIssue-ddi (DRG) and DetectedIssue-duplicate (DUPTHPY).
  ActCode has no generic "contraindication" code; a finding whose rule maps to none of these
  gets a text-only ``code``.
- ``when`` HS (before sleep) / MORN (morning): the R4 event-timing value set.

:func:`validate_bundle` checks the result with the ``fhir.resources`` R4B models (structure,
cardinality, data types) and adds what those models do not check: required code bindings of
the status elements, ``boundsPeriod`` end not before start, dosage ``sequence`` order,
contiguous titration steps, and the LDN ceiling.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from ldncare.core.diary import DiaryEntry
from ldncare.core.plan_contract import (
    SCHEMA_ID,
    CareItem,
    Citation,
    Finding,
    PlanContract,
    ScheduleStep,
    read_plan,
)
from ldncare.fhir.tags import (
    OUTPUT_TAG,
    contract_extension,
    diary_extension,
    evidence_extension,
    is_ldncare_output,
)

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"

NALTREXONE_RXCUI = "7243"
NALTREXONE_TEXT = "naltrexone (low dose, compounded)"
PAIN_LOINC = "72514-3"
PAIN_DISPLAY = "Pain severity - 0-10 verbal numeric rating [Score] - Reported"

#: Fixed namespace so that the same plan always exports with the same resource ids.
_NAMESPACE = uuid.UUID("5f0c7a52-3d0e-4c57-9a51-7d1c0f6e2b11")

_WHEN = {"bedtime": "HS", "morning": "MORN"}

#: ActCode detected-issue code per rule-id prefix (first match wins; see the module docstring).
_ISSUE_CODES: tuple[tuple[str, str, str], ...] = (
    ("ldn.opioid.", "DRG", "Drug Interaction Alert"),
    ("ldn.thyroid.levothyroxine", "DRG", "Drug Interaction Alert"),
    ("ldn.immunosuppressant", "DRG", "Drug Interaction Alert"),
    ("ldn.naltrexone.current", "DUPTHPY", "Duplicate Therapy Alert"),
    ("ldn.allergy.", "ALGY", "Allergy Alert"),
    ("ldn.pregnancy", "PREG", "Pregnancy Alert"),
    ("ldn.breastfeeding", "LACT", "Lactation Alert"),
    ("ldn.age.", "AGE", "Age Alert"),
    ("ldn.hepatic.enzymes", "LAB", "Lab Alert"),
    ("ldn.hepatic.", "COND", "Condition Alert"),
    ("ldn.renal.", "COND", "Condition Alert"),
    ("ldn.oud.", "COND", "Condition Alert"),
    ("ldn.thyroid.autoimmune", "COND", "Condition Alert"),
    ("ldn.frailty", "COND", "Condition Alert"),
    ("ldn.surgery.", "COND", "Condition Alert"),
)
_ISSUE_SEVERITY = {"contraindication": "high", "warning": "moderate"}

#: Required bindings (R4) of the status/intent elements we emit.
_REQUIRED_CODES: dict[tuple[str, str], frozenset[str]] = {
    ("CarePlan", "status"): frozenset(
        {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
    ),
    ("CarePlan", "intent"): frozenset({"proposal", "plan", "order", "option"}),
    ("MedicationRequest", "status"): frozenset(
        {
            "active",
            "on-hold",
            "cancelled",
            "completed",
            "entered-in-error",
            "stopped",
            "draft",
            "unknown",
        }
    ),
    ("MedicationRequest", "intent"): frozenset(
        {
            "proposal",
            "plan",
            "order",
            "original-order",
            "reflex-order",
            "filler-order",
            "instance-order",
            "option",
        }
    ),
    ("DetectedIssue", "status"): frozenset(
        {
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown",
        }
    ),
    ("DetectedIssue", "severity"): frozenset({"high", "moderate", "low"}),
    ("Observation", "status"): frozenset(
        {
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown",
        }
    ),
}
_ACTIVITY_STATUS = frozenset(
    {
        "not-started",
        "scheduled",
        "in-progress",
        "on-hold",
        "completed",
        "cancelled",
        "stopped",
        "unknown",
        "entered-in-error",
    }
)
_EVENT_TIMING = frozenset({"HS", "MORN", "WAKE", "C", "CM", "CD", "CV", "AC", "PC", "NIGHT"})


class PainDiaryDay(Protocol):
    """What the export needs from one diary entry (``ldncare.core.diary.DiaryEntry`` fits)."""

    @property
    def day(self) -> date: ...

    @property
    def pain_avg(self) -> int | None: ...


def _urn(*parts: str) -> str:
    return "urn:uuid:" + str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _entry(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    resource = {
        "resourceType": resource["resourceType"],
        "meta": {"tag": [dict(OUTPUT_TAG)]},
        **{k: v for k, v in resource.items() if k != "resourceType"},
    }
    return {"fullUrl": full_url, "resource": resource}


def _citation_url(citation: Citation) -> str | None:
    if citation.url:
        return citation.url
    if citation.pmid:
        return f"https://pubmed.ncbi.nlm.nih.gov/{citation.pmid}/"
    if citation.doi:
        return f"https://doi.org/{citation.doi}"
    return None


def _issue_code(rule: str) -> dict[str, Any]:
    for prefix, code, display in _ISSUE_CODES:
        if rule.startswith(prefix):
            return {
                "coding": [{"system": ACT_CODE, "code": code, "display": display}],
                "text": rule,
            }
    return {"text": rule}


def _dosage(step: ScheduleStep) -> dict[str, Any]:
    dose_mg = Decimal(str(step.dose.value))
    when = _WHEN.get(step.time_of_day, "HS")
    value: int | float = int(dose_mg) if dose_mg == dose_mg.to_integral() else float(dose_mg)
    return {
        "sequence": step.step,
        "text": step.instruction,
        "timing": {
            "repeat": {
                "boundsPeriod": {
                    "start": step.start_date.isoformat(),
                    "end": step.end_date.isoformat(),
                },
                "frequency": 1,
                "period": 1,
                "periodUnit": "d",
                "when": [when],
            }
        },
        "doseAndRate": [
            {"doseQuantity": {"value": value, "unit": "mg", "system": UCUM, "code": "mg"}}
        ],
    }


def _medication_request(
    plan: PlanContract, patient_ref: str, cite: Mapping[str, Citation]
) -> dict[str, Any]:
    ldn = plan.ldn
    steps = sorted(ldn.schedule, key=lambda s: s.step)
    # The off-label wording is the evidence base's own notice (care item of kind "notice").
    notices = [c.text for c in plan.care if c.kind == "notice"]
    notes = notices or ["Off-label use of naltrexone at low dose; compounded."]
    notes.append(f"Maximum {ldn.max_daily_dose_mg:g} mg a day.")
    if ldn.formulation:
        notes.append(f"Formulation: {ldn.formulation}.")
    notes += ldn.notes
    refs = [cite[c].reference for c in ldn.citations if c in cite]
    if refs:
        notes.append("Basis: " + "; ".join(refs))
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "plan",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": NALTREXONE_RXCUI, "display": "naltrexone"}],
            "text": NALTREXONE_TEXT,
        },
        "subject": {"reference": patient_ref},
        "authoredOn": plan.as_of.isoformat(),
        "note": [{"text": n} for n in notes],
        "dosageInstruction": [_dosage(s) for s in steps],
    }
    return resource


def _detected_issue(
    finding: Finding,
    plan: PlanContract,
    patient_ref: str,
    implicated: str | None,
    cite: Mapping[str, Citation],
) -> dict[str, Any]:
    citations = [cite[c] for c in finding.citations if c in cite]
    evidence_refs: list[dict[str, Any]] = [{"display": f"Rationale: {finding.rationale}"}]
    evidence_refs += [{"display": c.reference} for c in citations]
    resource: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "status": "final",
        "code": _issue_code(finding.rule),
        "severity": _ISSUE_SEVERITY[finding.severity],
        "patient": {"reference": patient_ref},
        "identifiedDateTime": plan.as_of.isoformat(),
        "detail": finding.message,
        "evidence": [{"detail": evidence_refs}],
    }
    urls = [u for u in map(_citation_url, citations) if u]
    if urls:
        resource["reference"] = urls[0]
    if implicated:
        resource["implicated"] = [{"reference": implicated}]
    return resource


def _pain_observation(day: PainDiaryDay, patient_ref: str) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Observation"}
    if isinstance(day, DiaryEntry):
        resource["extension"] = [diary_extension(day)]
    resource |= {
        "status": "final",
        "category": [
            {"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}
        ],
        "code": {
            "coding": [{"system": LOINC, "code": PAIN_LOINC, "display": PAIN_DISPLAY}],
            "text": "Average pain today (0-10)",
        },
        "subject": {"reference": patient_ref},
        "effectiveDateTime": day.day.isoformat(),
    }
    if day.pain_avg is None:
        resource["dataAbsentReason"] = {
            "coding": [{"system": DATA_ABSENT_REASON, "code": "unknown"}]
        }
    else:
        resource["valueInteger"] = day.pain_avg
    return resource


def _recorded(day: PainDiaryDay) -> bool:
    """A day worth exporting: a pain score, or (a whole diary day) anything else recorded."""
    if day.pain_avg is not None:
        return True
    return isinstance(day, DiaryEntry) and day != DiaryEntry(day=day.day)


def _care_activity(item: CareItem, review: str | None) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "kind": "ServiceRequest" if item.kind in {"referral", "physical_therapy"} else None,
        "code": {"text": item.title},
        "status": "not-started",
        "description": item.text,
    }
    if item.kind == "monitoring" and review:
        detail["scheduledString"] = f"Review on {review}"
    return {"detail": {k: v for k, v in detail.items() if v is not None}}


def plan_to_bundle(
    contract: Mapping[str, Any],
    *,
    patient_ref: str,
    diary: Iterable[PainDiaryDay] = (),
    earlier: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Turn the plan contract into a FHIR R4 ``collection`` Bundle (a plain JSON dict).

    ``patient_ref`` is the reference every resource uses for its subject (``"Patient/123"`` or
    a ``urn:uuid``). ``diary`` adds one pain-score Observation per day that has ``pain_avg``
    (a whole ``DiaryEntry``: per day with anything recorded, the day itself riding along).
    The CarePlan carries the contracts themselves (:func:`ldncare.fhir.tags.contract_extension`):
    ``earlier`` ones (oldest first: the plan whose LDN schedule is under way, when the latest
    plan has none), then ``contract``, so that a re-import stores the same plans.
    The ids are derived from the patient and the plan date, so re-exporting is idempotent.
    """
    if contract.get("schema") != SCHEMA_ID:
        raise ValueError(f"expected an {SCHEMA_ID} contract, got {contract.get('schema')!r}")
    plan = read_plan(contract)
    as_of = plan.as_of.isoformat()
    key = (patient_ref, as_of)
    ldn = plan.ldn
    cite = {c.id: c for c in plan.citations}
    entries: list[dict[str, Any]] = []

    careplan_url = _urn(*key, "CarePlan")
    medrx_url: str | None = None
    if ldn.schedule:
        medrx_url = _urn(*key, "MedicationRequest")

    issue_urls: list[str] = []
    issues: list[dict[str, Any]] = []
    for finding in ldn.findings:
        if finding.severity not in _ISSUE_SEVERITY:
            continue
        url = _urn(*key, "DetectedIssue", finding.rule, str(len(issues)))
        issue_urls.append(url)
        issues.append(_entry(url, _detected_issue(finding, plan, patient_ref, medrx_url, cite)))

    activities: list[dict[str, Any]] = []
    if medrx_url is not None:
        activities.append({"reference": {"reference": medrx_url}})
    review = None if ldn.review_date is None else ldn.review_date.isoformat()
    notices = [c for c in plan.care if c.kind == "notice"]
    for item in plan.care:
        if item.kind != "notice":  # notices are notes, not things to do
            activities.append(_care_activity(item, review))
    if review:
        activities.append(
            {
                "detail": {
                    "kind": "Appointment",
                    "code": {"text": "LDN review appointment"},
                    "status": "scheduled",
                    "scheduledPeriod": {"start": review, "end": review},
                    "description": "Review pain scores, side effects and whether to continue "
                    "LDN after the trial period.",
                }
            }
        )

    schedule = ldn.schedule
    period_end = review or (schedule[-1].end_date.isoformat() if schedule else None)
    careplan: dict[str, Any] = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "title": "Low-dose naltrexone (LDN) and pudendal neuralgia care plan",
        "description": f"ldncare plan of {as_of}; LDN eligibility: {ldn.eligibility}.",
        "subject": {"reference": patient_ref},
        "period": {"start": schedule[0].start_date.isoformat() if schedule else as_of},
        "created": as_of,
        "activity": activities,
        "extension": [contract_extension(c) for c in (*earlier, contract)],
    }
    if period_end:
        careplan["period"]["end"] = period_end
    if plan.evidence is not None:
        # Plans stored before issue 22 carry no evidence version; they are exported without one.
        careplan["extension"].insert(0, evidence_extension(plan.evidence.model_dump(mode="json")))
    if notices:
        careplan["note"] = [{"text": n.text} for n in notices]
    if issue_urls:
        careplan["supportingInfo"] = [{"reference": u} for u in issue_urls]

    entries.append(_entry(careplan_url, careplan))
    if medrx_url is not None:
        entries.append(_entry(medrx_url, _medication_request(plan, patient_ref, cite)))
    entries += issues
    for day in sorted(diary, key=lambda d: d.day):
        if not _recorded(day):
            continue
        url = _urn(*key, "Observation", day.day.isoformat())
        entries.append(_entry(url, _pain_observation(day, patient_ref)))

    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid5(_NAMESPACE, "/".join((*key, "Bundle")))),
        "type": "collection",
        "timestamp": f"{as_of}T00:00:00Z",
        "entry": entries,
    }


# --------------------------------------------------------------------------- validation


def _model_problems(bundle: Mapping[str, Any]) -> list[str]:
    # Imported here: the models take about half a second to load, and only export needs them.
    from fhir.resources.R4B.bundle import Bundle
    from pydantic import ValidationError

    try:
        Bundle.model_validate(dict(bundle))
    except ValidationError as exc:
        return [
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:20]
        ]
    return []


def _check_binding(rtype: str, resource: Mapping[str, Any], where: str) -> Iterable[str]:
    for (bound_type, element), allowed in _REQUIRED_CODES.items():
        if bound_type != rtype:
            continue
        value = resource.get(element)
        if value is None:
            if element in {"status", "intent"}:
                yield f"{where}.{element}: required element is missing"
            continue
        if value not in allowed:
            yield f"{where}.{element}: {value!r} is not in the required value set"


def _check_dosages(dosages: Sequence[Mapping[str, Any]], where: str) -> Iterable[str]:
    previous_seq = 0
    previous_end: date | None = None
    for i, dosage in enumerate(dosages):
        here = f"{where}.dosageInstruction[{i}]"
        seq = dosage.get("sequence")
        if not isinstance(seq, int) or seq <= previous_seq:
            yield f"{here}.sequence: {seq!r} does not follow {previous_seq}"
        else:
            previous_seq = seq
        repeat = dosage.get("timing", {}).get("repeat", {})
        for when in repeat.get("when", []):
            if when not in _EVENT_TIMING:
                yield f"{here}.timing.repeat.when: {when!r} is not an event-timing code"
        bounds = repeat.get("boundsPeriod", {})
        try:
            start = date.fromisoformat(str(bounds["start"]))
            end = date.fromisoformat(str(bounds["end"]))
        except (KeyError, ValueError):
            yield f"{here}.timing.repeat.boundsPeriod: start and end dates are required"
            continue
        if end < start:
            yield f"{here}.timing.repeat.boundsPeriod: end {end} is before start {start}"
        if previous_end is not None and (start - previous_end).days != 1:
            yield (
                f"{here}.timing.repeat.boundsPeriod: starts {start}, not the day after the "
                f"previous step ended ({previous_end})"
            )
        previous_end = end
        for dr in dosage.get("doseAndRate", []):
            qty = dr.get("doseQuantity", {})
            if qty.get("system") != UCUM or qty.get("code") != "mg":
                yield f"{here}.doseAndRate.doseQuantity: must be UCUM mg"


def validate_bundle(bundle: Mapping[str, Any], *, max_dose_mg: float | None = None) -> list[str]:
    """Problems with an exported Bundle (empty list = valid).

    First the ``fhir.resources`` R4B models; then ldncare's own checks of required code
    bindings, date order, dosage sequence and contiguity, UCUM doses, references that resolve
    inside the Bundle, and (when ``max_dose_mg`` is given) the dose ceiling.
    """
    problems = _model_problems(bundle)
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "collection":
        problems.append("Bundle: expected resourceType Bundle of type collection")
    entries = bundle.get("entry") or []
    urls = {e.get("fullUrl") for e in entries}
    for i, entry in enumerate(entries):
        resource = entry.get("resource") or {}
        rtype = str(resource.get("resourceType"))
        where = f"entry[{i}]({rtype})"
        problems += _check_binding(rtype, resource, where)
        if not is_ldncare_output(resource):
            continue  # the patient's own data: bindings checked, ldncare's rules do not apply
        if rtype == "MedicationRequest":
            problems += _check_dosages(resource.get("dosageInstruction", []), where)
            if max_dose_mg is not None:
                for dosage in resource.get("dosageInstruction", []):
                    for dr in dosage.get("doseAndRate", []):
                        value = dr.get("doseQuantity", {}).get("value")
                        if isinstance(value, (int, float)) and value > max_dose_mg:
                            problems.append(f"{where}: dose {value} mg above {max_dose_mg} mg")
        if rtype == "CarePlan":
            period = resource.get("period", {})
            if period.get("start") and period.get("end") and period["end"] < period["start"]:
                problems.append(f"{where}.period: end before start")
            for j, act in enumerate(resource.get("activity", [])):
                ref = act.get("reference", {}).get("reference")
                if ref and ref.startswith("urn:uuid:") and ref not in urls:
                    problems.append(f"{where}.activity[{j}]: {ref} is not in the Bundle")
                status = act.get("detail", {}).get("status")
                if "detail" in act and status not in _ACTIVITY_STATUS:
                    problems.append(f"{where}.activity[{j}].detail.status: {status!r} invalid")
        if rtype == "Observation":
            value = resource.get("valueInteger")
            if value is None and "dataAbsentReason" in resource:
                continue  # a diary day without a pain score (its other values ride along)
            if not isinstance(value, int) or not 0 <= value <= 10:
                problems.append(f"{where}.valueInteger: pain score {value!r} is not 0 to 10")
    return problems
