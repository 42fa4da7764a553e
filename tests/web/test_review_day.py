"""The day of the last review note is the local day, like "today": notes are stored in UTC."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from ldncare.evidence.loader import load_evidence
from ldncare.patient_file import patient_from_data
from ldncare.store import repository
from ldncare.store.db import open_engine
from ldncare.store.models import ReviewNoteRow
from ldncare.web.service import plan_contract
from ldncare.web.views import patient_status

START = date(2026, 3, 2)
REVIEW = date(2026, 6, 8)  # the shipped titration's review date for START (target + 8 weeks)
PN = {
    "id": "p1",
    "birth_date": "1970-01-01",
    "sex": "female",
    "conditions": [{"name": "Pudendal neuralgia"}],
}
# 08:00 on the review day in Auckland (UTC+12 in June) is still the day before in UTC.
WRITTEN = datetime(2026, 6, 7, 20, 0, tzinfo=UTC)


@pytest.fixture
def in_auckland(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _contract() -> dict[str, object]:
    return plan_contract(patient_from_data(PN), start=START, today=START, nantes=None)


def _note(at: datetime) -> ReviewNoteRow:
    return ReviewNoteRow(patient_id=1, text="reviewed", created_at=at, created_by="t")


def test_the_review_day_is_set_by_the_shipped_titration() -> None:
    assert _contract()["ldn"]["review_date"] == REVIEW.isoformat()  # type: ignore[index]


@pytest.mark.usefixtures("in_auckland")
@pytest.mark.parametrize("stored", [WRITTEN, WRITTEN.replace(tzinfo=None)], ids=["aware", "naive"])
def test_a_note_written_on_the_local_review_morning_clears_review_due(stored: datetime) -> None:
    status = patient_status(_contract(), [], REVIEW, load_evidence(), _note(stored))
    assert "review due" not in status.flags


@pytest.mark.usefixtures("in_auckland")
def test_the_local_day_before_the_review_leaves_it_due() -> None:
    evening_before = datetime(2026, 6, 7, 10, 0, tzinfo=UTC)  # 22:00 on 7 June in Auckland
    status = patient_status(_contract(), [], REVIEW, load_evidence(), _note(evening_before))
    assert "review due" in status.flags


@pytest.mark.usefixtures("in_auckland")
def test_a_note_read_back_from_sqlite_is_dated_locally(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'n.db'}")
    patient = patient_from_data(PN)
    row = repository.add_patient(engine, patient, plan_contract=_contract(), actor="t")
    repository.add_review_note(engine, row.id, "reviewed", actor="t")
    with engine.begin() as conn:
        conn.execute(update(ReviewNoteRow).values(created_at=WRITTEN))
    (note,) = repository.list_review_notes(engine, row.id, actor="t")
    status = patient_status(_contract(), [], REVIEW, load_evidence(), note)
    assert "review due" not in status.flags
