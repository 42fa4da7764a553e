"""Every Observation carrying a code ldncare reads survives NDJSON staging, however its JSON is
laid out (issue 20).

Staging drops most Observations of a real export (vital signs, scores, labs ldncare does not
read). That drop must never take one ldncare reads: these tests generate Observations with every
code ldncare reads, keys in any order, compact or spaced or indented JSON, ``\\u`` escapes in
the code, other codings around it and non-ASCII text, and check that the staging keeps each
one, and exactly the ones a parse says carry such a code.
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldncare.fhir import ndjson
from ldncare.fhir.ndjson import USED_OBSERVATION_CODES, NdjsonExport, _observation_used

LOINC = "http://loinc.org"
USED = sorted(USED_OBSERVATION_CODES)
# Codes ldncare does not read (Synthea vital signs and scores), and near misses of used ones.
OTHER = ["72514-3", "8867-4", "9279-1", "8480-6", "39156-5", "2160-01", "12160-0", "2160"]


def _observation(code: str, others: list[str], pid: str = "p1") -> dict[str, Any]:
    codings = [{"system": LOINC, "code": c, "display": f"test {c}"} for c in others]
    codings.append({"system": LOINC, "code": code, "display": "Creatinine ünïcode"})
    return {
        "resourceType": "Observation",
        "id": f"o-{code}",
        "status": "final",
        "category": [{"coding": [{"code": "laboratory"}]}],
        "code": {"coding": codings, "text": "a lab"},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2025-06-01",
        "valueQuantity": {"value": 1.2, "unit": "mg/dL"},
    }


def _escaped(text: str, rnd: random.Random) -> str:
    """``text`` as a JSON string token with some characters written as ``\\u`` escapes."""
    out = []
    for ch in text:
        out.append(f"\\u{ord(ch):04x}" if rnd.random() < 0.3 else ch)
    return '"' + "".join(out) + '"'


@st.composite
def observation_lines(draw: st.DrawFn, codes: list[str]) -> tuple[str, bytes]:
    """(code, line): an Observation holding ``code`` in one of many JSON layouts."""
    code = draw(st.sampled_from(codes))
    others = draw(st.lists(st.sampled_from(OTHER + USED), max_size=3))
    res = _observation(code, others)
    keys = list(res)
    rnd = random.Random(draw(st.integers(0, 2**32)))
    if draw(st.booleans()):
        rest = keys[1:]
        rnd.shuffle(rest)
        keys = [keys[0], *rest] if draw(st.booleans()) else [*rest, keys[0]]
    res = {k: res[k] for k in keys}
    layout = draw(st.sampled_from(["orjson", "compact", "spaced", "indent", "ascii"]))
    if layout == "orjson":
        text = orjson.dumps(res).decode()
    elif layout == "compact":
        text = json.dumps(res, separators=(",", ":"), ensure_ascii=False)
    elif layout == "spaced":
        text = json.dumps(res, ensure_ascii=False)
    elif layout == "indent":  # still one line: newlines become spaces
        text = json.dumps(res, indent=1, ensure_ascii=False).replace("\n", " ")
    else:
        text = json.dumps(res, separators=(",", ":"))
    if draw(st.booleans()):
        # Write the code itself with escapes, where it stands.
        token = json.dumps(code)
        assert token in text
        text = text.replace(token, _escaped(code, rnd))
    text = draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", "\r", " "]))
    return code, text.encode()


@settings(max_examples=600, deadline=None)
@given(observation_lines(USED))
def test_an_observation_with_a_code_ldncare_reads_is_kept_in_any_layout(
    case: tuple[str, bytes],
) -> None:
    code, line = case
    assert code in USED_OBSERVATION_CODES
    assert _observation_used(orjson.loads(line)), line


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(observation_lines(USED + OTHER), min_size=1, max_size=20))
def test_staging_keeps_every_observation_with_a_used_code(
    tmp_path_factory: pytest.TempPathFactory, cases: list[tuple[str, bytes]]
) -> None:
    folder = tmp_path_factory.mktemp("export")
    patient = b'{"resourceType":"Patient","id":"p1"}\n'
    (folder / "Patient.ndjson").write_bytes(patient)
    (folder / "Observation.ndjson").write_bytes(b"\n".join(line for _, line in cases) + b"\n")
    with NdjsonExport(folder) as export:
        stats = export.stage()
        kept = [
            r for g in export.groups() if isinstance(g, ndjson.PatientGroup) for r in g.resources
        ]
    # Every Observation one of whose codings carries a code ldncare reads, and only those.
    parsed = [orjson.loads(line) for _, line in cases]
    expected = [
        r for r in parsed if any(c["code"] in USED_OBSERVATION_CODES for c in r["code"]["coding"])
    ]
    assert len(expected) >= sum(code in USED_OBSERVATION_CODES for code, _ in cases)
    assert stats.resources == len(kept) == len(expected)
    assert sorted(map(orjson.dumps, kept)) == sorted(map(orjson.dumps, expected))
