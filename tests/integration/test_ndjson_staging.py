"""Staging a Bulk NDJSON export into buckets and reading it back (ldncare.fhir.ndjson).

The buckets hold each line's own bytes, read back with one parse per bucket: these tests pin
what that must keep -- every resource as the line had it, lines split across read blocks,
CRLF and unterminated last lines, very deeply nested lines, corrupt lines reported with their
file:line and the parser's message, Medication lookups, and many buckets.
"""

from __future__ import annotations

import gc
import gzip
import json
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from ldncare.errors import InvalidInput
from ldncare.fhir import ndjson
from ldncare.fhir.ndjson import LineIssue, NdjsonExport, PatientGroup
from ldncare.importing import import_ndjson
from ldncare.store.db import open_engine
from ldncare.store.models import PatientRow

AS_OF = date(2026, 1, 1)
# Nested just below orjson's depth limit of 1,024 once inside the Patient (3 levels): it
# parses on its own, but would not if nested two levels deeper inside a bucket array.
DEEP = "[" * 1018 + '{"a":1}' + "]" * 1018


@pytest.fixture(autouse=True)
def _deep_compare() -> Iterator[None]:
    """Comparing the deeply nested resource recurses past Python's default limit of 1,000."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5000))
    yield
    sys.setrecursionlimit(limit)


def _patient(pid: str, **extra: Any) -> dict[str, Any]:
    base = {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1970-01-01"}
    return base | extra


def _med(rid: str, ref: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "Gabapentin 300 MG Oral Capsule"},
        "subject": {"reference": ref},
        "authoredOn": "2025-06-01",
    } | extra


def _obs(rid: str, pid: str, code: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": 70, "unit": "kg"},
    }


def _read(folder: Path) -> tuple[dict[str, PatientGroup], list[LineIssue], ndjson.StageStats]:
    groups: dict[str, PatientGroup] = {}
    loose: list[LineIssue] = []
    with NdjsonExport(folder) as export:
        export.stage()
        for item in export.groups():
            if isinstance(item, LineIssue):
                loose.append(item)
            else:
                assert item.key not in groups, "a patient's resources in two groups"
                groups[item.key] = item
        stats = export.stats
    return groups, loose, stats


def _export(folder: Path) -> dict[str, list[str]]:
    """A small export with the awkward cases; returns the lines written per file."""
    folder.mkdir(parents=True, exist_ok=True)
    deep_patient = json.dumps(_patient("deep", extension=[{"url": "x", "valueX": "@"}]))
    files = {
        "Patient.ndjson": [
            json.dumps(_patient("p1")),
            "",
            "   ",
            json.dumps(_patient('q"uo\\te', name=[{"text": "Zoë ☃ \u2028"}])),
            deep_patient.replace('"@"', DEEP),
            json.dumps(_patient("p3")),
            json.dumps({"resourceType": "Patient"}),
        ],
        "MedicationRequest.ndjson": [
            json.dumps(_med("m1", "Patient/p1")),
            json.dumps(_med("m2", "https://fhir.example/Patient/p3/_history/2")),
            json.dumps(_med("m3", 'Patient/q"uo\\te')),
            json.dumps(_med("m4", "Patient/p3"))[:-30],  # truncated inside a string
            json.dumps(_med("m5", "Group/g1")),
            json.dumps(
                _med("m6", "Patient/p1", medicationReference={"reference": "Medication/ldn"})
            ),
        ],
        "Observation.ndjson": [
            json.dumps(_obs("o1", "p1", "29463-7")),  # body weight: kept
            json.dumps(_obs("o2", "p1", "8480-6")),  # blood pressure: dropped
            json.dumps(_obs("o3", "p3", ["not", "a", "code"])),  # malformed: kept
        ],
        "Medication.ndjson": [
            json.dumps({"resourceType": "Medication", "id": "ldn", "code": {"text": "LDN"}}),
        ],
    }
    for name, lines in files.items():
        # CRLF for the Observations; the MedicationRequest file has no final newline.
        end = "\r\n" if name.startswith("Observation") else "\n"
        text = end.join(lines) + ("" if name.startswith("MedicationRequest") else end)
        (folder / name).write_text(text, encoding="utf-8")
    return files


def test_every_kept_line_comes_back_as_the_resource_it_was(tmp_path: Path) -> None:
    files = _export(tmp_path / "export")
    groups, loose, stats = _read(tmp_path / "export")
    parsed = {
        name: [orjson.loads(line) for line in lines if line.strip() and "m4" not in line]
        for name, lines in files.items()
    }
    patients = {p["id"]: p for p in parsed["Patient.ndjson"] if "id" in p}
    assert set(groups) == set(patients)
    for pid, resource in patients.items():
        assert groups[pid].patient == resource
    assert groups["deep"].patient == patients["deep"]  # nested 1,021 levels deep
    assert groups['q"uo\\te'].resources == [parsed["MedicationRequest.ndjson"][2]]
    assert groups["p1"].resources == [
        parsed["MedicationRequest.ndjson"][0],
        parsed["MedicationRequest.ndjson"][4],
        parsed["Observation.ndjson"][0],
    ]
    # The unterminated last line is read; a malformed Observation code is kept, not a crash.
    assert [r["id"] for r in groups["p3"].resources] == ["m2", "o3"]
    assert groups["p1"].medications == [{"resource": parsed["Medication.ndjson"][0]}]
    assert stats.lines == 7 + 6 + 3 + 1
    assert stats.patients == 4 and stats.observations_dropped == 1
    assert [(i.field, i.where) for i in loose] == [
        ("id", "Patient.ndjson:7"),
        ("subject.reference", "MedicationRequest.ndjson:5"),
    ]


def test_a_corrupt_line_is_reported_with_its_place_and_the_parsers_message(
    tmp_path: Path,
) -> None:
    files = _export(tmp_path / "export")
    groups, _, _ = _read(tmp_path / "export")
    broken = files["MedicationRequest.ndjson"][3]
    try:
        orjson.loads(broken + "\n")  # as the line is read from the file, with its newline
    except orjson.JSONDecodeError as exc:
        detail = str(exc).splitlines()[0]
    assert groups["p3"].issues == [
        LineIssue(
            "MedicationRequest", None, None, f"line is not valid JSON ({detail})",
            "MedicationRequest.ndjson:4", "p3",
        )
    ]  # fmt: skip


@pytest.mark.parametrize("read_bytes", [1, 7, 64, 1 << 20])
def test_lines_split_across_read_blocks_group_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_bytes: int
) -> None:
    _export(tmp_path / "export")
    expected = _read(tmp_path / "export")
    monkeypatch.setattr(ndjson, "READ_BYTES", read_bytes)
    assert _read(tmp_path / "export") == expected


def test_many_buckets_and_gzip_keep_each_patient_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    pids = [f"pt-{i}" for i in range(300)]
    with gzip.open(folder / "Patient.ndjson.gz", "wt") as fh:
        fh.writelines(json.dumps(_patient(p)) + "\n" for p in reversed(pids))
    with (folder / "MedicationRequest.ndjson").open("w") as fh:
        for k in range(3):
            fh.writelines(json.dumps(_med(f"{p}-{k}", f"Patient/{p}")) + "\n" for p in pids)
    monkeypatch.setattr(ndjson, "BUCKET_BYTES", 4096)
    with NdjsonExport(folder) as export:
        assert export.n_buckets > 10
    groups, loose, stats = _read(folder)
    assert loose == [] and stats.patients == 300 and stats.resources == 900
    assert sorted(groups) == sorted(pids)
    for pid, group in groups.items():
        assert group.issues == []
        assert [r["id"] for r in group.resources] == [f"{pid}-{k}" for k in range(3)]


def test_a_deeply_nested_patient_imports_like_any_other(tmp_path: Path) -> None:
    _export(tmp_path / "export")
    engine = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
    report = import_ndjson(engine, tmp_path / "export", "test", as_of=AS_OF)
    with engine.connect() as conn:
        stored = set(conn.execute(select(PatientRow.external_id)).scalars())
    # p3 lost a line (corrupt), so it is not imported at all; the others are, but for the
    # patient whose id breaks the external-id rule: refused under her exact (escaped) id.
    assert stored == {"p1", "deep"}
    assert report.patients_imported == 2
    assert any(e.patient_id == 'q"uo\\te' and e.field == "id" for e in report.errors)
    assert any(e.patient_id == "p3" and e.where == "MedicationRequest.ndjson:4"
               for e in report.errors)  # fmt: skip


@pytest.mark.parametrize("enabled", [True, False])
def test_reading_a_bucket_leaves_the_cycle_collector_as_it_found_it(
    tmp_path: Path, enabled: bool
) -> None:
    _export(tmp_path / "export")
    was = gc.isenabled()
    try:
        if not enabled:
            gc.disable()
        groups, _, _ = _read(tmp_path / "export")
        assert gc.isenabled() is enabled
    finally:
        if was:
            gc.enable()
    assert "p1" in groups


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("read_bytes", [1, 1 << 18])
def test_a_byte_order_mark_does_not_cost_a_file_its_first_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compressed: bool, read_bytes: int
) -> None:
    monkeypatch.setattr(ndjson, "READ_BYTES", read_bytes)
    folder = tmp_path / "export"
    folder.mkdir()
    files = {
        "Patient.ndjson": [_patient("p1"), _patient("p2")],
        "MedicationRequest.ndjson": [_med("m1", "Patient/p1")],
    }
    for name, resources in files.items():
        data = BOM + b"".join(orjson.dumps(r) + b"\n" for r in resources)
        if compressed:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    groups, loose, _ = _read(folder)
    assert loose == [] and sorted(groups) == ["p1", "p2"]
    assert all(g.issues == [] and g.patient is not None for g in groups.values())
    assert [r["id"] for r in groups["p1"].resources] == ["m1"]


@pytest.mark.parametrize("value", [["MedicationRequest"], {"a": 1}, 7, None])
def test_a_resource_type_that_is_not_a_string_is_an_unreadable_line(
    tmp_path: Path, value: Any
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "Patient.ndjson").write_text(json.dumps(_patient("p1")) + "\n")
    bad = _med("m2", "Patient/p1") | {"resourceType": value}
    (folder / "MedicationRequest.ndjson").write_text(
        json.dumps(_med("m1", "Patient/p1")) + "\n" + json.dumps(bad) + "\n"
    )
    groups, loose, _ = _read(folder)
    # The line still names its patient: that patient is known to be incomplete.
    [issue] = groups["p1"].issues
    assert loose == []
    assert (issue.resource_type, issue.resource_id, issue.field, issue.where) == (
        "MedicationRequest", "m2", "resourceType", "MedicationRequest.ndjson:2",
    )  # fmt: skip
    assert "resourceType" in issue.message and "string is required" in issue.message


def _truncated(data: bytes) -> bytes:
    return gzip.compress(data)[:-10]


def _corrupt(data: bytes) -> bytes:
    packed = bytearray(gzip.compress(data))
    # Inside the deflate stream (after the 10-byte header), before the CRC trailer.
    for i in range(12, len(packed) - 8):
        packed[i] ^= 0x55
    return bytes(packed)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (_truncated, "truncated"),
        (lambda data: data, "not gzip-compressed"),
        (_corrupt, "damaged gzip data"),
    ],
    ids=["truncated", "not-gzip", "corrupt"],
)
def test_a_damaged_gzip_file_stops_the_import_naming_the_file(
    tmp_path: Path, damage: Any, says: str
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    lines = b"".join(orjson.dumps(_patient(f"p{i}")) + b"\n" for i in range(200))
    (folder / "Patient.ndjson.gz").write_bytes(damage(lines))
    engine = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with pytest.raises(InvalidInput) as raised:
        import_ndjson(engine, folder, "test", as_of=AS_OF, workdir=tmp_path)
    assert str(folder / "Patient.ndjson.gz") in raised.value.message
    assert says in raised.value.message and "nothing was imported" in raised.value.message
    with engine.connect() as conn:
        assert conn.execute(select(PatientRow.id)).first() is None
    assert not list(tmp_path.glob("ldncare-ndjson-*")), "the staging folder was left behind"
    engine.dispose()


def _import(folder: Path, tmp_path: Path) -> Any:
    engine = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        return import_ndjson(engine, folder, "test", as_of=AS_OF, workdir=tmp_path)
    finally:
        engine.dispose()


def test_jsonl_files_are_read_and_every_other_file_is_listed_as_not_read(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    with gzip.open(folder / "Patient.jsonl.gz", "wt") as fh:
        fh.write(json.dumps(_patient("a")) + "\n" + json.dumps(_patient("b")) + "\n")
    (folder / "MedicationRequest.jsonl").write_text(json.dumps(_med("m", "Patient/a")) + "\n")
    (folder / "Encounter.ndjson").write_text("{}\n")
    (folder / "manifest.json").write_text("{}")
    (folder / "README.txt").write_text("export of 2025-06-01")
    report = _import(folder, tmp_path)
    assert (report.patients_imported, report.errors) == (2, [])
    assert report.files == ["Patient.jsonl.gz", "MedicationRequest.jsonl"]
    assert report.ignored_files == ["Encounter.ndjson", "README.txt", "manifest.json"]


def test_a_patient_missing_from_the_export_is_one_issue_whatever_its_resources(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "Patient.ndjson").write_text(json.dumps(_patient("a")) + "\n")
    lines = [_med(f"m{i}", "Patient/x") for i in range(500)]
    lines += [_obs(f"o{i}", "x", "29463-7") for i in range(200)]
    (folder / "MedicationRequest.ndjson").write_text("".join(json.dumps(r) + "\n" for r in lines))
    report = _import(folder, tmp_path)
    assert report.patients_imported == 1 and report.patients_skipped == 0
    [issue] = report.errors
    assert (issue.resource_type, issue.resource_id, issue.patient_id) == ("Patient", "x", "x")
    assert "not in the export" in issue.message
    assert "700 resources" in issue.message
    assert "500 MedicationRequest, 200 Observation" in issue.message


def test_a_broken_patient_line_with_its_id_first_skips_that_patient(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "Patient.ndjson").write_text(
        json.dumps(_patient("b")) + '\n{"id": "a", "resourceType": "Patient", "gender": \n'
    )
    (folder / "MedicationRequest.ndjson").write_text(json.dumps(_med("m", "Patient/a")) + "\n")
    report = _import(folder, tmp_path)
    assert report.patients_imported == 1 and report.patients_skipped == 1
    assert {e.patient_id for e in report.errors} == {"a"}
    assert not any("not in the export" in e.message for e in report.errors)
    assert any("Patient line could not be read" in e.message for e in report.errors)
    assert any(e.where == "Patient.ndjson:2" for e in report.errors)


def test_a_patient_twice_in_the_export_is_reported_with_both_lines(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    patients = [_patient("a"), _patient("b"), _patient("a", gender="male")]
    (folder / "Patient.ndjson").write_text("".join(json.dumps(p) + "\n" for p in patients))
    report = _import(folder, tmp_path)
    assert report.patients_imported == 1 and report.patients_skipped == 1
    note, twice = report.errors
    assert twice.where == "Patient.ndjson:3" and twice.field == "id"
    assert "Patient.ndjson:1 and Patient.ndjson:3" in twice.message
    assert "different content" in twice.message
    assert "appears more than once" in note.message
    assert "could not be read" not in note.message


def test_identical_copies_of_a_patient_line_are_imported_once(tmp_path: Path) -> None:
    # An export written twice over repeats lines byte for byte: nothing to choose between.
    folder = tmp_path / "export"
    folder.mkdir()
    line = json.dumps(_patient("a")) + "\n"
    (folder / "Patient.ndjson").write_text(line + json.dumps(_patient("b")) + "\n" + line)
    (folder / "MedicationRequest.ndjson").write_text(json.dumps(_med("m", "Patient/a")) + "\n")
    report = _import(folder, tmp_path)
    assert report.errors == []
    assert (report.patients_imported, report.patients_skipped) == (2, 0)
    assert report.medications_total == 1


def test_a_third_different_copy_after_two_identical_ones_still_refuses_the_patient(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    patients = [_patient("a"), _patient("a"), _patient("a", birthDate="1950-01-01")]
    (folder / "Patient.ndjson").write_text("".join(json.dumps(p) + "\n" for p in patients))
    report = _import(folder, tmp_path)
    assert (report.patients_imported, report.patients_skipped) == (0, 1)
    assert [e.where for e in report.errors if e.field == "id"] == ["Patient.ndjson:3"]
