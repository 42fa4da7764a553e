"""Parallel, shared (several processes / machines) and incremental Bulk import (issue 20).

``ldncare.import_parallel`` stages an export's files in byte ranges over worker processes, then
groups, checks and (on PostgreSQL) writes each bucket of patients in a worker. These tests pin
that it stores exactly what the one-process importer stores, that a patient whose resources
span files and byte ranges stays whole, that two imports running at once into one PostgreSQL
(disjoint or overlapping patients) leave no duplicate and one audit row per change, and that
``--since`` reads only the patients that changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, create_engine, func, select

from ldncare.errors import InvalidInput
from ldncare.import_parallel import import_export, parse_part, parse_since, plan_shards
from ldncare.importing import import_ndjson
from ldncare.store.db import make_engine
from ldncare.store.import_claims import claim_patients, held_import_locks
from ldncare.store.models import AssessmentRow, AuditRow, PatientRow
from ldncare.store.population import pop_lab, pop_medication, pop_patient
from tests.integration.followup_db import db_url

__all__ = ["db_url"]

AS_OF = date(2026, 1, 1)
T0 = "2026-10-01T08:00:00Z"
T1 = "2026-11-15T08:00:00+00:00"
ROOT = Path(__file__).resolve().parents[2]
VITALS = ["8867-4", "9279-1", "8480-6", "72514-3", "39156-5"]


def _meta(updated: str | None) -> dict[str, Any]:
    return {} if updated is None else {"meta": {"lastUpdated": updated}}


def patient_lines(i: int, updated: str | None = T0, family: str = "Doe") -> dict[str, list[bytes]]:
    """One patient's resources by file: a pudendal-neuralgia patient, on tramadol every third,
    with CKD (eGFR 28) every fifth, and a dozen vital signs ldncare does not read."""
    pid = f"pt-{i:05d}"
    ref = {"reference": f"Patient/{pid}"}
    out: dict[str, list[dict[str, Any]]] = {
        "Patient": [{"resourceType": "Patient", "id": pid, "gender": "female",
                     "birthDate": f"{1940 + i % 50}-03-0{1 + i % 9}",
                     "name": [{"family": family, "given": [f"P{i}"]}]} | _meta(updated)],
        "Condition": [{"resourceType": "Condition", "id": f"c-{pid}", "subject": ref,
                       "clinicalStatus": {"coding": [{"code": "active"}]},
                       "code": {"text": "Pudendal neuralgia"}} | _meta(T0)],
        "MedicationRequest": [],
        "Observation": [],
    }  # fmt: skip
    if i % 3 == 0:
        out["MedicationRequest"].append({
            "resourceType": "MedicationRequest", "id": f"m-{pid}", "status": "active",
            "intent": "order", "subject": ref, "authoredOn": "2025-11-01",
            "medicationCodeableConcept": {"text": "tramadol 50 MG Oral Tablet"},
        } | _meta(T0))  # fmt: skip
    if i % 5 == 0:
        out["Observation"].append({
            "resourceType": "Observation", "id": f"egfr-{pid}", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "33914-3"}]},
            "subject": ref, "effectiveDateTime": "2025-12-01",
            "valueQuantity": {"value": 28, "unit": "mL/min/{1.73_m2}"},
        } | _meta(T0))  # fmt: skip
    for k, code in enumerate(VITALS * 2):
        out["Observation"].append({
            "resourceType": "Observation", "id": f"v{k}-{pid}", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": ref, "effectiveDateTime": "2025-12-01",
            "valueQuantity": {"value": 70 + k, "unit": "1"},
        } | _meta(T0))  # fmt: skip
    return {k: [orjson.dumps(r) for r in v] for k, v in out.items()}


def write_export(
    folder: Path, ids: range, changes: dict[int, dict[str, Any]] | None = None
) -> Path:
    """A Bulk export of patients ``ids``; each type in its own file, Observations in two files
    (a patient's vital signs in one, the rest in the other) and listed in patient order."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[bytes]] = {}
    for i in ids:
        for rtype, lines in patient_lines(i, **(changes or {}).get(i, {})).items():
            if rtype == "Observation":
                files.setdefault("Observation_1", []).extend(lines[::2])
                files.setdefault("Observation_2", []).extend(lines[1::2])
            else:
                files.setdefault(rtype, []).extend(lines)
    for name, lines in files.items():
        (folder / f"{name}.ndjson").write_bytes(b"".join(line + b"\n" for line in lines))
    (folder / "Encounter.ndjson").write_bytes(b'{"resourceType":"Encounter","id":"e"}\n')
    return folder


def stored(engine: Engine) -> dict[str, Any]:
    """What the store holds, comparable between imports (ids of rows aside)."""
    with engine.connect() as conn:
        patients = sorted(
            conn.execute(
                select(PatientRow.external_id, pop_patient.c.source_hash).join(
                    pop_patient, pop_patient.c.patient_id == PatientRow.id
                )
            ).all()
        )
        return {
            "patients": patients,
            "distinct": conn.execute(select(func.count(func.distinct(PatientRow.external_id))))
            .scalar_one(),
            # Patients with a stored medication / lab fact.
            "medications": conn.execute(
                select(func.count(func.distinct(pop_medication.c.patient_id)))
            ).scalar_one(),
            "labs": conn.execute(select(func.count(func.distinct(pop_lab.c.patient_id))))
            .scalar_one(),
            "assessments": conn.execute(select(func.count()).select_from(AssessmentRow))
            .scalar_one(),
            "audit": sorted(
                (a, n) for a, n in conn.execute(
                    select(AuditRow.action, func.count()).where(AuditRow.entity == "patient")
                    .group_by(AuditRow.action)
                )
            ),
        }  # fmt: skip


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    e = make_engine(db_url)
    yield e
    e.dispose()


def _second(db: str, tmp_path: Path) -> tuple[Engine, Any]:
    """A second, empty database of the same kind as ``db`` (for a reference import), and the
    function that drops it."""
    from sqlalchemy import make_url, text

    from ldncare.store.db import migrate

    if db.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'reference.db'}"
        migrate(url)
        return make_engine(url), lambda: None
    name = f"ldncare_ref_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    admin = create_engine(db, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(db).set(database=name).render_as_string(hide_password=False)
    migrate(url)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_engine(url), drop


# --- one machine, several workers --------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_200_patients_staged_in_4_kib_byte_ranges_are_stored_as_one_process_stores_them(
    db_url: str,
    engine: Engine,
    tmp_path: Path,
    workers: int,
) -> None:
    folder = write_export(tmp_path / "export", range(200))
    report = import_export(engine, folder, "test", as_of=AS_OF, workers=workers, shard_bytes=4096)
    assert report.shards > 20  # every file of more than 4 KiB was cut at line ends
    reference, drop = _second(db_url, tmp_path)
    try:
        one = import_ndjson(reference, folder, "test", as_of=AS_OF)
        assert stored(engine) == stored(reference)
    finally:
        reference.dispose()
        drop()
    assert report.errors == [] and one.errors == []
    assert (report.patients_imported, one.patients_imported) == (200, 200)
    assert report.medications_total == one.medications_total == 67  # tramadol, every third
    assert report.observations == one.observations == 40  # eGFR 28, every fifth
    assert report.ignored_files == ["Encounter.ndjson"]
    assert stored(engine)["audit"] == [("create", 200)]


def test_shards_end_at_line_ends_and_cover_every_byte_once(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "export", range(60))
    files = sorted(folder.glob("*.ndjson"))
    shards = plan_shards(files, 2, shard_bytes=1000)
    for path in files:
        mine = [s for s in shards if s.path == str(path)]
        data = path.read_bytes()
        pieces = [data[s.start : s.end] for s in mine]
        assert b"".join(pieces) == data
        assert all(p.endswith(b"\n") for p in pieces)


def test_a_corrupt_observation_in_the_middle_of_a_cut_file_is_reported_where_it_is(
    engine: Engine, tmp_path: Path
) -> None:
    folder = write_export(tmp_path / "export", range(120))
    path = folder / "Observation_2.ndjson"
    lines = path.read_bytes().split(b"\n")
    bad = next(i for i, line in enumerate(lines) if b'Patient/pt-00077"' in line)
    lines[bad] = lines[bad][:-30]  # cut short: not JSON
    path.write_bytes(b"\n".join(lines))
    report = import_export(engine, folder, "test", as_of=AS_OF, workers=2, shard_bytes=8192)
    refused, issue = sorted(report.errors, key=lambda e: e.where or "")
    assert refused.resource_type == "Patient" and refused.resource_id == "pt-00077"
    assert issue.patient_id == "pt-00077" and report.patients_skipped == 1
    assert report.patients_imported == 119
    # "Observation_2.ndjson (from byte N):k" names line k counted from byte N.
    where = issue.where or ""
    name, _, line_no = where.rpartition(":")
    start = int(name.split("from byte ")[1].rstrip(")")) if "from byte" in name else 0
    assert path.read_bytes()[start:].split(b"\n")[int(line_no) - 1] == lines[bad]


def test_a_truncated_gzip_file_stops_the_parallel_import_before_anything_is_written(
    engine: Engine, tmp_path: Path
) -> None:
    import gzip

    folder = write_export(tmp_path / "export", range(30))
    data = gzip.compress((folder / "MedicationRequest.ndjson").read_bytes())
    (folder / "MedicationRequest.ndjson").unlink()
    (folder / "MedicationRequest.ndjson.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInput, match="truncated"):
        import_export(engine, folder, "test", as_of=AS_OF, workers=2)
    assert stored(engine)["patients"] == []


# --- several processes / machines into one PostgreSQL -------------------------------------------

_IMPORTER = """
import json, sys, time
from datetime import date
from pathlib import Path
from ldncare.import_parallel import import_export
from ldncare.store.db import make_engine
url, folder, start, part = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
engine = make_engine(url)
while time.time() < start:
    time.sleep(0.005)
if __name__ == "__main__":
    part_ = None if part == "-" else tuple(int(x) for x in part.split("/"))
    r = import_export(engine, Path(folder), "machine", as_of=date(2026, 1, 1), batch_size=20,
                      part=part_)
    print(json.dumps({"imported": r.patients_imported, "unchanged": r.patients_unchanged,
                      "updated": r.patients_updated, "errors": [e.message for e in r.errors]}))
"""


def _concurrently(url: str, jobs: list[tuple[Path, str]]) -> list[dict[str, Any]]:
    """Run one import process per job, all starting at the same instant."""
    start = time.time() + 3.0  # every process is up and waiting by then
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _IMPORTER, url, str(folder), str(start), part],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for folder, part in jobs
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    return outs


#: Several writers at once: PostgreSQL only (SQLite has one writer at a time).
POSTGRES_ONLY = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@POSTGRES_ONLY
def test_two_machines_import_disjoint_halves_of_a_hospital_export_at_once(
    db_url: str,
    engine: Engine,
    tmp_path: Path,
) -> None:
    a = write_export(tmp_path / "a", range(0, 300))
    b = write_export(tmp_path / "b", range(300, 600))
    ra, rb = _concurrently(db_url, [(a, "-"), (b, "-")])
    assert ra["errors"] == rb["errors"] == []
    assert (ra["imported"], rb["imported"]) == (300, 300)
    s = stored(engine)
    assert len(s["patients"]) == s["distinct"] == s["assessments"] == 600
    assert s["audit"] == [("create", 600)]
    assert s["medications"] == 200 and s["labs"] == 120
    with engine.connect() as conn:
        assert held_import_locks(conn) == 0


@POSTGRES_ONLY
def test_two_machines_whose_exports_share_200_patients_write_each_of_them_once(
    db_url: str,
    engine: Engine,
    tmp_path: Path,
) -> None:
    a = write_export(tmp_path / "a", range(0, 400))
    b = write_export(tmp_path / "b", range(200, 600))
    ra, rb = _concurrently(db_url, [(a, "-"), (b, "-")])
    assert ra["errors"] == rb["errors"] == []
    # Each shared patient was created by one machine and found unchanged by the other.
    assert ra["imported"] + rb["imported"] == 600
    assert ra["unchanged"] + rb["unchanged"] == 200
    s = stored(engine)
    assert len(s["patients"]) == s["distinct"] == s["assessments"] == 600
    assert s["audit"] == [("create", 600)]
    assert s["medications"] == 200 and s["labs"] == 120


@POSTGRES_ONLY
def test_two_machines_each_taking_their_part_of_one_export_store_it_whole_once(
    db_url: str,
    engine: Engine,
    tmp_path: Path,
) -> None:
    folder = write_export(tmp_path / "export", range(500))
    r0, r1 = _concurrently(db_url, [(folder, "0/2"), (folder, "1/2")])
    assert r0["errors"] == r1["errors"] == [] and r0["unchanged"] == r1["unchanged"] == 0
    assert r0["imported"] + r1["imported"] == 500 and min(r0["imported"], r1["imported"]) > 150
    s = stored(engine)
    assert len(s["patients"]) == s["distinct"] == 500 and s["audit"] == [("create", 500)]
    assert s["medications"] == 167 and s["labs"] == 100


def test_machine_parts_on_sqlite_in_turn_add_up_to_the_whole_export(
    engine: Engine, tmp_path: Path
) -> None:
    folder = write_export(tmp_path / "export", range(90))
    reports = [import_export(engine, folder, "test", as_of=AS_OF, part=(i, 3)) for i in range(3)]
    assert sum(r.patients_imported for r in reports) == 90
    assert all(r.patients_unchanged == 0 for r in reports)
    assert stored(engine)["audit"] == [("create", 90)]


@POSTGRES_ONLY
def test_a_patient_claimed_by_one_import_waits_for_its_commit_in_another(
    db_url: str,
    engine: Engine,
) -> None:
    other = make_engine(db_url)
    claimed, waited = threading.Event(), []

    def second() -> None:
        claimed.wait(10)
        t = time.monotonic()
        with other.begin() as conn:
            claim_patients(conn, ["pt-1", "pt-2"])
            waited.append(time.monotonic() - t)

    thread = threading.Thread(target=second)
    thread.start()
    with engine.begin() as conn:
        claim_patients(conn, ["pt-2", "pt-3"])
        assert held_import_locks(conn) == 2
        claimed.set()
        time.sleep(0.5)  # the other import is blocked on pt-2 meanwhile
    thread.join(10)
    other.dispose()
    assert waited and waited[0] >= 0.4


# --- incremental --------------------------------------------------------------------------------


def test_since_the_last_export_only_the_patients_changed_in_it_are_read_and_updated(
    engine: Engine, tmp_path: Path
) -> None:
    first = write_export(tmp_path / "first", range(100))
    full = import_export(engine, first, "test", as_of=AS_OF)
    assert full.patients_imported == 100
    # The newer export: two patients changed (renamed), one Patient has no lastUpdated.
    changes = {7: {"updated": T1, "family": "Roe"}, 42: {"updated": T1, "family": "Poe"},
               50: {"updated": None}}  # fmt: skip
    newer = write_export(tmp_path / "newer", range(100), changes)
    report = import_export(engine, newer, "test", as_of=AS_OF, since=parse_since(T1))
    assert report.patients_not_changed_since == 97
    assert (report.patients_updated, report.patients_unchanged) == (2, 1)  # 50 was compared
    assert report.patients_imported == 0 and report.errors == []
    assert stored(engine)["audit"] == [("create", 100), ("update", 2)]
    with engine.connect() as conn:
        names = dict(conn.execute(select(PatientRow.external_id, PatientRow.name)).all())
    assert "Roe" in str(names["pt-00007"]) and "Poe" in str(names["pt-00042"])


def test_since_a_later_instant_than_every_change_reads_no_patient(
    engine: Engine, tmp_path: Path
) -> None:
    folder = write_export(tmp_path / "export", range(20))
    later = datetime(2026, 12, 1, tzinfo=UTC)
    report = import_export(engine, folder, "test", as_of=AS_OF, since=later)
    assert report.patients_not_changed_since == 20 and report.patients_read == 0


@pytest.mark.parametrize("text", ["yesterday", "2026-11-30", "2026-11-30T00:00:00"])
def test_since_without_an_instant_and_time_zone_is_refused_clearly(text: str) -> None:
    with pytest.raises(InvalidInput, match="instant with a time zone"):
        parse_since(text)


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "0/0", "-1/2"])
def test_a_part_that_is_not_machine_i_of_m_is_refused_clearly(text: str) -> None:
    with pytest.raises(InvalidInput, match="I/M"):
        parse_part(text)


def test_the_import_command_takes_workers_since_and_part(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "export", range(12))
    env = os.environ | {
        "LDNCARE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path]),
    }
    main = "import sys; from ldncare.cli import main; sys.argv[0] = 'ldncare'; main()"
    cmd = [sys.executable, "-c", main, "import", str(folder), "--json"]
    out = subprocess.run([*cmd, "--workers", "2", "--part", "0/1"], env=env, text=True,
                         capture_output=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["patients"]["imported"] == 12 and body["parallel"]["workers"] == 2
    out = subprocess.run([*cmd, "--since", T1], env=env, text=True, capture_output=True,
                         timeout=300)  # fmt: skip
    body = json.loads(out.stdout)
    assert body["patients"]["not_changed_since"] == 12
    bad = subprocess.run([*cmd, "--since", "last week"], env=env, text=True,
                         capture_output=True, timeout=300)  # fmt: skip
    assert bad.returncode == 2 and "instant with a time zone" in bad.stderr


def test_a_batch_is_capped_so_its_patient_claims_fit_the_lock_table(
    db_url: str,
    engine: Engine,
) -> None:
    from ldncare.store.import_claims import batch_within_locks, lock_slots

    with engine.connect() as conn:
        slots = lock_slots(conn)
    if db_url.startswith("sqlite"):
        assert slots is None and batch_within_locks(2000, 8, slots) == 2000
        return
    assert slots is not None and slots >= 64 * 100 - 1  # PostgreSQL defaults: 64 x 100
    # Default server: two writers keep their 2,000-patient batches, eight do not.
    assert batch_within_locks(2000, 8, 6400) == 200
    assert batch_within_locks(2000, 2, 64 * 100 * 4) == 2000
    assert batch_within_locks(2000, 1000, 6400) == 20
