"""Issue #17, item 2: ``export --fhir`` exports the latest assessment, and export -> import into
an empty store gives back the patient: its plan, so "on LDN", the dose and the screening."""

from __future__ import annotations

import base64
import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from ldncare.cli.export_command import export_patient
from ldncare.fhir.importer import import_bundle
from ldncare.fhir.tags import PLAN_CONTRACT_EXT, is_ldncare_output
from ldncare.store import repository
from ldncare.store.db import make_engine, migrate
from ldncare.store.models import PlanSummaryRow
from ldncare.store.population import screen_population
from ldncare.web.demo import PATIENTS, load_demo
from ldncare.web.views import tonight

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
