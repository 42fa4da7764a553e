"""The tag that marks FHIR resources ldncare produced (its plan), not patient data it was given.

The patient reader skips tagged resources: an exported LDN MedicationRequest is ldncare's plan,
not a record that the patient takes naltrexone. The importer reads two of them back: ldncare's
CarePlan, for the plan contracts it carries (:func:`plan_contracts`), so that the stored plan,
and with it "on LDN" and the dose, survive an export and re-import; and ldncare's diary
Observations, for the diary days they carry (:func:`diary_entries`), so that the response to LDN
judged from the diary survives it too.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

from ldncare.core.diary import DiaryEntry, parse_entry
from ldncare.errors import InvalidInput

OUTPUT_TAG = {"system": "https://ldncare.org/fhir/CodeSystem/tags", "code": "ldncare-output"}
_OUTPUT_SYSTEM, _OUTPUT_CODE = OUTPUT_TAG["system"], OUTPUT_TAG["code"]


def is_ldncare_output(resource: Mapping[str, Any]) -> bool:
    meta = resource.get("meta")
    # type() first: parsed JSON is a dict, and the ABC check costs more than the rest (every
    # resource of a Synthea record has a meta, none of them a tag).
    tags = meta.get("tag") if type(meta) is dict or isinstance(meta, Mapping) else None
    if tags is None or not isinstance(tags, list):
        return False
    # A plain loop (no generator): every Synthea resource carries a tag of its own.
    for t in tags:
        if (
            (type(t) is dict or isinstance(t, Mapping))
            and t.get("code") == _OUTPUT_CODE
            and t.get("system") == _OUTPUT_SYSTEM
        ):
            return True
    return False


#: Extension of ldncare's CarePlan holding a plan contract (``ldncare.plan/1``) as JSON: how a
#: re-import gets the plan back, with the LDN schedule and dose, exactly as it was stored. The
#: CarePlan, MedicationRequest and DetectedIssues say the same to other systems, with loss.
PLAN_CONTRACT_EXT = "https://ldncare.org/fhir/StructureDefinition/plan-contract"
PLAN_SCHEMA = "ldncare.plan/1"


#: Extension of ldncare's CarePlan naming the evidence base the plan was made with (issue 22):
#: sub-extensions ``version`` (valueString) and ``reviewedUpTo`` (valueDate).
EVIDENCE_BASE_EXT = "https://ldncare.org/fhir/StructureDefinition/evidence-base"


def evidence_extension(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """The CarePlan extension for a contract's ``evidence`` ({version, reviewed_up_to})."""
    return {
        "url": EVIDENCE_BASE_EXT,
        "extension": [
            {"url": "version", "valueString": str(evidence["version"])},
            {"url": "reviewedUpTo", "valueDate": str(evidence["reviewed_up_to"])},
        ],
    }


def contract_extension(contract: Mapping[str, Any]) -> dict[str, Any]:
    """The CarePlan extension carrying ``contract`` (base64 JSON in an Attachment)."""
    return _json_extension(PLAN_CONTRACT_EXT, contract, title=PLAN_SCHEMA)


def _json_extension(url: str, payload: Any, *, title: str) -> dict[str, Any]:
    """An extension ``url`` carrying ``payload`` as base64 JSON in an Attachment."""
    data = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {
        "url": url,
        "valueAttachment": {
            "contentType": "application/json",
            "data": base64.b64encode(data.encode("utf-8")).decode("ascii"),
            "title": title,
        },
    }


def _extension_json(resource: Mapping[str, Any], url: str, what: str) -> Iterator[tuple[str, Any]]:
    """Each extension ``url`` of ``resource`` as (where, its decoded JSON), in order.

    ``what`` names the payload in errors ("plan contract"); an extension with no data or
    data that is not base64 JSON is refused with the reason, never skipped.
    """
    extensions = resource.get("extension")
    for i, ext in enumerate(extensions if isinstance(extensions, list) else []):
        if not isinstance(ext, Mapping) or ext.get("url") != url:
            continue
        where = f"{resource['resourceType']}.extension[{i}].valueAttachment.data"
        attachment = ext.get("valueAttachment")
        data = attachment.get("data") if isinstance(attachment, Mapping) else None
        if not isinstance(data, str):
            raise InvalidInput(
                f"an ldncare {what.replace(' ', '-')} extension holds no data", field=where
            )
        try:
            payload = json.loads(base64.b64decode(data, validate=True).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(
                f"the ldncare {what} is not base64 JSON ({exc})", field=where
            ) from None
        yield where, payload


def plan_contracts(resource: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The plan contracts an ldncare CarePlan carries, oldest first ([] for any other resource).

    A contract that cannot be read is refused with the reason, never skipped: a lost plan
    would make a patient on LDN look like a candidate for it.
    """
    if resource.get("resourceType") != "CarePlan" or not is_ldncare_output(resource):
        return []
    out: list[dict[str, Any]] = []
    for where, contract in _extension_json(resource, PLAN_CONTRACT_EXT, "plan contract"):
        if not isinstance(contract, dict) or contract.get("schema") != PLAN_SCHEMA:
            found = contract.get("schema") if isinstance(contract, dict) else type(contract)
            raise InvalidInput(
                f"expected an {PLAN_SCHEMA} plan contract, got schema {found!r}", field=where
            )
        out.append(contract)
    return out


#: Extension of ldncare's diary Observation holding the whole diary day (pain, sitting, sleep,
#: side effects, dose taken, PGIC, notes) as JSON: the Observation's own value says only the
#: average pain, and a re-import needs the rest to judge the response the same way.
DIARY_ENTRY_EXT = "https://ldncare.org/fhir/StructureDefinition/diary-entry"
DIARY_SCHEMA = "ldncare.diary-entry/1"
#: LOINC 72514-3, the pain score of ldncare's diary Observations (see ``fhir/export.py``).
_PAIN_LOINC = "72514-3"


def diary_extension(entry: DiaryEntry) -> dict[str, Any]:
    """The Observation extension carrying one diary day (base64 JSON in an Attachment)."""
    day = entry.model_dump(mode="json", exclude_defaults=True)
    if entry.dose_mg is not None:
        # A dose is written with its unit: the diary reader refuses a bare number in text.
        day["dose_mg"] = f"{entry.dose_mg} mg"
    return _json_extension(DIARY_ENTRY_EXT, day, title=DIARY_SCHEMA)


def _pain_score_only(resource: Mapping[str, Any]) -> DiaryEntry | None:
    """The day and average pain of a diary Observation exported before the whole day rode
    along (an ldncare pain score with no diary-entry extension)."""
    code = resource.get("code")
    codings = code.get("coding") if isinstance(code, Mapping) else None
    if not isinstance(codings, list) or not any(
        isinstance(c, Mapping) and c.get("code") == _PAIN_LOINC for c in codings
    ):
        return None
    day, value = resource.get("effectiveDateTime"), resource.get("valueInteger")
    if not isinstance(day, str) or not isinstance(value, int):
        return None
    return parse_entry({"day": day[:10], "pain_avg": value}, today=date.max)


def diary_entries(resource: Mapping[str, Any]) -> list[DiaryEntry]:
    """The diary days an ldncare diary Observation carries ([] for any other resource).

    A day that cannot be read is refused with the reason, never skipped: a lost day of side
    effects or doses would change the judgement of the response to LDN.
    """
    if resource.get("resourceType") != "Observation" or not is_ldncare_output(resource):
        return []
    out: list[DiaryEntry] = []
    for where, day in _extension_json(resource, DIARY_ENTRY_EXT, "diary entry"):
        if not isinstance(day, dict):
            raise InvalidInput(
                f"the ldncare diary entry is not a JSON object but {type(day).__name__}",
                field=where,
            )
        try:
            # A stored day was checked against its own today when it was written; the
            # export's days are all in its past, whatever date the import runs on.
            out.append(parse_entry(day, today=date.max))
        except InvalidInput as exc:
            inner = f".{exc.field}" if exc.field else ""
            raise InvalidInput(
                f"the ldncare diary entry{inner} is not valid: {exc.message}", field=where
            ) from None
    if not out and (legacy := _pain_score_only(resource)) is not None:
        out.append(legacy)
    return out
