"""Dropping irrelevant Observations from the raw NDJSON line, before any parse (issue 20).

The prefilter may only ever err towards parsing: an Observation carrying a code ldncare reads
must never be skipped, however its JSON is laid out or escaped. These tests generate such
Observations (every code ldncare reads, keys in any order, whitespace, ``\\u`` escapes, other
codings around it, non-ASCII text) and check none is skipped; that whatever is skipped parses to
an Observation the staging would have dropped anyway; and that staging real Synthea patients
with and without the prefilter gives the same groups.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldncare.fhir import ndjson
from ldncare.fhir.ndjson import USED_OBSERVATION_CODES, NdjsonExport, _observation_used
from ldncare.fhir.prefilter import ObservationPrefilter

SYNTHEA = Path(__file__).resolve().parents[1] / "fixtures" / "synthea"
LOINC = "http://loinc.org"
USED = sorted(USED_OBSERVATION_CODES)
# Codes ldncare does not read (Synthea vital signs and scores), and near misses of used ones.
OTHER = ["72514-3", "8867-4", "9279-1", "8480-6", "39156-5", "2160-01", "12160-0", "2160"]
PREFILTER = ObservationPrefilter(USED_OBSERVATION_CODES)


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
def test_an_observation_with_a_code_ldncare_reads_is_never_skipped(case: tuple[str, bytes]) -> None:
    code, line = case
    assert not PREFILTER.skip(line), (code, line)
    # And the staging keeps it (the parse sees the code the prefilter let through).
    assert _observation_used(orjson.loads(line))


@settings(max_examples=600, deadline=None)
@given(observation_lines(OTHER + USED))
def test_whatever_is_skipped_is_an_observation_staging_would_drop(case: tuple[str, bytes]) -> None:
    _, line = case
    if PREFILTER.skip(line):
        res = orjson.loads(line)
        assert res["resourceType"] == "Observation"
        assert not _observation_used(res)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.sampled_from(USED))
def test_random_bytes_around_a_used_code_are_never_skipped(noise: bytes, code: str) -> None:
    line = b'{"resourceType":"Observation","code":{"coding":[{"code":"%b"}]},"x":"%b"}' % (
        code.encode(),
        noise,
    )
    assert not PREFILTER.skip(line)


def test_a_blood_pressure_reading_in_the_usual_compact_form_is_skipped_unparsed() -> None:
    line = orjson.dumps(_observation("8480-6", ["8462-4"]) | {"code": {"coding": [
        {"system": LOINC, "code": "8480-6", "display": "Systolic blood pressure"}]}})  # fmt: skip
    assert PREFILTER.skip(line)
    # The same reading that also names a creatinine anywhere is parsed.
    assert not PREFILTER.skip(line[:-1] + b',"note":[{"text":"2160-0"}]}')


@pytest.mark.parametrize(
    "line",
    [
        # truncated: not the usual end
        b'{"resourceType":"Observation","code":{"coding":[{"code":"8480-6"}]},"subj',
        # a second resourceType (a duplicate key or a nested resource)
        b'{"resourceType":"Observation","code":{"coding":[{"code":"8480-6"}]},'
        b'"contained":[{"resourceType":"Observation"}]}',
        # invalid UTF-8 must reach the parser, which reports it
        b'{"resourceType":"Observation","code":{"coding":[{"code":"8480-6"}]},"t":"\xff"}',
        # a code shaped otherwise (coding as an object): the parser keeps it for the reader
        b'{"resourceType":"Observation","code":{"coding":{"code":"8480-6"}}}',
        # not an Observation
        b'{"resourceType":"Condition","code":{"coding":[{"code":"8480-6"}]}}',
    ],
)
def test_lines_the_prefilter_is_not_sure_of_are_parsed(line: bytes) -> None:
    assert not PREFILTER.skip(line)


def test_a_code_that_cannot_be_matched_in_raw_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be matched"):
        ObservationPrefilter(["a\\b"])
    # A code of another shape than LOINC's is still looked for.
    other = ObservationPrefilter(["LA15173-0"])
    assert not other.skip(
        b'{"resourceType":"Observation","code":{"coding":[{"code":"LA15173-0"}]}}'
    )
    assert other.skip(b'{"resourceType":"Observation","code":{"coding":[{"code":"LA1"}]}}')


def _synthea_export(folder: Path) -> None:
    """The Synthea patients of the test material as a Bulk export (one file per type)."""
    files: dict[str, list[bytes]] = {}
    for path in sorted(SYNTHEA.glob("*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(bundle, dict):
            continue
        for entry in bundle.get("entry", []):
            res = entry["resource"]
            for key in ("subject", "patient"):
                ref = res.get(key)
                if isinstance(ref, dict) and str(ref.get("reference", "")).startswith("urn:"):
                    ref["reference"] = "Patient/" + ref["reference"][9:]
            files.setdefault(res["resourceType"], []).append(orjson.dumps(res))
    folder.mkdir()
    for rtype, lines in files.items():
        (folder / f"{rtype}.ndjson").write_bytes(b"\n".join(lines) + b"\n")


def _staged(folder: Path) -> tuple[list[Any], ndjson.StageStats]:
    with NdjsonExport(folder) as export:
        stats = export.stage()
        out = [
            (g.key, g.patient, sorted(map(orjson.dumps, g.resources)), g.issues)
            if isinstance(g, ndjson.PatientGroup)
            else g
            for g in export.groups()
        ]
    return out, stats


def test_synthea_patients_stage_the_same_with_and_without_the_prefilter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "export"
    _synthea_export(folder)
    real = ndjson._SKIP_OBSERVATION
    skipped: list[bytes] = []

    def counted(line: bytes) -> bool:
        if real(line):
            skipped.append(line)
            return True
        return False

    monkeypatch.setattr(ndjson, "_SKIP_OBSERVATION", counted)
    fast, fast_stats = _staged(folder)
    monkeypatch.setattr(ndjson, "_SKIP_OBSERVATION", lambda line: False)
    slow, slow_stats = _staged(folder)
    assert fast == slow
    assert fast_stats == slow_stats
    # Most Synthea Observations are not read, and nearly all of those went unparsed.
    assert fast_stats.observations_dropped > 500
    assert len(skipped) > 0.9 * fast_stats.observations_dropped
    labs = sum(
        1 for _, _, resources, _ in fast for r in resources if b'"Observation"' in r
    )  # the labs, weights and heights ldncare reads are still there
    assert labs > 100


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
    # What a parse of every line would keep (the staging before the prefilter).
    expected = [orjson.loads(line) for _, line in cases if _observation_used(orjson.loads(line))]
    assert len(expected) >= sum(code in USED_OBSERVATION_CODES for code, _ in cases)
    assert stats.resources == len(kept) == len(expected)
    assert sorted(map(orjson.dumps, kept)) == sorted(map(orjson.dumps, expected))
