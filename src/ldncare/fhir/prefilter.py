"""Tell from an NDJSON line's raw bytes, before any JSON parse, that it is an Observation
ldncare will drop (issue 20).

Most of a real Bulk export is Observations of codes ldncare never reads (vital signs, survey
scores, most labs). Parsing each one only to drop it was most of the staging time. The test
here is *conservative*: it answers True ("skip") only for a line of the usual compact shape
that cannot hold a code ldncare reads; any line it is not sure of is parsed as before.

A line is skipped only when all of these hold:

- it starts with ``{"resourceType":"Observation",`` and holds ``"resourceType"`` once (so the
  resource itself, not something nested in it, is the Observation, and no duplicate key can
  make it another type);
- it is ASCII and holds no backslash: every JSON string in it is then its own bytes, so a code
  written with escapes (``"\\u0032160-0"``) or invalid UTF-8 (reported by the parser) never
  reaches the test below;
- it ends with ``}`` and holds ``"code":{"coding":[{`` (the usual shape: a truncated line or an
  odd ``code`` goes to the parser and its messages);
- no string in it equals a code ldncare reads: each such code appears in the line as
  ``"<code>"`` wherever and however it is written, since strings have no escapes here. This
  looks at *every* string, not only ``code`` fields, so it can only err towards parsing.

What is given up: an Observation line of that shape that is not valid JSON in its middle (a
flipped byte, not a truncation) and holds no code ldncare reads is dropped silently instead of
being reported; the parser would also have dropped it, with a message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_PREFIX = b'{"resourceType":"Observation",'
_TYPE_KEY = b'"resourceType"'
_SHAPE = b'"code":{"coding":[{'
#: A quoted LOINC-shaped token (``"2160-0"``); the closing quote is not consumed, so tokens
#: next to each other are all seen.
_LOINC_TOKEN = re.compile(rb'"([0-9]{1,7}-[0-9])(?=")')
_LOINC_SHAPE = re.compile(r"[0-9]{1,7}-[0-9]")


class ObservationPrefilter:
    """``skip(line)``: True only when ``line`` is an Observation none of whose strings is one
    of ``codes``."""

    def __init__(self, codes: Iterable[str]) -> None:
        codes = frozenset(codes)
        for code in codes:
            if '"' in code or "\\" in code or not code.isascii() or not code:
                raise ValueError(f"observation code {code!r} cannot be matched in raw bytes")
        self.loinc = frozenset(c.encode() for c in codes if _LOINC_SHAPE.fullmatch(c))
        #: Codes of another shape, looked for as quoted strings one by one.
        self.others = tuple(
            b'"%b"' % c.encode() for c in sorted(codes) if c.encode() not in self.loinc
        )

    def skip(self, line: bytes) -> bool:
        if not line.startswith(_PREFIX) or b"\\" in line or not line.isascii():
            return False
        if not line.rstrip(b" \t\r").endswith(b"}") or line.count(_TYPE_KEY) != 1:
            return False
        if _SHAPE not in line:
            return False
        loinc = self.loinc
        for token in _LOINC_TOKEN.findall(line):
            if token in loinc:
                return False
        return all(other not in line for other in self.others)
