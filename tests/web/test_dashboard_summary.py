"""The dashboard's set-based status (plan_summaries + recent diary) must equal the full one."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ldncare.core.response import assess_response
from ldncare.core.status import plan_facts, response_status
from ldncare.evidence.loader import load_evidence
from ldncare.patient_file import patient_from_data
from ldncare.store import repository
from ldncare.store.db import make_engine, migrate, open_engine
from ldncare.store.models import PlanSummaryRow
from ldncare.store.population import safety_alerts
from ldncare.store.summaries import patient_summaries
from ldncare.web.demo import load_demo
from ldncare.web.service import plan_contract
from ldncare.web.views import patient_status, summary_status

TODAY = date(2026, 6, 1)
PN = {
    "id": "p1",
    "birth_date": "1970-01-01",
    "sex": "female",
    "conditions": [{"name": "Pudendal neuralgia"}],
}


@pytest.mark.parametrize("days_after_start", [0, 400])
def test_response_shortcuts_give_what_assess_response_gives_without_a_diary(
    days_after_start: int,
) -> None:
    contract = plan_contract(patient_from_data(PN), start=TODAY, today=TODAY, nantes=None)
    facts = plan_facts(contract)
    today = TODAY + timedelta(days=days_after_start)
    expected = assess_response([], contract, today=today, evidence=load_evidence()).status
    assert expected == ("too_early" if days_after_start == 0 else "insufficient_data")

    def never() -> None:
        raise AssertionError("the shortcut must not need the full assessment")

    assert response_status(facts, [], today, never) == expected


@pytest.mark.parametrize("days_later", [0, 30, 120])
def test_dashboard_status_of_every_demo_patient_equals_the_patient_page_status(
    tmp_path: Path, days_later: int
) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    load_demo(engine, today=TODAY)
    today = TODAY + timedelta(days=days_later)
    evidence = load_evidence()
    summaries = patient_summaries(engine, clinic_id="demo-clinic", actor="t", today=today)
    assert len(summaries) >= 6
    for s in summaries:
        plan = repository.latest_plan(engine, s.patient.id, actor="t")
        diary = repository.list_diary(engine, s.patient.id, actor="t")
        notes = repository.list_review_notes(engine, s.patient.id, actor="t")
        # As the patient page computes it (web/service.patient_record), with the critical
        # screening hits of the patient's current state.
        alerts = safety_alerts(engine, today, [s.patient.id]).get(s.patient.id, ())
        full = patient_status(
            plan.contract if plan else None,
            diary,
            today,
            evidence,
            notes[-1] if notes else None,
            alerts,
        )
        assert summary_status(s, today, evidence) == full, s.patient.external_id
        assert s.diary_days == len(diary)
        assert s.last_day == (diary[-1].day if diary else None)


def test_migration_fills_plan_summaries_for_plans_stored_before_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    migrate(engine, "0003")
    on_tramadol = patient_from_data({**PN, "medications": [{"name": "Tramadol 50 MG Oral Tablet"}]})
    contract = plan_contract(on_tramadol, start=TODAY, today=TODAY, nantes=None)
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into patients (id, external_id, snapshot, created_at, created_by) "
                "values (1, 'p1', '{}', '2026-06-01 00:00:00', 't')"
            )
        )
        conn.execute(
            text(
                "insert into plans (patient_id, version, contract, reason, created_at, "
                "created_by) values (1, 1, :c, 'r', '2026-06-01 00:00:00', 't')"
            ),
            {"c": json.dumps(contract)},
        )
    engine.dispose()
    engine = open_engine(url)
    with Session(engine) as s:
        (row,) = s.scalars(select(PlanSummaryRow))
    assert row.patient_id == 1 and row.version == 1
    assert row.eligibility == "not_recommended" and row.opioid_on_record
    assert repository.plan_summary_values(contract) == {
        "eligibility": row.eligibility,
        "opioid_on_record": row.opioid_on_record,
        "review_date": row.review_date,
        "target_reached": row.target_reached,
        "first_dose": row.first_dose,
    }


def test_a_new_plan_version_replaces_the_summary_the_dashboard_reads(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'p.db'}")
    patient = patient_from_data(PN)
    contract = plan_contract(patient, start=TODAY, today=TODAY, nantes=None)
    row = repository.add_patient(engine, patient, plan_contract=contract, actor="t", clinic_id="c")
    later = TODAY + timedelta(days=5)
    moved = plan_contract(patient, start=later, today=later, nantes=None)
    repository.save_plan(engine, row.id, moved, reason="start later", actor="t")
    (s,) = patient_summaries(engine, clinic_id="c", actor="t", today=TODAY)
    assert s.plan is not None and s.plan.version == 2
    assert s.facts is not None and s.facts.first_dose == later
    status = summary_status(s, TODAY, load_evidence())
    assert status.stage == "not_started"
