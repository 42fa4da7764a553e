"""Drop the Observations ldncare never reads before they are parsed in full (issue #20).

Most of a real Bulk export is Observations whose codes ldncare does not read (vital signs,
survey scores, labs other than the ones in :data:`~ldncare.fhir.ndjson.USED_OBSERVATION_CODES`).
The staging loop parses each line with ``orjson.loads``, which builds every dict and string of
the resource only to throw most of them away. Here a line of an Observation file is decoded by
``msgspec`` into a typed skeleton that holds only ``resourceType`` and ``code.coding[].code``:
the rest of the line is *validated* as JSON (brackets, strings, escapes, numbers) but not
built, which costs about 0.6x of a full parse on the Synthea mix.

Why not a substring or regular-expression test on the raw line: measured on this machine, a
Python regular expression over the 30 codes ran at 65-80 MB/s, and splitting a line on quotes
at ~100 MB/s, both slower than ``orjson.loads`` itself (150-450 MB/s); and a substring test
cannot *prove* a code is absent when it is written with ``\\u`` escapes. A decoder that reads
the JSON can.

The guarantee (tested by ``tests/integration/test_prefilter.py`` with hypothesis): a line is
dropped here only when it is one JSON object, ASCII, whose (last) ``resourceType`` is
``"Observation"``, whose ``code`` is an object whose ``coding`` is a list of objects each with a
string ``code`` not in the codes ldncare reads and without leading or trailing whitespace
(``" 33914-3"`` is kept, so that the reader can refuse it aloud) -- exactly the lines the
staging loop itself drops after ``orjson.loads``. Anything else (not ASCII, not JSON, another
shape, another type, a used code) returns False and takes the usual path, which parses it and
reports what is wrong with it.
One difference remains and is accepted: a number beyond the range of a double (``1e999``),
which orjson refuses and msgspec reads as infinity, in an Observation that carries no code
ldncare reads, is dropped as unused instead of reported as a broken line.

``msgspec`` is optional: without it (or with ``LDNCARE_NO_PREFILTER`` set, for measuring)
:func:`unused_observation` is None and the staging parses every line as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ldncare.fhir.ndjson import USED_OBSERVATION_CODES

try:  # optional dependency (pyproject: msgspec); without it nothing is prefiltered
    # The ignores hold while msgspec is not installed yet in a checkout's venv (it is new).
    import msgspec  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - exercised only where msgspec is absent
    msgspec = None  # type: ignore[assignment,unused-ignore]


if msgspec is not None:
    # Module level (not in _build): msgspec resolves the string annotations here.

    class _Coding(msgspec.Struct):  # type: ignore[misc,unused-ignore]
        code: object = None

    class _Code(msgspec.Struct):  # type: ignore[misc,unused-ignore]
        coding: list[_Coding] | None = None

    class _Resource(msgspec.Struct):  # type: ignore[misc,unused-ignore]
        resourceType: str
        code: _Code | None = None


def _build() -> Callable[[bytes], bool] | None:
    if msgspec is None or os.environ.get("LDNCARE_NO_PREFILTER"):  # pragma: no cover
        return None

    decode = msgspec.json.Decoder(_Resource).decode
    errors = (msgspec.DecodeError,)  # ValidationError is a DecodeError
    used = USED_OBSERVATION_CODES

    def unused(line: bytes) -> bool:
        """True when ``line`` is an Observation that holds no code ldncare reads (see the
        module's guarantee); False when it must be parsed the usual way."""
        if not line.isascii():  # msgspec does not check UTF-8 inside strings it skips
            return False
        try:
            res = decode(line)
        except errors:
            return False
        if res.resourceType != "Observation":
            return False
        code = res.code
        if code is None or code.coding is None:
            return False
        for coding in code.coding:
            value = coding.code
            # A code with leading/trailing whitespace (not a FHIR code) is never dropped here:
            # the reader refuses it with a message if it is one it reads once trimmed.
            if type(value) is not str or value in used or value != value.strip():
                return False
        return True

    return unused


#: ``unused_observation(line) -> bool``, or None when msgspec is not installed.
unused_observation: Callable[[bytes], bool] | None = _build()
