"""The PDF handout: rendered by WeasyPrint, read back with poppler (pdftotext, pdftoppm)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from ldncare.core.diary import DiaryEntry
from ldncare.patient_file import patient_from_data
from ldncare.web.handout import handout_pdf
from ldncare.web.ics import plan_calendar
from ldncare.web.service import plan_contract
from tests.web.conftest import patient_file

pytestmark = pytest.mark.skipif(
    shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
    reason="poppler-utils missing: run scripts/ci-system-deps.sh",
)


def _contract(**extra: object) -> dict:  # type: ignore[type-arg]
    patient = patient_from_data(patient_file("hana", name="Hana Handout", **extra))
    return plan_contract(patient, start=date(2026, 3, 2), today=date(2026, 3, 2), nantes=None)


def test_handout_pdf_has_the_schedule_and_renders_to_png(tmp_path: Path) -> None:
    contract = _contract()
    diary = [DiaryEntry(day=date(2026, 3, d), pain_avg=6, pain_worst=8, sitting_minutes=30)
             for d in range(1, 5)]  # fmt: skip
    pdf = tmp_path / "handout.pdf"
    pdf.write_bytes(handout_pdf(contract, version=1, diary=diary))
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "Your schedule" in text
    assert "Hana Handout" in text
    for step in contract["ldn"]["schedule"]:
        assert step["start_date"] in text
        assert f"{step['dose_mg']:g} mg" in text
    assert f"Review with your clinician: {contract['ldn']['review_date']}" in text
    for heading in ("What to expect", "Side effects", "Care besides the medicine",
                    "When to seek help", "References"):  # fmt: skip
        assert heading in text
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert pages and pages[0].stat().st_size > 5000


def test_handout_without_ldn_says_so(tmp_path: Path) -> None:
    contract = _contract(medications=[{"name": "Tramadol", "dose": "50 mg"}])
    pdf = tmp_path / "no.pdf"
    pdf.write_bytes(handout_pdf(contract, version=2))
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    assert "does not recommend LDN" in text


def test_calendar_of_a_plan_without_ldn_has_no_events() -> None:
    contract = _contract(medications=[{"name": "Tramadol", "dose": "50 mg"}])
    ics = plan_calendar(contract, patient_key="1", version=2).decode()
    assert "BEGIN:VCALENDAR" in ics and "BEGIN:VEVENT" not in ics
