"""The tag that marks FHIR resources ldncare produced (its plan), not patient data it was given.

The importer skips tagged resources, so re-importing an export re-plans from the inputs alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OUTPUT_TAG = {"system": "https://ldncare.org/fhir/CodeSystem/tags", "code": "ldncare-output"}


def is_ldncare_output(resource: Mapping[str, Any]) -> bool:
    meta = resource.get("meta")
    tags = meta.get("tag") if isinstance(meta, Mapping) else None
    return isinstance(tags, list) and any(
        isinstance(t, Mapping)
        and t.get("system") == OUTPUT_TAG["system"]
        and t.get("code") == OUTPUT_TAG["code"]
        for t in tags
    )
