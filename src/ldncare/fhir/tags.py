"""The tag that marks FHIR resources ldncare produced (its plan), not patient data it was given.

The patient reader skips tagged resources: an exported LDN MedicationRequest is ldncare's plan,
not a record that the patient takes naltrexone. The importer reads one of them back, ldncare's
CarePlan, for the plan contracts it carries (:func:`plan_contracts`): the stored plan, and with
it "on LDN" and the dose, survive an export and re-import.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from ldncare.errors import InvalidInput

OUTPUT_TAG = {"system": "https://ldncare.org/fhir/CodeSystem/tags", "code": "ldncare-output"}


def is_ldncare_output(resource: Mapping[str, Any]) -> bool:
    meta = resource.get("meta")
    # type() first: parsed JSON is a dict, and the ABC check costs more than the rest (every
    # resource of a Synthea record has a meta, none of them a tag).
    tags = meta.get("tag") if type(meta) is dict or isinstance(meta, Mapping) else None
    if tags is None:
        return False
    return isinstance(tags, list) and any(
        isinstance(t, Mapping)
        and t.get("system") == OUTPUT_TAG["system"]
        and t.get("code") == OUTPUT_TAG["code"]
        for t in tags
    )


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
    data = json.dumps(contract, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {
        "url": PLAN_CONTRACT_EXT,
        "valueAttachment": {
            "contentType": "application/json",
            "data": base64.b64encode(data.encode("utf-8")).decode("ascii"),
            "title": PLAN_SCHEMA,
        },
    }


def plan_contracts(resource: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The plan contracts an ldncare CarePlan carries, oldest first ([] for any other resource).

    A contract that cannot be read is refused with the reason, never skipped: a lost plan
    would make a patient on LDN look like a candidate for it.
    """
    if resource.get("resourceType") != "CarePlan" or not is_ldncare_output(resource):
        return []
    extensions = resource.get("extension")
    out: list[dict[str, Any]] = []
    for i, ext in enumerate(extensions if isinstance(extensions, list) else []):
        if not isinstance(ext, Mapping) or ext.get("url") != PLAN_CONTRACT_EXT:
            continue
        where = f"CarePlan.extension[{i}].valueAttachment.data"
        attachment = ext.get("valueAttachment")
        data = attachment.get("data") if isinstance(attachment, Mapping) else None
        if not isinstance(data, str):
            raise InvalidInput("an ldncare plan-contract extension holds no data", field=where)
        try:
            contract = json.loads(base64.b64decode(data, validate=True).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(
                f"the ldncare plan contract is not base64 JSON ({exc})", field=where
            ) from None
        if not isinstance(contract, dict) or contract.get("schema") != PLAN_SCHEMA:
            found = contract.get("schema") if isinstance(contract, dict) else type(contract)
            raise InvalidInput(
                f"expected an {PLAN_SCHEMA} plan contract, got schema {found!r}", field=where
            )
        out.append(contract)
    return out
