"""Issue #17, item 1: one current state per patient, whatever wrote it, for every reader.

A woman with pudendal neuralgia on naltrexone 3 mg who also takes tramadol 50 mg is stored by
each entry path (``ldncare patient add``, the web form, the API, a FHIR import of her EHR data,
a FHIR import of an ldncare export, a re-assessment that adds the tramadol) and read back by each
reader (``ldncare screen``, the dashboard page, the API list and record, ``ldncare export
--fhir``). Every path must give every reader the same facts: an opioid beside naltrexone is a
contraindication (label_naltrexone), and a path that hid it would make LDN look safe.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from ldncare.cli import app as cli
from ldncare.fhir.patient_export import patient_to_resources
from ldncare.fhir.tags import is_ldncare_output
from ldncare.patient_file import patient_from_data
from tests.web.conftest import TODAY, World, patient_file
from tests.web.test_pages import login_page

NALTREXONE = {"name": "Naltrexone 3 mg", "dose": "3 mg"}
TRAMADOL = {"name": "Tramadol 50 mg", "dose": "50 mg"}
ALERT = "naltrexone with an active opioid"


def on_ldn_and_tramadol(pid: str, *, tramadol: bool = True) -> dict[str, Any]:
    return patient_file(pid, medications=[NALTREXONE, *([TRAMADOL] if tramadol else [])])


def run(world: World, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    monkeypatch.setenv("LDNCARE_DATABASE_URL", str(world.engine.url))
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


# --- entry paths: each stores patient ``pid`` ---------------------------------------------------


def by_cli(world: World, mp: pytest.MonkeyPatch, pid: str, tmp: Path) -> None:
    path = tmp / f"{pid}.yaml"
    path.write_text(yaml.safe_dump(on_ldn_and_tramadol(pid)))
    run(world, mp, "patient", "add", str(path), "--clinic", "clinic-1")


def by_web_form(world: World, mp: pytest.MonkeyPatch, pid: str, tmp: Path) -> None:
    token = login_page(world, "clin1")
    form = {
        "csrf_token": token,
        "external_id": pid,
        "name": f"Patient {pid}",
        "sex": "female",
        "birth_date": "1980-03-14",
        "conditions": "Pudendal neuralgia",
        "medications": "Naltrexone 3 mg | 3 mg\nTramadol 50 mg | 50 mg",
        "egfr": "96",
    }
    r = world.client.post("/patients/new", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    world.logout()


def by_api(world: World, mp: pytest.MonkeyPatch, pid: str, tmp: Path) -> None:
    world.login("clin1")
    r = world.client.post("/api/patients", json={"patient": on_ldn_and_tramadol(pid)})
    assert r.status_code == 201, r.text
    world.logout()


def by_fhir_import(world: World, mp: pytest.MonkeyPatch, pid: str, tmp: Path) -> None:
    patient = patient_from_data(on_ldn_and_tramadol(pid))
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in patient_to_resources(patient)],
    }
    path = tmp / f"{pid}.json"
    path.write_text(json.dumps(bundle))
    run(world, mp, "import", str(path))


def by_import_of_an_ldncare_export(
    world: World, mp: pytest.MonkeyPatch, pid: str, tmp: Path
) -> None:
    # Stored and exported by another ldncare (its own database), then imported here.
    other = tmp / "other.db"
    path = tmp / f"{pid}.yaml"
    path.write_text(yaml.safe_dump(on_ldn_and_tramadol(pid)))
    mp.setenv("LDNCARE_DATABASE_URL", f"sqlite:///{other}")
    runner = CliRunner()
    assert runner.invoke(cli, ["patient", "add", str(path)]).exit_code == 0
    out = tmp / f"{pid}.export.json"
    exported = runner.invoke(cli, ["export", pid, "--fhir", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    run(world, mp, "import", str(out))


def by_reassessment(world: World, mp: pytest.MonkeyPatch, pid: str, tmp: Path) -> None:
    # Stored on naltrexone alone; a later assessment (API) finds the tramadol.
    path = tmp / f"{pid}.yaml"
    path.write_text(yaml.safe_dump(on_ldn_and_tramadol(pid, tramadol=False)))
    run(world, mp, "patient", "add", str(path), "--clinic", "clinic-1")
    world.login("clin1")
    db_id = world.client.get(f"/patients/by-external/{pid}", follow_redirects=False)
    assert db_id.status_code in (302, 303, 307), db_id.text
    patient_id = db_id.headers["location"].rsplit("/", 1)[-1]
    r = world.client.post(
        f"/api/patients/{patient_id}/assessments",
        json={"patient": on_ldn_and_tramadol(pid), "reason": "tramadol found"},
    )
    assert r.status_code == 201, r.text
    world.logout()


ENTRY_PATHS: dict[str, Callable[[World, pytest.MonkeyPatch, str, Path], None]] = {
    "cli-patient-add": by_cli,
    "web-form": by_web_form,
    "api": by_api,
    "fhir-import": by_fhir_import,
    "fhir-import-of-ldncare-export": by_import_of_an_ldncare_export,
    "re-assessment": by_reassessment,
}


# --- readers: what each one says of patient ``pid`` --------------------------------------------


def read_screen(world: World, mp: pytest.MonkeyPatch, pid: str) -> list[tuple[str, str, str]]:
    out = json.loads(run(world, mp, "screen", "--as-of", TODAY.isoformat(), "--format", "json"))
    return sorted(
        (h["check"], h["severity"], h["rule_id"]) for h in out["hits"] if h["patient_id"] == pid
    )


def read_dashboard(world: World, pid: str) -> tuple[bool, bool]:
    login_page(world, "root")
    html = world.client.get("/").text
    world.logout()
    rows = [r for r in re.split(r"<tr\b", html) if f"Patient {pid}<" in r or f">{pid}<" in r]
    assert len(rows) == 1, f"{pid} is not listed once on the dashboard"
    return ("safety alert" in rows[0], ALERT in rows[0])


def read_api(world: World, pid: str) -> tuple[str, bool, str, bool]:
    world.login("root")
    [listed] = [p for p in world.client.get("/api/patients").json() if p["external_id"] == pid]
    record = world.client.get(f"/api/patients/{listed['id']}").json()["patient"]
    world.logout()
    return (
        listed["status"]["stage"],
        ALERT in listed["status"]["flags"],
        record["status"]["stage"],
        ALERT in record["status"]["flags"],
    )


def read_export(world: World, mp: pytest.MonkeyPatch, pid: str) -> list[tuple[str, str]] | None:
    """The medicines the exported Bundle says she takes (None: no plan stored to export)."""
    mp.setenv("LDNCARE_DATABASE_URL", str(world.engine.url))
    result = CliRunner().invoke(cli, ["export", pid, "--fhir"])
    if result.exit_code == 3 and "no stored plan" in result.output:
        return None
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.stdout)
    meds = []
    for entry in bundle["entry"]:
        r = entry["resource"]
        if r["resourceType"] in ("MedicationStatement", "MedicationRequest"):
            if is_ldncare_output(r) or r["status"] != "active":
                continue
            dosage = r.get("dosage") or r.get("dosageInstruction") or [{}]
            meds.append((r["medicationCodeableConcept"]["text"], dosage[0].get("text", "")))
    return sorted(meds)


EXPECTED = {
    "screen": [("ldn_with_opioid", "critical", "population.ldn.opioid_active")],
    "dashboard": (True, True),
    "api": ("safety_alert", True, "safety_alert", True),
    "export": [("Naltrexone 3 mg", "3 mg"), ("Tramadol 50 mg", "50 mg")],
}


def test_naltrexone_with_tramadol_is_the_same_patient_whatever_stored_her_for_every_reader(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    facts: dict[str, dict[str, Any]] = {}
    for name, store in ENTRY_PATHS.items():
        pid = f"nal-tram-{name}"
        work = tmp_path / name
        work.mkdir()
        store(world, monkeypatch, pid, work)
        facts[name] = {
            "screen": read_screen(world, monkeypatch, pid),
            "dashboard": read_dashboard(world, pid),
            "api": read_api(world, pid),
            "export": read_export(world, monkeypatch, pid),
        }
    # A FHIR import of EHR data stores no plan, so there is nothing to export; every other
    # reader sees her the same as the other paths do.
    assert facts["fhir-import"].pop("export") is None
    for name, seen in facts.items():
        assert seen == {k: v for k, v in EXPECTED.items() if k in seen}, name


def test_the_latest_assessment_wins_when_the_tramadol_is_stopped(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pid = "nal-tram-stopped"
    by_cli(world, monkeypatch, pid, tmp_path)
    assert read_screen(world, monkeypatch, pid) == EXPECTED["screen"]
    world.login("clin1")
    [listed] = [p for p in world.client.get("/api/patients").json() if p["external_id"] == pid]
    later = on_ldn_and_tramadol(pid)
    later["medications"][1] |= {"status": "stopped", "end": "2026-01-10"}
    r = world.client.post(
        f"/api/patients/{listed['id']}/assessments",
        json={"patient": later, "reason": "tramadol stopped in January"},
    )
    assert r.status_code == 201, r.text
    world.logout()
    assert read_screen(world, monkeypatch, pid) == []
    assert read_dashboard(world, pid)[1] is False
    exported = read_export(world, monkeypatch, pid)
    assert exported == [("Naltrexone 3 mg", "3 mg")]
