"""Words the pages show for the core's identifiers: a patient reads "average pain", never
``pain_avg``, and "nausea or upset stomach", never ``nausea gi``."""

from __future__ import annotations

import re

from ldncare.core.diary import SIDE_EFFECT_KINDS
from ldncare.errors import LdncareError

#: Side-effect kinds as the diary form and tables show them.
SIDE_EFFECT_LABELS: dict[str, str] = {
    "vivid_dreams": "vivid dreams",
    "sleep_disturbance": "poor sleep",
    "headache": "headache",
    "nausea_gi": "nausea or upset stomach",
    "other": "something else",
}
assert set(SIDE_EFFECT_LABELS) == set(SIDE_EFFECT_KINDS), "a side-effect kind without a label"

#: Diary fields by the label of the form field that sets them.
DIARY_FIELD_LABELS: dict[str, str] = {
    "day": "day",
    "dose_taken": "dose taken",
    "dose_mg": "dose",
    "dose": "dose",
    "pain_avg": "average pain",
    "pain_worst": "worst pain",
    "sitting_minutes": "sitting time",
    "sleep_quality": "sleep",
    "pgic": "overall change",
    "side_effects": "side effect",
    "side_effect": "side effect",
    "severity": "how bad",
    "notes": "notes",
    "file": "file",
}
# Only identifiers (``pain_avg``) are replaced inside a message; "severity" is already a word.
_FIELD_NAME = re.compile(
    r"\b(" + "|".join(sorted((n for n in DIARY_FIELD_LABELS if "_" in n), key=len)[::-1]) + r")\b"
)


def side_effect_label(kind: str) -> str:
    return SIDE_EFFECT_LABELS.get(kind, kind.replace("_", " "))


def diary_error_text(error: LdncareError) -> str:
    """The error of a diary form in the form's words: the field by its label, field names in
    the message too ("worst pain 3 is below average pain 6")."""
    message = _FIELD_NAME.sub(lambda m: DIARY_FIELD_LABELS[m.group(1)], error.message)
    if error.field:
        # "side_effects.0.severity" -> "how bad"; "pain_avg" -> "average pain"
        parts = [p for p in error.field.split(".") if not p.isdigit()]
        label = DIARY_FIELD_LABELS.get(parts[-1]) or DIARY_FIELD_LABELS.get(parts[0])
        if label:
            return f"{label[:1].upper()}{label[1:]}: {message}"
    return message[:1].upper() + message[1:]
