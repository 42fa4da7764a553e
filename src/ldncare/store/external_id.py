"""The one rule for a patient's external id (the id a clinic or an EHR knows the patient by).

Every way a patient record is made -- the web form, the API, ``ldncare patient add`` and
``ldncare import`` -- accepts the same ids: 1 to 128 ASCII letters, digits, ``.``, ``_`` or
``-`` (the API's pattern; FHIR ids, ``[A-Za-z0-9.-]{1,64}``, all pass). Such an id is safe in a
URL path, a file name and an HTTP header. Records stored by an earlier release with other ids
stay readable (by their number); :func:`content_disposition` keeps any id safe in a header.

A refused id and an id already in use get the same answer (:func:`unusable`): ids are unique
across all clinics, and a clinician must not learn from the answer that another clinic has a
patient with that id, nor anything about that patient.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from ldncare.errors import InvalidInput

MAX_EXTERNAL_ID = 128
#: The API's pattern (OpenAPI), also the rule of :func:`check_external_id`.
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9._\-]+$"
_ALLOWED = re.compile(r"[A-Za-z0-9._\-]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9._\-]")


def is_valid(external_id: str) -> bool:
    return len(external_id) <= MAX_EXTERNAL_ID and _ALLOWED.fullmatch(external_id) is not None


def unusable(external_id: str) -> InvalidInput:
    """The answer to a new patient whose external id is malformed *or* already taken."""
    shown = external_id if len(external_id) <= 40 else external_id[:40] + "…"
    return InvalidInput(
        f"external id {shown!r} cannot be used for a new patient: give an id of 1 to "
        f"{MAX_EXTERNAL_ID} letters (A–Z, a–z), digits, '.', '_' or '-' that no other patient "
        "record uses",
        field="id",
    )


def check_external_id(external_id: str) -> None:
    if not is_valid(external_id):
        raise unusable(external_id)


def content_disposition(disposition: str, stem: str, suffix: str) -> str:
    """A ``Content-Disposition`` value for a file named after ``stem`` (an external id, maybe
    stored by an earlier release with any characters): an ASCII ``filename`` with every other
    character as ``_``, and the exact name as RFC 6266 / RFC 5987 ``filename*`` (UTF-8,
    percent-encoded). Neither can carry a quote, ``;``, CR or LF into the header."""
    ascii_name = _UNSAFE.sub("_", stem) + suffix
    exact = quote(stem + suffix, safe="")
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{exact}"
