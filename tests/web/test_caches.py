"""The speed-ups must never show stale data: the chart memo and the dashboard's plan cache."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from ldncare.core.diary import DiaryEntry, parse_entry
from ldncare.patient_file import patient_from_data
from ldncare.store import repository
from ldncare.store.db import open_engine
from ldncare.store.summaries import patient_summaries
from ldncare.web.charts import diary_chart_svg
from ldncare.web.service import plan_contract

TODAY = date(2026, 6, 1)


def _entry(day: date, pain: int) -> DiaryEntry:
    return parse_entry(
        {"day": day.isoformat(), "pain_avg": pain, "pain_worst": 9, "dose_taken": True},
        today=TODAY,
    )


def test_chart_is_redrawn_when_a_diary_entry_changes() -> None:
    start = TODAY - timedelta(days=10)
    entries = [_entry(start + timedelta(days=d), 5) for d in range(10)]
    first = diary_chart_svg(entries, None)
    assert diary_chart_svg(entries, None) == first
    changed = [*entries[:-1], _entry(entries[-1].day, 1)]
    assert diary_chart_svg(changed, None) != first
    assert diary_chart_svg(entries, None, title="Other") != first


def test_dashboard_reads_the_latest_plan_version_not_a_cached_one(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'c.db'}")
    data = {
        "id": "p1",
        "birth_date": "1970-01-01",
        "sex": "female",
        "conditions": [{"name": "Pudendal neuralgia"}],
    }
    patient = patient_from_data(data)
    contract = plan_contract(patient, start=TODAY, today=TODAY, nantes=None)
    row = repository.add_patient(engine, patient, plan_contract=contract, clinic_id="c1", actor="t")
    (first,) = patient_summaries(engine, clinic_id="c1", actor="t", today=TODAY)
    assert first.plan is not None and first.plan.version == 1
    assert first.facts is not None
    assert first.facts.eligibility == contract["ldn"]["eligibility"] != "not_recommended"

    on_tramadol = patient_from_data(
        {**data, "medications": [{"name": "Tramadol 50 MG Oral Tablet"}]}
    )
    stopped = plan_contract(on_tramadol, start=TODAY, today=TODAY, nantes=None)
    assert stopped["ldn"]["eligibility"] == "not_recommended"
    repository.save_plan(engine, row.id, stopped, reason="tramadol started", actor="t")
    (second,) = patient_summaries(engine, clinic_id="c1", actor="t", today=TODAY)
    assert second.plan is not None and second.plan.version == 2
    assert second.facts is not None and second.facts.eligibility == "not_recommended"
    assert second.facts.opioid_on_record
