"""Re-assessing on the patient form: the record is the last one with the form's edits, never the
form alone (the form shows only current medicines, conditions, four results and a few facts)."""

from __future__ import annotations

import html
import json
import re
from datetime import date
from importlib import resources
from typing import Any

from ldncare.core.patient import Patient
from ldncare.evidence.loader import load_evidence
from ldncare.patient_file import patient_from_data
from ldncare.web.forms import apply_edits, prefill
from ldncare.web.service import latest_assessment
from tests.web.conftest import TODAY, World, patient_file


def _opioid_rxnorm(display: str) -> str:
    """An RxNorm code of the vendored CDC opioid value set, found by its display."""
    node = resources.files("ldncare.evidence") / "data/vocabulary/opioid_rxnorm.json"
    concepts = json.loads(node.read_text())["value_sets"]["opioid_analgesics"]["concepts"]
    return next(code for code, name in concepts["rxnorm"].items() if name == display)


# Codes from the vendored vocabularies (conditions.yaml, ldn.yaml, the CDC opioid value set).
FIBROMYALGIA_SNOMED = "203082005"
OXYCODONE_5MG = "Oxycodone Hydrochloride 5 MG Oral Tablet"
OXYCODONE = (OXYCODONE_5MG, _opioid_rxnorm(OXYCODONE_5MG))


def _form_as_shown(page: str) -> dict[str, str]:
    """What a browser posts back when the clinician changes nothing."""
    form: dict[str, str] = {}
    for m in re.finditer(r'<input[^>]*name="([^"]+)"[^>]*>', page):
        tag, name = m.group(0), m.group(1)
        if 'type="checkbox"' in tag and "checked" not in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        form[name] = html.unescape(value.group(1)) if value else ""
    for m in re.finditer(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', page, re.S):
        form[m.group(1)] = html.unescape(m.group(2))
    for m in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)"\s*selected', m.group(2))
        form[m.group(1)] = chosen.group(1) if chosen else ""
    return form


def _store(world: World, pid: str, **extra: Any) -> int:
    r = world.client.post("/api/patients", json={"patient": patient_file(pid, **extra)})
    assert r.status_code == 201, r.text
    patient_id: int = r.json()["id"]
    return patient_id


def _eligibility(world: World, patient_id: int) -> str:
    plan = world.client.get(f"/api/patients/{patient_id}").json()["plan"]
    eligibility: str = plan["contract"]["ldn"]["eligibility"]
    return eligibility


def _reassess(world: World, patient_id: int, **changes: str) -> Patient:
    form = _form_as_shown(world.client.get(f"/patients/{patient_id}/assess").text)
    form.update(changes)
    r = world.client.post(f"/patients/{patient_id}/assess", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    last = latest_assessment(world.engine, patient_id)
    assert last is not None
    return Patient.model_validate(last.snapshot)


def test_unchanged_resubmit_keeps_recently_stopped_tramadol_and_not_recommended(
    world: World,
) -> None:
    world.login("clin1")
    tramadol = {"name": "Tramadol", "status": "stopped", "start": "2026-01-01", "end": "2026-02-27"}
    pid = _store(world, "p-washout", medications=[tramadol])
    assert _eligibility(world, pid) == "not_recommended"
    after = _reassess(world, pid)
    assert _eligibility(world, pid) == "not_recommended"
    (kept,) = [m for m in after.medications if m.name == "Tramadol"]
    assert (kept.status, kept.end) == ("stopped", date(2026, 2, 27))
    # The eGFR nobody touched keeps the day it was measured, not the day of the resubmit.
    assert [(lab.kind, lab.date) for lab in after.labs] == [("egfr", date(2026, 2, 1))]


def test_unchanged_resubmit_keeps_naltrexone_allergy_and_hidden_facts(world: World) -> None:
    world.login("clin1")
    pid = _store(
        world,
        "p-allergy",
        allergies=[{"substance": "Naltrexone", "code": load_evidence().ldn.rxnorm_ingredient}],
        weight_kg=61.5,
        height_cm=168,
        conditions=[
            {"name": "Pudendal neuralgia"},
            {"name": "Fibromyalgia", "code": FIBROMYALGIA_SNOMED},
        ],
        medications=[{"name": "Paracetamol", "dose": "1 g"}],
        labs=[
            {"test": "egfr", "value": 96, "unit": "mL/min/1.73m2", "date": "2026-02-01"},
            {"test": "inr", "value": 1.1, "date": "2026-02-20"},
            {"test": "tsh", "value": 2.1, "unit": "mIU/L", "date": "2026-02-20"},
        ],
    )
    before = latest_assessment(world.engine, pid)
    assert before is not None and _eligibility(world, pid) == "not_recommended"
    after = _reassess(world, pid)
    assert _eligibility(world, pid) == "not_recommended"
    assert after == Patient.model_validate(before.snapshot)


def test_edits_on_the_form_are_applied_and_the_rest_kept(world: World) -> None:
    world.login("clin1")
    tramadol = {"name": "Tramadol", "status": "stopped", "start": "2025-01-01", "end": "2025-03-01"}
    oxycodone = {"name": OXYCODONE[0], "dose": "5 mg", "rxnorm": OXYCODONE[1]}
    pid = _store(world, "p-edit", weight_kg=70, medications=[oxycodone, tramadol])
    after = _reassess(
        world,
        pid,
        medications=f"{OXYCODONE[0]} | 10 mg\nAmitriptyline | 10 mg",
        conditions="",
        egfr="88",
        frail="yes",
    )
    coded, stopped, added = after.medications
    # A new dose is an edit of the same medicine: its RxNorm code stays.
    assert (coded.dose_text, coded.rxnorm_codes) == ("10 mg", (OXYCODONE[1],))
    assert (stopped.name, stopped.end) == ("Tramadol", date(2025, 3, 1))
    assert (added.name, added.dose_text) == ("Amitriptyline", "10 mg")
    assert after.conditions == ()
    assert after.frail is True and after.weight_kg == 70
    assert sorted((lab.date, lab.value) for lab in after.labs) == [
        (date(2026, 2, 1), 96),
        (TODAY, 88),
    ]
    assert after.latest_lab("egfr").value == 88  # type: ignore[union-attr]


def test_removed_line_drops_only_that_medicine(world: World) -> None:
    world.login("clin1")
    pid = _store(world, "p-remove", medications=[{"name": "Paracetamol", "dose": "1 g"}])
    after = _reassess(world, pid, medications="")
    assert after.medications == ()


def test_a_second_correction_on_the_same_day_replaces_the_first() -> None:
    previous = patient_from_data(patient_file("p", labs=[]))
    form = {"egfr": "40"}
    first = apply_edits(previous, form, external_id="p", today=TODAY)
    second = apply_edits(first, {"egfr": "45"}, external_id="p", today=TODAY)
    assert [(lab.date, lab.value) for lab in second.labs] == [(TODAY, 45)]


def test_prefill_shows_the_latest_result_by_date() -> None:
    patient = patient_from_data(
        patient_file(
            "p",
            labs=[
                {"test": "alt", "value": 30, "unit": "U/L", "date": "2026-02-01"},
                {"test": "alt", "value": 25, "unit": "U/L", "date": "2025-01-01"},
            ],
        )
    )
    assert prefill(patient.model_dump(mode="json"))["alt"] == "30"


def test_unknown_pregnancy_stays_unknown_on_an_unticked_box() -> None:
    previous = patient_from_data(patient_file("p"))
    assert previous.pregnant is None
    after = apply_edits(previous, {}, external_id="p", today=TODAY)
    assert after == previous
