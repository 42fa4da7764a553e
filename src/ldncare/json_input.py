"""JSON text from outside (a patient file, a FHIR Bundle): strict, and refused cleanly.

Python's ``json`` accepts ``NaN``, ``Infinity`` and ``-Infinity``, which are not JSON (RFC 8259
section 6) and not FHIR: an eGFR of NaN compares false with every threshold, so it passed as
"no kidney warning". The NDJSON importer and CDS Hooks (orjson) already refuse them; this does
the same for the other readers. A document nested deeper than the parser's recursion limit
(~1,000 levels, a 2 KB file) is bad input too, not a RecursionError traceback. A number too
large for a float (``1e999``, ``-1e999``) is refused like ``Infinity``: ``json`` would read it as
``inf`` (an eGFR of -inf, a plan saying "eligible"); orjson, which the NDJSON reader uses,
refuses it too.
"""

from __future__ import annotations

import json
import math
from typing import Any


class _NotANumber(ValueError):
    def __init__(self, constant: str) -> None:
        super().__init__(constant)
        self.constant = constant


def _refuse_constant(constant: str) -> Any:
    raise _NotANumber(constant)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotANumber(text)
    return value


class JsonProblem(ValueError):
    """Why a JSON text was refused (a message for the reader), beyond ``json``'s own errors."""


def loads_strict(text: str | bytes) -> Any:
    """``json.loads`` refusing NaN/Infinity, numbers that overflow a float (``1e999``) and
    over-deep nesting with :class:`JsonProblem`; malformed JSON raises ``json.JSONDecodeError``
    as usual."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotANumber as exc:
        if exc.constant in ("NaN", "Infinity", "-Infinity"):
            raise JsonProblem(
                f"{exc.constant} is not a number in JSON or FHIR; leave the value out or give a "
                "real number"
            ) from None
        raise JsonProblem(
            f"{exc.constant[:40]} is too large to be a number ldncare can use (it overflows "
            "to infinity); leave the value out or give a real number"
        ) from None
    except RecursionError:
        raise JsonProblem(
            "the JSON is nested too deeply to read (over about 1,000 levels of [ or {); no "
            "patient record or FHIR Bundle is nested like this"
        ) from None
