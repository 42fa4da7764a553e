"""FHIR import into the store: Synthea Bundles, the same data as Bulk NDJSON, broken input,
re-import."""

from __future__ import annotations

import copy
import gzip
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from ldncare.cli import app
from ldncare.fhir import ndjson
from ldncare.importing import ImportReport, import_bundle, import_ndjson
from ldncare.store import repository
from ldncare.store.db import open_engine
from ldncare.store.models import AssessmentRow, AuditRow, PatientRow
from ldncare.store.population import pop_condition, pop_lab, pop_medication, pop_patient
from tests.shared_data import SYNTHEA, SYNTHEA_PATIENTS, synthea_bundles

AS_OF = date(2026, 1, 1)
INDEX = {row["file"]: row for row in json.loads((SYNTHEA / "_INDEX.json").read_text())}
BUNDLES = synthea_bundles()
ACTIVE_MED = {"active", "on-hold", "intended", "unknown"}
ACTIVE_COND = {"active", "recurrence", "relapse"}


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _resources(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def _raw_active_medications(bundle: dict[str, Any]) -> int:
    """Active on AS_OF, counted from the raw JSON: an active status, started by then and not
    ended before (Synthea has no validity periods in this vintage, checked below)."""
    n = 0
    for r in _resources(bundle, "MedicationRequest"):
        assert "dispenseRequest" not in r or "validityPeriod" not in r["dispenseRequest"]
        if r["status"] in ACTIVE_MED and r["authoredOn"][:10] <= AS_OF.isoformat():
            n += 1
    return n


def _raw_active_conditions(bundle: dict[str, Any]) -> int:
    n = 0
    for r in _resources(bundle, "Condition"):
        status = r["clinicalStatus"]["coding"][0]["code"]
        ended = r.get("abatementDateTime", "9999")[:10] <= AS_OF.isoformat()
        if status in ACTIVE_COND and not ended:
            n += 1
    return n


def _engine(tmp_path: Path, name: str = "store.db") -> Engine:
    return open_engine(f"sqlite:///{tmp_path / name}")


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _facts(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every population fact, keyed by FHIR patient id instead of database id."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        ext = {pk: e for pk, e in conn.execute(select(PatientRow.id, PatientRow.external_id))}
        for table in (pop_medication, pop_condition, pop_lab):
            cols = [c for c in table.c if c.name not in ("id", "patient_id")]
            rows = conn.execute(select(table.c.patient_id, *cols)).all()
            out[table.name] = sorted((ext[r[0]], *(str(v) for v in r[1:])) for r in rows)
        cols = [c for c in pop_patient.c if c.name not in ("patient_id", "imported_at")]
        out["pop_patient"] = sorted(
            tuple(str(v) for v in r) for r in conn.execute(select(*cols)).all()
        )
    return out


@pytest.fixture(scope="module")
def synthea_store(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Engine, dict[str, ImportReport]]:
    engine = _engine(tmp_path_factory.mktemp("synthea"))
    reports = {p.name: import_bundle(engine, _load(p), "test", as_of=AS_OF) for p in BUNDLES}
    return engine, reports


def test_all_synthea_bundles_are_there() -> None:
    assert len(BUNDLES) == SYNTHEA_PATIENTS


@pytest.mark.parametrize("path", BUNDLES, ids=lambda p: p.name[:24])
def test_synthea_bundle_imports_with_the_counts_of_its_index(
    path: Path, synthea_store: tuple[Engine, dict[str, ImportReport]]
) -> None:
    engine, reports = synthea_store
    report, row, bundle = reports[path.name], INDEX[path.name], _load(path)
    assert report.errors == []
    assert (report.patients_imported, report.patients_skipped) == (1, 0)
    assert report.medications_total == row["n_MedicationRequest"]
    assert report.conditions == row["n_Condition"]
    assert report.medications_active == _raw_active_medications(bundle)
    assert report.conditions_active == _raw_active_conditions(bundle)
    stored = repository.get_patient(engine, row["patient_id"], actor="test")
    assert stored.birth_date == date.fromisoformat(row["birthDate"])
    assert len(stored.snapshot["medications"]) == row["n_MedicationRequest"]


def test_synthea_opioids_are_stored_as_opioid_facts(
    synthea_store: tuple[Engine, dict[str, ImportReport]],
) -> None:
    engine, _ = synthea_store
    with engine.connect() as conn:
        names = set(
            conn.execute(
                select(pop_medication.c.name).where(pop_medication.c.drug_class == "opioid")
            ).scalars()
        )
    expected = {name for row in INDEX.values() for name in row["features"].get("opioid", [])}
    assert expected and expected <= names


def _split_to_ndjson(
    bundles: list[Path], folder: Path, *, gzip_types: tuple[str, ...] = ()
) -> None:
    """Write the bundles as a Bulk export: one file per resource type, all patients mixed."""
    folder.mkdir(parents=True, exist_ok=True)
    handles: dict[str, Any] = {}
    try:
        for path in bundles:
            for entry in _load(path)["entry"]:
                res = entry["resource"]
                rtype = res["resourceType"]
                if rtype not in handles:
                    if rtype in gzip_types:
                        handles[rtype] = gzip.open(folder / f"{rtype}.ndjson.gz", "wt")  # noqa: SIM115
                    else:
                        handles[rtype] = (folder / f"{rtype}.ndjson").open("w")
                handles[rtype].write(json.dumps(res) + "\n")
    finally:
        for fh in handles.values():
            fh.close()


def test_synthea_as_bulk_ndjson_imports_to_the_same_result(
    tmp_path: Path, synthea_store: tuple[Engine, dict[str, ImportReport]]
) -> None:
    bundle_engine, reports = synthea_store
    export = tmp_path / "export"
    _split_to_ndjson(BUNDLES, export, gzip_types=("Condition",))
    engine = _engine(tmp_path)
    stages: list[str] = []
    report = import_ndjson(
        engine, export, "test", lambda phase, done, total: stages.append(phase), as_of=AS_OF
    )
    assert report.errors == []
    assert report.patients_imported == len(BUNDLES)
    assert report.medications_total == sum(r.medications_total for r in reports.values())
    assert report.medications_active == sum(r.medications_active for r in reports.values())
    assert report.conditions == sum(r.conditions for r in reports.values())
    assert report.observations == sum(r.observations for r in reports.values())
    assert "Condition.ndjson.gz" in report.files
    assert "Encounter.ndjson" in report.ignored_files and "Claim.ndjson" in report.ignored_files
    assert {"stage", "import"} <= set(stages)
    facts = _facts(engine)
    assert all(facts[t] for t in ("pop_medication", "pop_condition", "pop_lab", "pop_patient"))
    assert facts == _facts(bundle_engine)


# --- broken input ------------------------------------------------------------------------------


def _patient(pid: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "gender": "female",
        "birthDate": "1970-01-01",
    } | extra


def _med(rid: str, pid: str, name: str, status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {"text": name},
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": "2025-06-01",
    }


def _write(folder: Path, name: str, lines: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(lines) + "\n")


def _small_export(folder: Path) -> None:
    _write(folder, "Patient.ndjson", [json.dumps(_patient(p)) for p in ("a", "b", "c")])
    meds = [
        json.dumps(_med("m-a", "a", "Gabapentin 300 MG Oral Capsule")),
        # b: a truncated line that still shows whose it was
        json.dumps(_med("m-b", "b", "Oxycodone Hydrochloride 5 MG Oral Tablet"))[:-25],
        # c: a status that is not a MedicationRequest status
        json.dumps(_med("m-c", "c", "Tramadol 50 MG Oral Tablet", status="taking")),
        # a resource for a patient not in the export
        json.dumps(_med("m-x", "x", "Amitriptyline 10 MG Oral Tablet")),
        "{not json at all",
    ]
    _write(folder, "MedicationRequest.ndjson", meds)


def test_corrupt_line_and_invalid_resource_skip_only_their_patients(tmp_path: Path) -> None:
    _small_export(tmp_path / "export")
    engine = _engine(tmp_path)
    report = import_ndjson(engine, tmp_path / "export", "test", as_of=AS_OF)
    assert report.patients_imported == 1
    assert report.patients_skipped == 2
    by_type = {(e.resource_type, e.resource_id, e.field): e for e in report.errors}
    invalid = by_type[("MedicationRequest", "m-c", "status")]
    assert "'taking'" in invalid.message and invalid.patient_id == "c"
    corrupt = [e for e in report.errors if "not valid JSON" in e.message]
    assert {e.patient_id for e in corrupt} == {"b", None}
    assert all(e.where and e.where.startswith("MedicationRequest.ndjson:") for e in corrupt)
    # One issue for the patient missing from the export, naming its resource.
    orphan = by_type[("Patient", "x", None)]
    assert "not in the export" in orphan.message and "MedicationRequest/m-x" in orphan.message
    # Nothing at all of b or c: no patient row, no facts, no audit entry.
    with engine.connect() as conn:
        assert list(conn.execute(select(PatientRow.external_id)).scalars()) == ["a"]
        assert set(conn.execute(select(pop_medication.c.name)).scalars()) == {
            "Gabapentin 300 MG Oral Capsule"
        }
        assert conn.execute(select(func.count()).select_from(AuditRow)).scalar_one() == 1


def test_invalid_resource_in_a_bundle_is_reported_with_type_id_and_field(tmp_path: Path) -> None:
    bundle = _load(BUNDLES[0])
    broken = copy.deepcopy(bundle)
    cond = next(
        e["resource"] for e in broken["entry"] if e["resource"]["resourceType"] == "Condition"
    )
    cond["onsetDateTime"] = "last spring"
    engine = _engine(tmp_path)
    report = import_bundle(engine, broken, "test", as_of=AS_OF)
    assert report.patients_skipped == 1 and report.patients_imported == 0
    [issue] = report.errors
    assert (issue.resource_type, issue.resource_id, issue.field) == (
        "Condition",
        cond["id"],
        "onsetDateTime",
    )
    assert "last spring" in issue.message
    assert _count(engine, PatientRow) == 0 and _count(engine, pop_condition) == 0


def test_re_import_is_idempotent_and_a_change_updates_the_patient(tmp_path: Path) -> None:
    export = tmp_path / "export"
    _split_to_ndjson(BUNDLES[:5], export)
    engine = _engine(tmp_path)
    first = import_ndjson(engine, export, "test", as_of=AS_OF)
    tables = (
        PatientRow,
        AssessmentRow,
        AuditRow,
        pop_patient,
        pop_medication,
        pop_condition,
        pop_lab,
    )
    before = {str(t): _count(engine, t) for t in tables}
    facts = _facts(engine)
    again = import_ndjson(engine, export, "test", as_of=AS_OF)
    assert (first.patients_imported, again.patients_imported) == (5, 0)
    assert again.patients_unchanged == 5 and again.patients_updated == 0
    assert {str(t): _count(engine, t) for t in tables} == before
    assert _facts(engine) == facts

    # One patient's opioid is restarted in the EHR: the next import updates that patient only.
    target = INDEX[BUNDLES[0].name]["patient_id"]
    lines = (export / "MedicationRequest.ndjson").read_text().splitlines()
    changed = 0
    for i, line in enumerate(lines):
        res = json.loads(line)
        if res["subject"]["reference"].endswith(target) and res["status"] == "stopped":
            res["status"] = "active"
            lines[i] = json.dumps(res)
            changed += 1
            break
    assert changed == 1
    (export / "MedicationRequest.ndjson").write_text("\n".join(lines) + "\n")
    third = import_ndjson(engine, export, "test", as_of=AS_OF)
    assert (third.patients_updated, third.patients_unchanged) == (1, 4)
    assert _count(engine, PatientRow) == 5
    assert _count(engine, AssessmentRow) == before[str(AssessmentRow)] + 1
    assert third.medications_active == first.medications_active + 1
    with engine.connect() as conn:
        actions = conn.execute(select(AuditRow.action).order_by(AuditRow.id.desc()).limit(1))
        assert actions.scalar_one() == "update"


def test_the_same_patient_twice_in_one_bundle_is_written_once(tmp_path: Path) -> None:
    patient = _patient("dup")
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": patient}, {"resource": copy.deepcopy(patient)}],
    }
    engine = _engine(tmp_path)
    report = import_bundle(engine, bundle, "test", as_of=AS_OF)
    assert report.patients_read == 1 and _count(engine, PatientRow) == 1


def test_parallel_workers_import_the_same_facts_as_one_process(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    synthea_store: tuple[Engine, dict[str, ImportReport]],
) -> None:
    bundle_engine, _ = synthea_store
    export = tmp_path / "export"
    _split_to_ndjson(BUNDLES, export)
    engine = _engine(tmp_path)
    monkeypatch.setattr(ndjson, "BUCKET_BYTES", 256 * 1024)  # several buckets, several workers
    report = import_ndjson(engine, export, "test", as_of=AS_OF, workers=2)
    assert report.errors == [] and report.patients_imported == len(BUNDLES)
    assert _facts(engine) == _facts(bundle_engine)


# --- medicationReference -----------------------------------------------------------------------

OXYCODONE_MED = {
    "resourceType": "Medication",
    "id": "ox1",
    "code": {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "1049621",
                "display": "oxycodone hydrochloride 5 MG Oral Tablet",
            }
        ]
    },
}


def _med_ref(rid: str, pid: str, reference: str, **ref_extra: Any) -> dict[str, Any]:
    res = _med(rid, pid, "unused")
    del res["medicationCodeableConcept"]
    res["medicationReference"] = {"reference": reference, **ref_extra}
    return res


def _classes(engine: Engine, pid: str) -> set[tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(pop_medication.c.name, pop_medication.c.drug_class)
            .join(PatientRow, PatientRow.id == pop_medication.c.patient_id)
            .where(PatientRow.external_id == pid)
        )
        return {(name, cls) for name, cls in rows}


@pytest.mark.parametrize(
    "reference", ["Medication/ox1/_history/3", "https://ehr.example/fhir/Medication/ox1/_history/3"]
)
def test_a_versioned_medication_reference_finds_its_opioid(tmp_path: Path, reference: str) -> None:
    export = tmp_path / "export"
    _write(export, "Patient.ndjson", [json.dumps(_patient("a"))])
    _write(export, "Medication.ndjson", [json.dumps(OXYCODONE_MED)])
    _write(export, "MedicationRequest.ndjson", [json.dumps(_med_ref("m", "a", reference))])
    engine = _engine(tmp_path)
    report = import_ndjson(engine, export, "test", as_of=AS_OF)
    assert report.errors == [] and report.patients_imported == 1
    assert ("oxycodone hydrochloride 5 MG Oral Tablet", "opioid") in _classes(engine, "a")

    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": _patient("b")}, {"resource": OXYCODONE_MED},
        {"resource": _med_ref("m", "b", reference)},
    ]}  # fmt: skip
    report = import_bundle(engine, bundle, "test", as_of=AS_OF)
    assert report.errors == [] and report.patients_imported == 1
    assert ("oxycodone hydrochloride 5 MG Oral Tablet", "opioid") in _classes(engine, "b")


def test_a_medication_reference_to_nothing_without_a_name_skips_the_patient(
    tmp_path: Path,
) -> None:
    export = tmp_path / "export"
    _write(export, "Patient.ndjson", [json.dumps(_patient(p)) for p in ("a", "b", "c")])
    _write(export, "MedicationRequest.ndjson", [
        # a: the Medication is not in the export and the reference names no drug
        json.dumps(_med_ref("m-a", "a", "Medication/ox1")),
        # b: not in the export either, but the display still names the drug
        json.dumps(_med_ref("m-b", "b", "Medication/ox1", display="Oxycodone 5 mg tablet")),
        json.dumps(_med("m-c", "c", "Gabapentin 300 MG Oral Capsule")),
    ])  # fmt: skip
    engine = _engine(tmp_path)
    report = import_ndjson(engine, export, "test", as_of=AS_OF)
    assert (report.patients_imported, report.patients_skipped) == (2, 1)
    [issue] = report.errors
    assert (issue.resource_type, issue.resource_id, issue.field, issue.patient_id) == (
        "MedicationRequest", "m-a", "medicationReference.reference", "a",
    )  # fmt: skip
    assert "Medication/ox1" in issue.message and "display" in issue.message
    assert ("Oxycodone 5 mg tablet", "opioid") in _classes(engine, "b")
    with engine.connect() as conn:
        assert set(conn.execute(select(PatientRow.external_id)).scalars()) == {"b", "c"}


def test_a_contained_medication_reference_to_nothing_is_reported_in_a_bundle(
    tmp_path: Path,
) -> None:
    med = _med_ref("m", "a", "#ox")
    med["contained"] = [OXYCODONE_MED | {"id": "other"}]
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": _patient("a")}, {"resource": med}]}  # fmt: skip
    engine = _engine(tmp_path)
    report = import_bundle(engine, bundle, "test", as_of=AS_OF)
    assert report.patients_skipped == 1 and _count(engine, PatientRow) == 0
    [issue] = report.errors
    assert (issue.resource_id, issue.field) == ("m", "medicationReference.reference")
    assert "#ox" in issue.message and "contained" in issue.message


# --- Bundles: whose resource, which Patient ------------------------------------------------------


def test_a_resource_about_another_patient_is_not_given_to_the_only_patient(
    tmp_path: Path,
) -> None:
    unaddressed = _med("m-none", "a", "Gabapentin 300 MG Oral Capsule")
    del unaddressed["subject"]  # names no patient: the only Patient's, as the reader takes it
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": _patient("a")},
        {"resource": _med("m-b", "b", "Oxycodone Hydrochloride 5 MG Oral Tablet")},
        {"resource": _med("m-a", "a", "Amitriptyline Hydrochloride 10 MG Oral Tablet")},
        {"resource": unaddressed},
    ]}  # fmt: skip
    engine = _engine(tmp_path)
    report = import_bundle(engine, bundle, "test", as_of=AS_OF)
    assert report.patients_imported == 1
    [issue] = report.errors
    assert (issue.resource_id, issue.field, issue.where) == ("m-b", "subject.reference", "entry[1]")
    assert "Patient/b" in issue.message
    assert {name for name, _ in _classes(engine, "a")} == {
        "Amitriptyline Hydrochloride 10 MG Oral Tablet",
        "Gabapentin 300 MG Oral Capsule",
    }


def test_two_different_records_of_one_patient_in_a_bundle_import_neither(tmp_path: Path) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": _patient("a", birthDate="1950-01-01")},
        {"resource": _med("m-a", "a", "Gabapentin 300 MG Oral Capsule")},
        {"resource": _patient("a", gender="male")},
        {"resource": _patient("b")},
    ]}  # fmt: skip
    engine = _engine(tmp_path)
    report = import_bundle(engine, bundle, "test", as_of=AS_OF)
    assert (report.patients_imported, report.patients_skipped) == (1, 1)
    dup = [e for e in report.errors if e.field == "id"]
    assert [(e.resource_type, e.resource_id, e.where) for e in dup] == [
        ("Patient", "a", "entry[2]")
    ]
    assert "entry[0]" in dup[0].message and "twice" in dup[0].message
    with engine.connect() as conn:
        assert list(conn.execute(select(PatientRow.external_id)).scalars()) == ["b"]


def test_a_bundle_that_is_not_utf8_is_refused_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bundle.json"
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": _patient("a", name=[{"text": "P @"}])}]}  # fmt: skip
    path.write_bytes(json.dumps(bundle).encode().replace(b"@", b"\xff"))
    monkeypatch.setenv("LDNCARE_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    result = CliRunner().invoke(app, ["import", str(path)])
    assert result.exit_code == 2
    assert str(path) in result.output and "UTF-8" in result.output
    assert "Traceback" not in result.output
