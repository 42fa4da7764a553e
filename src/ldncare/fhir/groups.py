"""FHIR -> patient groups: one patient's resources read into a core ``Patient``, or the issues
that keep the patient out.

An import reads each patient from its group (:class:`~ldncare.fhir.ndjson.PatientGroup`: the
Patient, the resources naming it, the Medications they may refer to, and ldncare's own CarePlans
and diary Observations) with :func:`~ldncare.fhir.patient_bundle.patient_from_group`: the one
FHIR reader of ldncare (what ``patient_from_bundle`` reads from a Bundle of the group, without
building one; issue 20). A patient that fails to read is diagnosed resource by resource with
Bundles (error path only). :func:`bundle_groups` makes the groups of a Bundle (NDJSON staging makes
them for a Bulk export, :mod:`ldncare.fhir.ndjson`), :func:`read_patient` reads one.

Never a partial patient: a patient one of whose resources is invalid (or whose NDJSON line is
corrupt, or whose medicine cannot be told, or whose ldncare plan or diary cannot be read) is
not read at all, and every invalid resource is reported as (resource type, id, field,
message). Writing is not done here (:mod:`ldncare.store.bulk`), nor the running of an import
(:mod:`ldncare.importing`): this package imports nothing of the store.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ldncare.core.diary import DiaryEntry
from ldncare.core.patient import Patient
from ldncare.errors import InvalidInput
from ldncare.fhir.ndjson import PATIENT_TYPES, LineIssue, PatientGroup
from ldncare.fhir.patient_bundle import (
    medication_reference_text,
    patient_from_bundle,
    patient_from_group,
)
from ldncare.fhir.references import index_resources, patient_key, resolve, resolve_identifier
from ldncare.fhir.tags import diary_entries, is_ldncare_output, plan_contracts
from ldncare.import_report import ImportIssue

_ENTRY = re.compile(r"^entry\[(\d+)\]\.resource\.?(.*)$")

#: What the caller refuses about a patient read whole: an issue, or None to accept it.
Refusal = Callable[[Patient], ImportIssue | None]


def _accept(patient: Patient) -> ImportIssue | None:
    return None


@dataclass
class PatientRead:
    """A patient read whole: the core Patient, and what ldncare's own resources carried back."""

    patient: Patient
    #: Plan contracts of ldncare's CarePlan (oldest first), to store as plan versions.
    plans: list[dict[str, Any]] = field(default_factory=list)
    #: Diary days of ldncare's diary Observations, to store as the patient's diary.
    diary: list[DiaryEntry] = field(default_factory=list)


def read_patient(group: PatientGroup, refuse: Refusal = _accept) -> PatientRead | list[ImportIssue]:
    """One group read whole (the patient, its ldncare plans and diary), or the issues that keep
    it out."""
    result = read_group(group, refuse)
    if not isinstance(result, Patient):
        return result
    try:
        plans = [c for r in group.plans for c in plan_contracts(r)]
    except InvalidInput as exc:
        # Never a partial patient: without its plan, a patient on LDN would be screened as
        # a candidate for it.
        return [ImportIssue("CarePlan", None, exc.field, f"not imported: {exc.message}",
                            group.key)]  # fmt: skip
    try:
        diary = [d for r in group.diary for d in diary_entries(r)]
    except InvalidInput as exc:
        # Nor a partial diary: a lost day of side effects or doses changes the judgement of
        # the response to LDN.
        return [ImportIssue("Observation", None, exc.field, f"not imported: {exc.message}",
                            group.key)]  # fmt: skip
    return PatientRead(result, plans, diary)


def _split_error(exc: InvalidInput, resources: Sequence[Mapping[str, Any]]) -> ImportIssue:
    """InvalidInput of the reader -> (type, id, field, message) of the resource it names."""
    target: Mapping[str, Any] = resources[0]
    fld = exc.field
    m = _ENTRY.match(exc.field or "")
    if m:
        index = int(m.group(1))
        if index < len(resources):
            target = resources[index]
        fld = m.group(2) or None
    rtype = str(target.get("resourceType"))
    rid = target.get("id") if isinstance(target.get("id"), str) else None
    message = exc.message
    label = f"{rtype}/{rid}: " if rid else f"{rtype} without id: "
    if message.startswith(label):
        message = message[len(label) :]
    elif rid and message.startswith(f"Patient/{rid}: "):
        message = message[len(f"Patient/{rid}: ") :]
    if fld and message.startswith(fld + " "):
        message = message[len(fld) + 1 :]
    return ImportIssue(rtype, rid, fld, message)


def _bundle(
    resources: Iterable[Mapping[str, Any]], medications: Iterable[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """A collection Bundle of one patient's resources plus Medication entries (with fullUrl)."""
    entries: list[Mapping[str, Any]] = [{"resource": r} for r in resources]
    entries.extend(medications)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _diagnose(
    patient: Mapping[str, Any],
    resources: Sequence[Mapping[str, Any]],
    medications: Sequence[Mapping[str, Any]],
    first: InvalidInput,
) -> list[ImportIssue]:
    """Every invalid resource of a patient whose record failed to read (error path only)."""
    issues: list[ImportIssue] = []
    meds = [m["resource"] for m in medications]
    try:
        patient_from_bundle(_bundle([patient]))
    except InvalidInput as exc:
        issues.append(_split_error(exc, [patient]))
    for res in resources:
        try:
            patient_from_bundle(_bundle([patient, res], medications))
        except InvalidInput as exc:
            issue = _split_error(exc, [patient, res, *meds])
            if issue not in issues:
                issues.append(issue)
    return issues or [_split_error(first, [patient, *resources, *meds])]


def read_group(group: PatientGroup, refuse: Refusal = _accept) -> Patient | list[ImportIssue]:
    """The core Patient of one group, or the issues that stop it from being imported.

    ``refuse`` says what the caller refuses about a patient read whole (the orchestration
    passes the store's external-id rule and the birth-date range: rules this package does
    not own)."""
    pid = group.key
    if group.patient is None:
        issues = [line_issue(i) for i in group.issues]
        if group.resources:
            issues.insert(0, _without_patient(group))
        return issues
    if group.issues:
        issues = [line_issue(i) for i in group.issues]
        return [_refusal(group), *issues]
    known = _medication_index(group.medications)
    unresolved = _unresolved_medications(pid, group.resources, known)
    try:
        # The lean reader: what patient_from_bundle reads from a Bundle of these resources,
        # without building the Bundle (the error path below still diagnoses with Bundles).
        patient = patient_from_group(group.patient, group.resources, known)
    except InvalidInput as exc:
        return [
            ImportIssue(i.resource_type, i.resource_id, i.field, i.message, pid, i.where)
            for i in _diagnose(group.patient, group.resources, group.medications, exc)
        ] + unresolved
    if refused := refuse(patient):
        return [refused, *unresolved]
    return unresolved or patient


def _without_patient(group: PatientGroup) -> ImportIssue:
    """One issue for all the resources of a patient whose Patient record is missing or could
    not be read: one issue per resource would take gigabytes for a large export that lacks
    its Patient file."""
    n = len(group.resources)
    first = group.resources[0]
    fid = first.get("id")
    example = f"{first.get('resourceType')}" + (f"/{fid}" if isinstance(fid, str) else "")
    if n == 1:
        what = f"the resource that refers to it ({example}) was not imported"
    else:
        counts = Counter(str(r.get("resourceType")) for r in group.resources)
        kinds = ", ".join(f"{k} {t}" for t, k in sorted(counts.items()))
        what = f"the {n} resources that refer to it ({kinds}; e.g. {example}) were not imported"
    if any(i.resource_type == "Patient" for i in group.issues):
        why = "its Patient line could not be read"
    else:
        why = "is not in the export (no Patient resource has this id)"
    return ImportIssue("Patient", group.key, None, f"{why}, so {what}", patient_id=group.key)


def _refusal(group: PatientGroup) -> ImportIssue:
    """The issue that says why a patient whose own records were read was not imported."""
    dup = sum(1 for i in group.issues if i.resource_type == "Patient" and i.field == "id")
    rest = len(group.issues) - dup
    reasons: list[str] = []
    if dup:
        reasons.append("its Patient appears more than once")
    if rest:
        bundled = all(i.where.startswith("entry[") for i in group.issues)
        what = "Bundle entries could not be used" if bundled else "lines could not be read"
        reasons.append(f"{rest} of its {what}")
    message = f"not imported: {' and '.join(reasons)}"
    return ImportIssue("Patient", group.key, None, message, patient_id=group.key)


def _medication_index(medications: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The Medication entries of a group by every reference form that may name them (as the
    Bundle reader indexes the Medication entries of a Bundle)."""
    if not medications:
        return {}
    entries: list[tuple[str | None, Mapping[str, Any]]] = []
    for e in medications:
        res = e.get("resource")
        if isinstance(res, Mapping) and res.get("resourceType") == "Medication":
            url = e.get("fullUrl")
            entries.append((url if isinstance(url, str) else None, res))
    return index_resources(entries)


def _unresolved_medications(
    pid: str, resources: Sequence[Mapping[str, Any]], known: Mapping[str, Mapping[str, Any]]
) -> list[ImportIssue]:
    """Issues for the medication orders/statements whose drug cannot be told.

    The reader keeps a ``medicationReference`` that matches no Medication resource as
    "unresolved medication ..." with no code: a drug of no class, so an unresolved opioid
    would make the record look safe for LDN. With a ``display`` the drug is still named (and
    classified from it); without one, the patient is not imported (never a partial patient).
    Malformed references are left to the reader, which reports them.
    """
    issues: list[ImportIssue] = []
    for res in resources:
        ref_obj = res.get("medicationReference")
        if (
            res.get("resourceType") not in ("MedicationRequest", "MedicationStatement")
            or "medicationCodeableConcept" in res
            or not isinstance(ref_obj, Mapping)
            or ("meta" in res and is_ldncare_output(res))
        ):
            continue
        ref, display = ref_obj.get("reference"), ref_obj.get("display")
        if isinstance(display, str) and display.strip():
            continue
        if (not isinstance(ref, str) or not ref) and "identifier" in ref_obj:
            # A logical reference (identifier, no reference): the Medication carrying it.
            found = resolve_identifier(ref_obj["identifier"], known, "Medication") is not None
            ref = medication_reference_text(res) or "medicationReference.identifier"
        elif not isinstance(ref, str) or not ref:
            continue
        else:
            found = resolve(ref, known, source=res, resource_type="Medication") is not None
        if ref.startswith("#"):
            why = "no contained Medication of this resource has that id"
        else:
            why = "it matches no Medication resource of the import"
        if not found:
            rid = res.get("id")
            issues.append(ImportIssue(
                str(res["resourceType"]), rid if isinstance(rid, str) else None,
                "medicationReference.reference",
                f"{ref} cannot be resolved ({why}) and the reference has no display, so "
                "the medicine is unknown; include the Medication resource, or name the "
                "medicine in medicationReference.display",
                pid,
            ))  # fmt: skip
    return issues


def line_issue(issue: LineIssue) -> ImportIssue:
    return ImportIssue(
        issue.resource_type, issue.resource_id, issue.field, issue.message,
        issue.patient_key, issue.where or None,
    )  # fmt: skip


# --- a Bundle into groups ----------------------------------------------------------------------


def bundle_groups(bundle: Any) -> tuple[list[PatientGroup], list[ImportIssue]]:
    """One group per Patient of a Bundle (its resources, its Medications, ldncare's own plan
    and diary resources), and the entries that belong to no Patient of it."""
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        found = bundle.get("resourceType") if isinstance(bundle, Mapping) else type(bundle)
        raise InvalidInput(f"expected a FHIR Bundle, got {found!r}", field="resourceType")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise InvalidInput("Bundle.entry must be a list", field="entry")
    patients: list[tuple[int, Any, Mapping[str, Any]]] = []
    medications: list[Mapping[str, Any]] = []
    clinical: list[tuple[int, Mapping[str, Any]]] = []
    issues: list[ImportIssue] = []
    for i, entry in enumerate(entries):
        res = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(res, Mapping) or not isinstance(res.get("resourceType"), str):
            issues.append(ImportIssue("unknown", None, f"entry[{i}].resource",
                                      "is not a FHIR resource", where=f"entry[{i}]"))  # fmt: skip
            continue
        rtype = res["resourceType"]
        if rtype == "Patient":
            patients.append((i, entry.get("fullUrl"), res))
        elif rtype == "Medication":
            # The entry keeps its fullUrl: references may use it (urn:uuid:...).
            medications.append(entry)
        elif rtype in PATIENT_TYPES or (rtype == "CarePlan" and is_ldncare_output(res)):
            # ldncare's own CarePlan is read back for the plans it carries (see tags.py).
            clinical.append((i, res))
    if not patients:
        raise InvalidInput("Bundle contains no Patient resource", field="entry")
    groups: dict[str, PatientGroup] = {}
    aliases: dict[str, str] = {}  # patient key of an entry's fullUrl -> Patient id
    first: dict[str, int] = {}  # Patient id -> its first entry
    for i, url, res in patients:
        pid = res.get("id")
        if not isinstance(pid, str) or not pid:
            issues.append(ImportIssue("Patient", None, "id", "is missing: the Patient needs an id"))
            continue
        if pid in groups:
            # Two different records of one patient: which one is current cannot be told, so
            # neither is imported (an identical copy is harmless and written once).
            if res != groups[pid].patient:
                groups[pid].issues.append(LineIssue(
                    "Patient", pid, "id",
                    f"appears twice in the Bundle with different content (entry[{first[pid]}] "
                    f"and entry[{i}]); send one Patient entry per patient",
                    f"entry[{i}]", pid,
                ))  # fmt: skip
        else:
            first[pid] = i
            groups[pid] = PatientGroup(pid, patient=res, medications=list(medications))
        alias = patient_key(url) if isinstance(url, str) else None
        if alias:
            aliases[alias] = pid
    only = next(iter(groups.values())) if len(patients) == 1 and groups else None
    for i, res in clinical:
        ref = next(
            (
                r["reference"]
                for r in (res.get("subject"), res.get("patient"))
                if isinstance(r, Mapping) and isinstance(r.get("reference"), str)
            ),
            None,
        )
        key = patient_key(ref) if ref else None
        key = aliases.get(key, key) if key else None
        if only is not None and key is None:
            # With one Patient, a resource naming no Patient is taken as that patient's (as
            # the reader does); one naming another Patient is not: it is someone else's.
            _place(only, res)
            continue
        if key is None or key not in groups:
            rid = res.get("id") if isinstance(res.get("id"), str) else None
            issues.append(ImportIssue(res["resourceType"], rid, "subject.reference",
                                      f"refers to no Patient of the Bundle ({ref})",
                                      where=f"entry[{i}]"))  # fmt: skip
            continue
        _place(groups[key], res)
    return list(groups.values()), issues


def _place(group: PatientGroup, res: Mapping[str, Any]) -> None:
    if res["resourceType"] == "CarePlan":
        group.plans.append(res)
    elif res["resourceType"] == "Observation" and "meta" in res and is_ldncare_output(res):
        group.diary.append(res)
    else:
        group.resources.append(res)
