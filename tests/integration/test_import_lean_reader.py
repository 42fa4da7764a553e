"""The importer's lean reader stores exactly what the Bundle reader stored (issue 20).

``fhir/groups.py`` reads each patient of an import with ``patient_from_group`` (no Bundle built
around the patient's resources, no second check of its entries) instead of
``patient_from_bundle``. These tests pin that nothing stored changes: every row of a seeded
realistic Bulk export (Synthea patients with the opioid / CKD / LDN mix, ``bench/
generate_realistic.py``) imported with the lean reader equals the rows imported with the Bundle
reader, on SQLite and PostgreSQL; and, per patient, the two readers agree on any subset and
order of a Synthea record's resources (hypothesis), errors included.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldncare.errors import InvalidInput
from ldncare.fhir import groups
from ldncare.fhir.patient_bundle import patient_from_bundle, patient_from_group
from ldncare.fhir.references import index_resources
from ldncare.importing import import_ndjson
from ldncare.store.db import make_engine, migrate
from tests.integration.followup_db import _postgres_database, db_url
from tests.integration.stored_rows import differences, stored_rows

__all__ = ["db_url"]

ROOT = Path(__file__).resolve().parents[2]
SYNTHEA = sorted((ROOT / "tests" / "fixtures" / "synthea").glob("[A-Z]*.json"))
AS_OF = date(2026, 12, 1)


def _bundle_reader(patient: Any, resources: Any, medications: Any) -> Any:
    """The reader the importer used before: a Bundle of the group, read by
    ``patient_from_bundle`` (Medication entries rebuilt from the index)."""
    meds = [{"resource": m} for m in {id(m): m for m in medications.values()}.values()]
    entries = [{"resource": patient}, *({"resource": r} for r in resources), *meds]
    return patient_from_bundle({"resourceType": "Bundle", "type": "collection", "entry": entries})


@pytest.fixture(scope="module")
def realistic_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 Synthea-sized patients with the benchmark's clinical mix, every resource stamped."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from generate_realistic import generate
    finally:
        sys.path.remove(str(ROOT / "bench"))
    out = tmp_path_factory.mktemp("realistic") / "export"
    generate(out, 60, seed=11, last_updated="2026-10-01T00:00:00Z")
    return out


def _import(url: str, export: Path) -> dict[str, list[tuple[Any, ...]]]:
    engine = make_engine(url)
    try:
        report = import_ndjson(engine, export, "test", as_of=AS_OF)
    finally:
        engine.dispose()
    assert report.patients_imported == 60 and not report.errors
    return stored_rows(url)


def test_a_realistic_export_is_stored_row_for_row_as_the_bundle_reader_stored_it(
    db_url: str, realistic_export: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lean = _import(db_url, realistic_export)
    # The same export into a second fresh database of the same kind, read the old way.
    monkeypatch.setattr(groups, "patient_from_group", _bundle_reader)
    if db_url.startswith("sqlite"):
        other = f"sqlite:///{tmp_path / 'bundle.db'}"
        migrate(other)
        bundle = _import(other, realistic_export)
    else:
        second = _postgres_database()
        try:
            bundle = _import(next(second), realistic_export)
        finally:
            second.close()  # drops the database
    assert sum(len(rows) for rows in lean.values()) > 60 * 10  # facts, labs, audit...
    assert differences(lean, bundle) == []
    assert lean == bundle


def test_the_comparison_sees_one_changed_lab_value(realistic_export: Path, tmp_path: Path) -> None:
    """The row comparison is not blind: one creatinine/eGFR value changed in the export is
    one stored difference."""
    changed = tmp_path / "changed"
    changed.mkdir()
    for f in realistic_export.iterdir():
        (changed / f.name).write_bytes(f.read_bytes())
    obs = (changed / "Observation.ndjson").read_text().splitlines()
    codes = {"33914-3", "62238-1", "2160-0", "38483-4", "98979-8"}
    i = next(
        k
        for k, line in enumerate(obs)
        if any(f'"code":"{c}"' in line for c in codes) and '"valueQuantity"' in line
    )
    res = json.loads(obs[i])
    res["valueQuantity"]["value"] = res["valueQuantity"]["value"] + 1
    obs[i] = json.dumps(res, separators=(",", ":"))
    (changed / "Observation.ndjson").write_text("\n".join(obs) + "\n")
    urls = [f"sqlite:///{tmp_path / n}.db" for n in ("a", "b")]
    for url in urls:
        migrate(url)
    a, b = _import(urls[0], realistic_export), _import(urls[1], changed)
    diff = differences(a, b)
    assert a != b
    assert any(d.startswith("pop_lab:") for d in diff), diff
    assert any(d.startswith("patients:") for d in diff), diff  # the snapshot


def _record(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """A Synthea bundle as (Patient, its other resources, Medication entries)."""
    bundle = json.loads(path.read_text())
    entries = bundle["entry"]
    patient = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "Patient")
    meds = [e for e in entries if e["resource"]["resourceType"] == "Medication"]
    rest = [e["resource"] for e in entries
            if e["resource"]["resourceType"] not in ("Patient", "Medication")]  # fmt: skip
    return patient, rest, meds


_RECORDS = [_record(p) for p in SYNTHEA]


def _outcome(read: Any) -> Any:
    try:
        return read().model_dump_json()
    except InvalidInput as exc:
        return ("error", exc.field, exc.message)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(0, len(_RECORDS) - 1),
    seed=st.integers(0, 2**32 - 1),
    keep=st.floats(0.0, 1.0),
    damage=st.sampled_from([None, "date", "code", "status"]),
)
def test_lean_and_bundle_readers_agree_on_any_part_of_a_synthea_record(
    which: int, seed: int, keep: float, damage: str | None
) -> None:
    """Any subset, in any order, of a Synthea patient's resources (one of them damaged, or
    not) reads to the same Patient, or the same error, through either reader."""
    patient, rest, meds = _RECORDS[which]
    rng = random.Random(seed)
    chosen = [json.loads(json.dumps(r)) for r in rest if rng.random() < keep]
    rng.shuffle(chosen)
    clinical = [r for r in chosen if r["resourceType"] in groups.PATIENT_TYPES]
    if damage and clinical:
        target = rng.choice(clinical)
        if damage == "date":
            for k in ("effectiveDateTime", "onsetDateTime", "authoredOn", "recordedDate"):
                if k in target:
                    target[k] = "2024-13-45"
        elif damage == "code":
            target["code"] = {"coding": "not a list"}
        else:
            target["status"] = {"not": "a code"}
    index = index_resources((e.get("fullUrl"), e["resource"]) for e in meds)
    lean = _outcome(lambda: patient_from_group(patient, chosen, index))
    entries = [{"resource": patient}, *({"resource": r} for r in chosen), *meds]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    assert lean == _outcome(lambda: patient_from_bundle(bundle))
