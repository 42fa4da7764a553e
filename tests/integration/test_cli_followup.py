"""The follow-up CLI end to end on a real SQLite file (typer's CliRunner)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ldncare.cli.followup_commands import register
from ldncare.core.patient import Patient
from ldncare.store import repository as repo
from ldncare.store.db import make_engine
from tests.plan_parts import ldn_part

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "ldncare" / "examples" / "pn-example.yaml"

app = typer.Typer()


@app.callback()
def _root() -> None:
    """ldncare (test harness)."""


register(app)
runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LDNCARE_DATABASE_URL", url)
    monkeypatch.setenv("LDNCARE_USER", "tester")
    return url


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def plan_contract() -> dict[str, Any]:
    """A hand-made stored plan: the schema id and an LDN part (4.5 mg at bedtime until the
    review)."""
    part = ldn_part([("2025-03-01", "2025-05-24", 4.5)], "2025-05-24")
    return {"schema": "ldncare.plan/1", "ldn": part.model_dump(mode="json")}


@pytest.fixture
def stored(db: str) -> str:
    """A patient with a hand-made plan: baseline 6/10, then 3/10 on LDN (a 50 % response)."""
    engine = make_engine(db)
    from ldncare.store.db import migrate

    migrate(engine)
    repo.add_patient(
        engine, Patient(id="pn-7", name="B. Test"), plan_contract=plan_contract(), actor="test"
    )
    rows = ["day,pain_avg,sitting_minutes,dose"]
    for i in range(14):
        rows.append(f"{(date(2025, 2, 15) + timedelta(days=i)).isoformat()},6,20,")
    for i in range(14):
        rows.append(f"{(date(2025, 5, 11) + timedelta(days=i)).isoformat()},3,40,4.5 mg")
    repo.import_diary_csv(
        engine, "pn-7", "\n".join(rows) + "\n", today=date(2025, 5, 24), actor="test"
    )
    engine.dispose()
    return "pn-7"


def test_patient_add_stores_the_patient_and_plan_version_one(db: str) -> None:
    result = run("patient", "add", str(EXAMPLE), "--start", "2025-03-01")
    assert result.exit_code == 0, result.output
    assert "plan version 1" in result.output
    listed = run("patient", "list")
    assert "pn-example" in listed.output
    shown = run("patient", "show", "pn-example")
    assert shown.exit_code == 0
    assert "plan v1" in shown.output and "by cli:tester" in shown.output


def test_adding_the_same_patient_twice_fails_with_one_line(db: str) -> None:
    assert run("patient", "add", str(EXAMPLE)).exit_code == 0
    again = run("patient", "add", str(EXAMPLE))
    assert again.exit_code == 2
    assert "cannot be used for a new patient" in again.output
    assert len(again.output.strip().splitlines()) == 1


def test_unknown_patient_exits_not_found(db: str) -> None:
    result = run("patient", "show", "ghost")
    assert result.exit_code == 3
    assert result.output.startswith("ldncare: error: no patient")


def test_diary_add_then_update_the_same_day(stored: str) -> None:
    first = run(
        "diary",
        "add",
        stored,
        "--day",
        "2025-05-25",
        "--pain-avg",
        "4",
        "--dose",
        "4.5 mg",
        "--side-effect",
        "headache:mild",
        "--today",
        "2025-05-25",
    )
    assert first.exit_code == 0, first.output
    assert "recorded 2025-05-25" in first.output
    second = run(
        "diary", "add", stored, "--day", "2025-05-25", "--pain-avg", "2", "--today", "2025-05-25"
    )
    assert "updated 2025-05-25" in second.output
    exported = run("diary", "export", stored)
    assert exported.output.count("2025-05-25") == 1
    assert "2025-05-25,2," in exported.output


def test_diary_add_refuses_out_of_range_pain_and_unitless_dose(stored: str) -> None:
    bad = run("diary", "add", stored, "--day", "2025-05-20", "--pain-avg", "12")
    assert bad.exit_code == 2
    assert "pain_avg: 12 is out of range" in bad.output
    unitless = run("diary", "add", stored, "--day", "2025-05-20", "--dose", "4.5")
    assert unitless.exit_code == 2
    assert "has no unit" in unitless.output


def test_diary_add_refuses_a_future_day(stored: str) -> None:
    result = run(
        "diary", "add", stored, "--day", "2025-06-02", "--pain-avg", "3", "--today", "2025-06-01"
    )
    assert result.exit_code == 2
    assert "in the future" in result.output


def test_off_schedule_dose_is_recorded_with_a_flag(stored: str) -> None:
    result = run(
        "diary",
        "add",
        stored,
        "--day",
        "2025-05-20",
        "--pain-avg",
        "3",
        "--dose",
        "3 mg",
        "--today",
        "2025-05-24",
    )
    assert result.exit_code == 0
    assert "flag: 2025-05-20: dose taken 3 mg differs from the scheduled 4.5 mg" in result.output


def test_diary_import_and_export_files(stored: str, tmp_path: Path) -> None:
    out = tmp_path / "diary.csv"
    assert run("diary", "export", stored, "--out", str(out)).exit_code == 0
    text = out.read_text()
    assert text.startswith("day,pain_avg")
    assert len(text.splitlines()) == 29  # header + 28 days
    result = run("diary", "import", stored, str(out), "--today", "2025-05-24")
    assert result.exit_code == 0, result.output
    assert "imported 28 day(s): 0 new, 28 updated" in result.output


def test_diary_import_with_a_bad_row_changes_nothing(stored: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("day,pain_avg\n2025-05-26,2\n2025-05-27,eleven\n")
    result = run("diary", "import", stored, str(bad), "--today", "2025-05-30")
    assert result.exit_code == 2
    assert "row 3.pain_avg" in result.output
    assert "2025-05-26" not in run("diary", "export", stored).output


def test_review_text_gives_the_verdict_and_cited_advice(stored: str) -> None:
    result = run("review", stored, "--today", "2025-05-24")
    assert result.exit_code == 0, result.output
    assert "responder substantial" in result.output
    assert "change: 50 % less pain" in result.output
    assert "sitting tolerance: 20.0 -> 40.0 min (+20 min)" in result.output
    assert "[followup.continue; sources: dworkin2008]" in result.output


def test_review_json_adds_response_to_the_stored_plan(stored: str) -> None:
    result = run("review", stored, "--format", "json", "--today", "2025-05-24")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["schema"] == "ldncare.plan/1"
    assert doc["ldn"]["review_date"] == "2025-05-24"
    response = doc["response"]
    assert response["status"] == "responder_substantial"
    assert response["percent_reduction"] == 50.0
    assert response["baseline"]["days_recorded"] == 14
    assert response["advice"][0]["action"] == "continue_ldn"


def test_review_before_the_due_date_is_too_early(stored: str) -> None:
    doc = json.loads(run("review", stored, "--format", "json", "--today", "2025-04-01").output)
    assert doc["response"]["status"] == "too_early"
    assert doc["response"]["due_date"] == "2025-05-24"


def test_review_of_a_patient_added_from_a_file_uses_its_stored_plan(db: str) -> None:
    assert run("patient", "add", str(EXAMPLE), "--start", "2025-03-01").exit_code == 0
    doc = json.loads(
        run("review", "pn-example", "--format", "json", "--today", "2025-03-10").output
    )
    assert doc["response"]["status"] == "too_early"
    assert doc["response"]["due_date"] == doc["ldn"]["review_date"]
