"""Issue #17, item 2: ``export --fhir`` exports the latest assessment, and export -> import into
an empty store gives back the patient: its plan, so "on LDN", the dose and the screening, and
its diary, so the response to LDN judged from it (SQLite always; PostgreSQL too when
LDNCARE_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import base64
import copy
import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from ldncare.cli.export_command import export_patient
from ldncare.core.diary import DiaryEntry
from ldncare.core.quantity import Dose
from ldncare.evidence.loader import load_evidence
from ldncare.fhir.tags import DIARY_ENTRY_EXT, PLAN_CONTRACT_EXT, is_ldncare_output
from ldncare.importing import import_bundle
from ldncare.patient_file import patient_from_data
from ldncare.planning import make_plan
from ldncare.store import repository
from ldncare.store.db import make_engine, migrate
from ldncare.store.models import AuditRow, PlanSummaryRow
from ldncare.store.population import screen_population
from ldncare.web.demo import PATIENTS, load_demo
from ldncare.web.views import judge, tonight
from tests.integration.followup_db import db_url

__all__ = ["db_url"]

TODAY = date(2026, 12, 4)
DEMO = [p.key for p in PATIENTS]


def _store(path: Path) -> Engine:
    url = f"sqlite:///{path}"
    migrate(url)
    return make_engine(url)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    engine = _store(tmp_path_factory.mktemp("demo") / "demo.db")
    load_demo(engine, today=TODAY)
    return engine


def _screen(engine: Engine, pid: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    return sorted(
        (h.check, h.severity, h.rule_id, dict(h.detail))
        for h in screen_population(engine, TODAY)
        if h.patient_id == pid
    )


def _summary(engine: Engine, pid: str) -> tuple[Any, ...]:
    row = repository.get_patient(engine, pid, actor="test")
    with engine.connect() as conn:
        s = conn.execute(
            select(PlanSummaryRow)
            .where(PlanSummaryRow.patient_id == row.id)
            .order_by(PlanSummaryRow.version.desc())
            .limit(1)
        ).one()
    return (s.eligibility, s.opioid_on_record, s.review_date, s.target_reached, s.first_dose)


def _latest_contract(engine: Engine, pid: str) -> dict[str, Any]:
    plan = repository.latest_plan(engine, pid, actor="test")
    assert plan is not None
    return plan.contract


@pytest.mark.parametrize("pid", DEMO)
def test_demo_patient_exported_and_imported_into_an_empty_store_keeps_ldn_dose_and_screen(
    demo_store: Engine, pid: str, tmp_path: Path
) -> None:
    bundle = json.loads(json.dumps(export_patient(demo_store, pid, actor="test")))
    fresh = _store(tmp_path / "fresh.db")
    report = import_bundle(fresh, bundle, "test", as_of=TODAY)
    assert report.patients_imported == 1 and not report.errors
    assert _latest_contract(fresh, pid) == _latest_contract(demo_store, pid)
    # The dose the patient takes tonight, and where the plan stands, come back the same.
    assert tonight(_latest_contract(fresh, pid), TODAY) == tonight(
        _latest_contract(demo_store, pid), TODAY
    )
    assert _summary(fresh, pid) == _summary(demo_store, pid)
    assert _screen(fresh, pid) == _screen(demo_store, pid)
    # Never "consider LDN" for a patient whose LDN plan is stored.
    assert all(check != "pn_consider_ldn" for check, *_ in _screen(fresh, pid))


def test_titrating_patient_reimported_is_still_on_ldn_not_a_candidate(
    demo_store: Engine, tmp_path: Path
) -> None:
    bundle = export_patient(demo_store, "demo-titrating", actor="test")
    fresh = _store(tmp_path / "fresh.db")
    import_bundle(fresh, bundle, "test", as_of=TODAY)
    tonight_dose = tonight(_latest_contract(fresh, "demo-titrating"), TODAY).to_contract()
    assert (
        tonight_dose == tonight(_latest_contract(demo_store, "demo-titrating"), TODAY).to_contract()
    )
    assert _summary(fresh, "demo-titrating")[0] == "eligible"
    assert _screen(fresh, "demo-titrating") == []  # not "consider LDN": it is under way


def test_demo_safety_export_holds_the_latest_assessment_with_tramadol(demo_store: Engine) -> None:
    bundle = export_patient(demo_store, "demo-safety", actor="test")
    inputs = [e["resource"] for e in bundle["entry"] if not is_ldncare_output(e["resource"])]
    meds = [
        r["medicationCodeableConcept"]["text"]
        for r in inputs
        if r["resourceType"] in ("MedicationStatement", "MedicationRequest")
    ]
    assert any("Tramadol" in m for m in meds), meds
    issues = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DetectedIssue"
    ]
    assert issues  # the plan's own issue about the opioid, now beside the opioid it names


def test_demo_safety_reimported_is_still_screened_as_ldn_with_an_opioid(
    demo_store: Engine, tmp_path: Path
) -> None:
    # Tramadol was found after titration began: the latest plan does not recommend LDN and has
    # no schedule, but nothing recorded that LDN was stopped.
    bundle = export_patient(demo_store, "demo-safety", actor="test")
    fresh = _store(tmp_path / "fresh.db")
    import_bundle(fresh, bundle, "test", as_of=TODAY)
    checks = [(check, severity) for check, severity, *_ in _screen(fresh, "demo-safety")]
    assert checks == [("ldn_with_opioid", "critical")]
    versions = repository.list_plans(fresh, "demo-safety", actor="test")
    assert [p.contract["ldn"]["eligibility"] for p in versions] == ["eligible", "not_recommended"]


def test_reimporting_the_same_export_stores_its_plans_once(
    demo_store: Engine, tmp_path: Path
) -> None:
    bundle = export_patient(demo_store, "demo-trial", actor="test")
    fresh = _store(tmp_path / "fresh.db")
    import_bundle(fresh, bundle, "test", as_of=TODAY)
    again = import_bundle(fresh, bundle, "test", as_of=TODAY)
    assert again.patients_unchanged == 1
    assert len(repository.list_plans(fresh, "demo-trial", actor="test")) == 1


def test_a_corrupt_plan_contract_keeps_the_patient_out_with_a_clear_error(
    demo_store: Engine, tmp_path: Path
) -> None:
    bundle = copy.deepcopy(export_patient(demo_store, "demo-trial", actor="test"))
    [careplan] = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CarePlan"
    ]
    [ext] = [x for x in careplan["extension"] if x["url"] == PLAN_CONTRACT_EXT]
    ext["valueAttachment"]["data"] = base64.b64encode(b'{"schema": "other/9"}').decode()
    fresh = _store(tmp_path / "fresh.db")
    report = import_bundle(fresh, bundle, "test", as_of=TODAY)
    assert report.patients_imported == 0 and report.patients_skipped == 1
    [issue] = report.errors
    assert issue.resource_type == "CarePlan" and "ldncare.plan/1" in issue.message
    assert "other/9" in issue.message


def _diary_and_response(engine: Engine, pid: str) -> tuple[Any, ...]:
    entries = repository.list_diary(engine, pid, actor="test")
    verdict = judge(entries, _latest_contract(engine, pid), TODAY, load_evidence())
    flags = repository.diary_flags(engine, pid, actor="test")
    return entries, None if verdict is None else verdict.to_contract(), flags


def _audit_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(AuditRow.id).where(AuditRow.action != "read")).all())


def test_every_demo_diary_and_its_response_come_back_from_export_and_import(
    demo_store: Engine, db_url: str
) -> None:
    fresh = make_engine(db_url)
    try:
        for pid in DEMO:
            bundle = json.loads(json.dumps(export_patient(demo_store, pid, actor="test")))
            report = import_bundle(fresh, bundle, "test", as_of=TODAY)
            assert report.patients_imported == 1 and not report.errors
            before = _diary_and_response(demo_store, pid)
            assert before[0], f"{pid} has a diary in the demo"
            # Every day (pain, sitting, sleep, side effects, dose taken, PGIC, notes), the
            # flags against the plan, and the judgement of the response: identical.
            assert _diary_and_response(fresh, pid) == before
    finally:
        fresh.dispose()


@pytest.mark.parametrize(
    ("pid", "status"),
    [("demo-responder", "responder_substantial"), ("demo-nonresponder", "non_responder")],
)
def test_responder_and_nonresponder_reimported_are_judged_as_before(
    demo_store: Engine, tmp_path: Path, pid: str, status: str
) -> None:
    # Without its diary, a re-imported patient at review is "insufficient data": the review
    # would not say whether LDN helped.
    bundle = export_patient(demo_store, pid, actor="test")
    fresh = _store(tmp_path / "fresh.db")
    import_bundle(fresh, bundle, "test", as_of=TODAY)
    for engine in (demo_store, fresh):
        entries = repository.list_diary(engine, pid, actor="test")
        verdict = judge(entries, _latest_contract(engine, pid), TODAY, load_evidence())
        assert verdict is not None and verdict.status == status


def _titrating_with_a_full_diary(engine: Engine) -> list[DiaryEntry]:
    """A woman with PN in her second week of LDN whose diary holds every kind of day: doses
    taken (with the time), a missed dose, vivid dreams and a headache, a day with no pain
    score, PGIC and notes."""
    patient = patient_from_data(
        {"id": "pn-full-diary", "birth_date": "1980-03-03", "sex": "female",
         "conditions": [{"name": "Pudendal neuralgia", "status": "active"}]}
    )  # fmt: skip
    start = TODAY - timedelta(days=10)
    plan = make_plan(patient, start=start, as_of=start).to_contract(load_evidence())
    repository.add_patient(engine, patient, plan_contract=plan, actor="test")
    days = [
        {"day": start, "pain_avg": 7, "pain_worst": 9, "dose_mg": "1.5 mg",
         "dose_time": "22:00", "sitting_minutes": 20, "sleep_quality": 4},
        {"day": start + timedelta(days=1), "dose_taken": False, "notes": "forgot the capsule"},
        {"day": start + timedelta(days=2), "pain_avg": 6, "dose_mg": "1500 mcg",
         "side_effects": [{"effect": "vivid_dreams", "severity": "moderate"},
                          {"effect": "headache", "severity": "mild", "note": "morning"}]},
        {"day": start + timedelta(days=3), "dose_taken": True, "pgic": 3},
    ]  # fmt: skip
    for day in days:
        repository.add_or_update_diary_entry(engine, patient.id, day, today=TODAY, actor="test")
    return repository.list_diary(engine, patient.id, actor="test")


def test_titrating_woman_keeps_doses_taken_missed_dose_and_side_effects_after_reimport(
    db_url: str, tmp_path: Path
) -> None:
    source = _store(tmp_path / "source.db")
    written = _titrating_with_a_full_diary(source)
    bundle = json.loads(json.dumps(export_patient(source, "pn-full-diary", actor="test")))
    fresh = make_engine(db_url)
    try:
        report = import_bundle(fresh, bundle, "test", as_of=TODAY)
        assert report.patients_imported == 1 and not report.errors
        back = repository.list_diary(fresh, "pn-full-diary", actor="test")
        assert back == written
        assert [e.dose for e in back] == [
            Dose(Decimal("1.5"), "mg"),
            None,
            Dose(Decimal("1.5"), "mg"),
            None,
        ]
        assert [e.took_dose for e in back] == [True, False, True, True]
        assert {s.effect for s in back[2].side_effects} == {"vivid_dreams", "headache"}
        assert _diary_and_response(fresh, "pn-full-diary") == _diary_and_response(
            source, "pn-full-diary"
        )
    finally:
        fresh.dispose()


def test_reimporting_the_same_export_writes_no_diary_day_twice(
    demo_store: Engine, tmp_path: Path
) -> None:
    bundle = export_patient(demo_store, "demo-responder", actor="test")
    fresh = _store(tmp_path / "fresh.db")
    import_bundle(fresh, bundle, "test", as_of=TODAY)
    writes = _audit_rows(fresh)
    again = import_bundle(fresh, bundle, "test", as_of=TODAY)
    assert again.patients_unchanged == 1
    assert _audit_rows(fresh) == writes  # no diary day (nor plan) written a second time


def test_a_diary_day_with_an_impossible_pain_score_keeps_the_patient_out(
    demo_store: Engine, tmp_path: Path
) -> None:
    bundle = copy.deepcopy(export_patient(demo_store, "demo-trial", actor="test"))
    day = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation" and is_ldncare_output(e["resource"])
    )
    [ext] = [x for x in day["extension"] if x["url"] == DIARY_ENTRY_EXT]
    ext["valueAttachment"]["data"] = base64.b64encode(
        json.dumps({"day": day["effectiveDateTime"], "pain_avg": 11}).encode()
    ).decode()
    fresh = _store(tmp_path / "fresh.db")
    report = import_bundle(fresh, bundle, "test", as_of=TODAY)
    assert report.patients_imported == 0 and report.patients_skipped == 1
    [issue] = report.errors
    assert issue.resource_type == "Observation" and "pain_avg" in issue.message
    assert "11 is out of range" in issue.message


def test_an_export_from_before_the_whole_day_rode_along_gives_back_the_pain_scores(
    demo_store: Engine, tmp_path: Path
) -> None:
    bundle = copy.deepcopy(export_patient(demo_store, "demo-trial", actor="test"))
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Observation":
            entry["resource"].pop("extension", None)
    fresh = _store(tmp_path / "fresh.db")
    import_bundle(fresh, bundle, "test", as_of=TODAY)
    scores = [(e.day, e.pain_avg) for e in repository.list_diary(fresh, "demo-trial", actor="t")]
    original = repository.list_diary(demo_store, "demo-trial", actor="test")
    assert scores == [(e.day, e.pain_avg) for e in original if e.pain_avg is not None]
