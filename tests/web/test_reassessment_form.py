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


def test_unchanged_resubmit_keeps_recently_stopped_tramadol_and_its_washout(
    world: World,
) -> None:
    world.login("clin1")
    tramadol = {"name": "Tramadol", "status": "stopped", "start": "2026-01-01", "end": "2026-02-27"}
    pid = _store(world, "p-washout", medications=[tramadol])
    # The washout is the only contraindication: a deferred start after it (review item 8).
    assert "ldn.opioid.washout" in _rules(world, pid)
    assert _eligibility(world, pid) == "eligible_with_cautions"
    after = _reassess(world, pid)
    assert "ldn.opioid.washout" in _rules(world, pid)
    assert "schedule.washout_deferred" in _rules(world, pid)
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
    # The cleared condition is history now, not gone.
    assert [(c.display, c.clinical_status, c.abatement) for c in after.conditions] == [
        ("Pudendal neuralgia", "resolved", TODAY)
    ]
    assert after.frail is True and after.weight_kg == 70
    assert sorted((lab.date, lab.value) for lab in after.labs) == [
        (date(2026, 2, 1), 96),
        (TODAY, 88),
    ]
    assert after.latest_lab("egfr").value == 88  # type: ignore[union-attr]


def test_removed_line_stops_only_that_medicine_today(world: World) -> None:
    world.login("clin1")
    pid = _store(
        world,
        "p-remove",
        medications=[{"name": "Paracetamol", "dose": "1 g"}, {"name": "Amitriptyline"}],
    )
    after = _reassess(world, pid, medications="Amitriptyline")
    assert [(m.name, m.status, m.end) for m in after.medications] == [
        ("Paracetamol", "stopped", TODAY),
        ("Amitriptyline", "active", None),
    ]


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


def _rules(world: World, patient_id: int) -> list[str]:
    plan = world.client.get(f"/api/patients/{patient_id}").json()["plan"]
    return sorted(f["rule"] for f in plan["contract"]["ldn"]["findings"])


def test_deleting_the_oxycodone_line_records_it_stopped_today_and_the_washout_applies(
    world: World,
) -> None:
    world.login("clin1")
    oxycodone = {"name": OXYCODONE[0], "dose": "5 mg", "rxnorm": OXYCODONE[1]}
    pid = _store(world, "p-oxy-stop", medications=[oxycodone, {"name": "Paracetamol"}])
    assert "ldn.opioid.active" in _rules(world, pid)
    after = _reassess(world, pid, medications="Paracetamol")
    stopped = after.medications[0]
    assert (stopped.name, stopped.status, stopped.end) == (OXYCODONE[0], "stopped", TODAY)
    assert stopped.rxnorm_codes == (OXYCODONE[1],)
    # The washout is the only contraindication: a deferred start after it (review item 8).
    assert _eligibility(world, pid) == "eligible_with_cautions"
    rules = _rules(world, pid)
    assert "ldn.opioid.washout" in rules and "ldn.opioid.active" not in rules
    assert "schedule.washout_deferred" in rules


def test_deleting_the_opioid_use_disorder_line_keeps_it_as_history(world: World) -> None:
    world.login("clin1")
    conditions = [{"name": "Pudendal neuralgia"}, {"name": "Opioid use disorder"}]
    pid = _store(world, "p-oud", conditions=conditions)
    assert "ldn.oud.diagnosis" in _rules(world, pid)
    after = _reassess(world, pid, conditions="Pudendal neuralgia")
    assert [(c.display, c.clinical_status, c.abatement) for c in after.conditions] == [
        ("Pudendal neuralgia", "active", None),
        ("Opioid use disorder", "resolved", TODAY),
    ]
    assert "ldn.oud.diagnosis" in _rules(world, pid)


def test_a_deleted_medicine_that_had_not_started_is_cancelled_without_an_end() -> None:
    later = {"name": "Tramadol", "start": "2026-04-01"}
    previous = patient_from_data(patient_file("p", medications=[later]))
    after = apply_edits(previous, {"medications": ""}, external_id="p", today=TODAY)
    (med,) = after.medications
    assert (med.status, med.start, med.end) == ("cancelled", date(2026, 4, 1), None)


def test_an_end_already_recorded_before_today_is_kept_when_the_line_is_deleted() -> None:
    ended = {"name": "Tramadol", "start": "2026-01-01", "end": "2026-02-20"}
    previous = patient_from_data(patient_file("p", medications=[ended]))
    after = apply_edits(previous, {"medications": ""}, external_id="p", today=TODAY)
    (med,) = after.medications
    assert (med.status, med.end) == ("stopped", date(2026, 2, 20))


def test_a_raised_alt_typed_on_the_form_is_flagged_against_the_stored_upper_limit(
    world: World,
) -> None:
    world.login("clin1")
    alt = {"test": "alt", "value": 22, "unit": "U/L", "date": "2026-02-01", "upper_limit": 35}
    pid = _store(world, "p-alt", labs=[alt])
    assert "ldn.hepatic.enzymes" not in _rules(world, pid)
    after = _reassess(world, pid, alt="120")
    latest = after.latest_lab("alt")
    assert latest is not None
    assert (latest.value, latest.date, latest.upper_limit) == (120, TODAY, 35)
    # 120 U/L is more than 3 times the stored limit of 35: the marked-rise rule (issue 14).
    assert "ldn.hepatic.enzymes_marked" in _rules(world, pid)


def test_no_upper_limit_is_carried_from_a_result_in_another_unit() -> None:
    alt = {"test": "alt", "value": 0.4, "unit": "ukat/L", "date": "2026-02-01", "upper_limit": 0.6}
    previous = patient_from_data(patient_file("p", labs=[alt]))
    after = apply_edits(previous, {"alt": "40"}, external_id="p", today=TODAY)
    latest = after.latest_lab("alt")
    assert latest is not None
    assert (latest.value, latest.unit, latest.upper_limit) == (40, "U/L", None)


def test_clearing_a_mistyped_egfr_keeps_the_earlier_real_one() -> None:
    previous = patient_from_data(
        patient_file(
            "p",
            labs=[
                {"test": "egfr", "value": 92, "unit": "mL/min/1.73m2", "date": "2025-06-01"},
                {"test": "egfr", "value": 25, "unit": "mL/min/1.73m2", "date": "2026-02-01"},
            ],
        )
    )
    form = prefill(previous.model_dump(mode="json"))
    assert form["egfr"] == "25"
    after = apply_edits(previous, {**form, "egfr": ""}, external_id="p", today=TODAY)
    assert [(lab.value, lab.date) for lab in after.labs] == [(92, date(2025, 6, 1))]


def test_creatinine_in_umol_per_litre_is_not_shown_under_mg_per_dl(world: World) -> None:
    world.login("clin1")
    creatinine = {"test": "creatinine", "value": 88, "unit": "umol/L", "date": "2026-02-01"}
    pid = _store(world, "p-creat", labs=[creatinine])
    page = world.client.get(f"/patients/{pid}/assess").text
    assert _form_as_shown(page)["creatinine"] == ""
    assert "Latest on record: 88 umol/L on 2026-02-01, not in mg/dL" in page
    # Unchanged, the stored result stays as it was (not re-recorded as 88 mg/dL).
    after = _reassess(world, pid)
    assert [(lab.value, lab.unit) for lab in after.labs if lab.kind == "creatinine"] == [
        (88, "umol/L")
    ]


def test_a_result_in_the_forms_unit_spelled_differently_is_shown() -> None:
    egfr = {"test": "egfr", "value": 70, "unit": "mL/min/1.73 m²", "date": "2026-02-01"}
    patient = patient_from_data(patient_file("p", labs=[egfr]))
    assert prefill(patient.model_dump(mode="json"))["egfr"] == "70"


def test_a_form_opened_before_another_assessment_is_refused(world: World) -> None:
    world.login("clin1")
    pid = _store(world, "p-stale")
    stale = _form_as_shown(world.client.get(f"/patients/{pid}/assess").text)
    assert stale["record_version"]
    first = _reassess(world, pid, medications="Paracetamol | 1 g\nTramadol | 50 mg")
    r = world.client.post(f"/patients/{pid}/assess", data={**stale, "egfr": "40"})
    assert r.status_code == 422
    assert "the record changed since this form was opened" in r.text
    assert "reload the form" in r.text
    last = latest_assessment(world.engine, pid)
    assert last is not None and Patient.model_validate(last.snapshot) == first


def test_a_post_without_the_record_version_is_still_accepted(world: World) -> None:
    world.login("clin1")
    pid = _store(world, "p-old-client")
    form = _form_as_shown(world.client.get(f"/patients/{pid}/assess").text)
    _reassess(world, pid, egfr="80")
    del form["record_version"]
    r = world.client.post(f"/patients/{pid}/assess", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
