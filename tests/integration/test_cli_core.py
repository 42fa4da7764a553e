"""The core CLI commands as a clinician uses them, including every kind of bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ldncare.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "src" / "ldncare" / "examples" / "pn-example.yaml"
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_help_lists_the_commands() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for command in ("plan", "schedule", "sources", "nantes"):
        assert command in out


def test_plan_markdown_has_the_reference_sections_in_order() -> None:
    code, out, _ = run("plan", str(EXAMPLE), "--as-of", "2026-11-25", "--start", "2026-12-01")
    assert code == 0
    headings = re.findall(r"^## (.+)$", out, flags=re.MULTILINE)
    expected = [
        "From the Guidelines",
        "Key Considerations",
        "Treatment Approach",
        "Patient-specific findings",
        "Schedule",
    ]
    assert headings[: len(expected)] == expected
    assert headings[-1] == "References"
    assert "| 1 | 2026-12-01 |" in out
    assert "off-label" in out.lower()


def test_plan_json_is_the_public_contract() -> None:
    code, out, _ = run("plan", str(EXAMPLE), "-f", "json", "--as-of", "2026-11-25")
    assert code == 0
    data = json.loads(out)
    assert data["schema"] == "ldncare.plan/1"
    assert set(data["ldn"]) >= {"eligibility", "findings", "schedule", "review_date"}
    assert {"start_date", "end_date", "dose_mg", "time_of_day"} <= set(data["ldn"]["schedule"][0])
    assert data["options"], "alternatives are part of every plan"
    assert data["care"] and data["citations"]


def test_plan_html_escapes_and_links_references(tmp_path: Path) -> None:
    out_file = tmp_path / "plan.html"
    code, _, _ = run("plan", str(EXAMPLE), "-f", "html", "-o", str(out_file))
    assert code == 0
    html = out_file.read_text()
    assert html.startswith("<!doctype html>")
    assert 'href="#ref-1"' in html and 'id="ref-1"' in html


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "does not exist"),
        ("{not json", "not valid JSON"),
        ('{"resourceType": "Bundle", "type": "collection", "entry": []}', "no Patient"),
        ('{"resourceType": "Observation"}', "give a Bundle"),
    ],
)
def test_bad_patient_input_exits_nonzero_with_one_clear_line(
    tmp_path: Path, content: str | None, needle: str
) -> None:
    path = tmp_path / "patient.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run("plan", str(path))
    # A file that does not exist cannot be used (1, as the README says); a bad one is bad input.
    assert code == (1 if content is None else 2)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--start-dose", "0 mg"], "start dose 0 mg is outside"),
        (["--target", "50 mg"], "above the LDN maximum"),
        (["--target", "4.5 g"], "4500 mg is above the LDN maximum"),
        (["--target", "4.5"], "has no unit"),
        (["--hold", "two"], "STEP:DAYS"),
        (["--start", "2026-13-01"], "not a date"),
    ],
)
def test_schedule_rejects_invalid_options(args: list[str], needle: str) -> None:
    code, _, err = run("schedule", *args)
    assert code == 2
    assert needle in err


def test_schedule_json_with_slow_titration_and_a_hold() -> None:
    code, out, _ = run(
        "schedule", "--start", "2026-12-01", "--slow", "--step-days", "7", "--hold", "2:7", "--json"
    )
    assert code == 0
    steps = json.loads(out)["schedule"]
    assert steps[0]["end_date"] == "2026-12-14"
    assert max(s["dose_mg"] for s in steps) == 4.5


def test_sources_lists_the_bibliography_best_evidence_first() -> None:
    code, out, _ = run("sources", "--json")
    assert code == 0
    sources = json.loads(out)
    assert sources[0]["evidence_type"] == "guideline"
    assert any(s["id"] == "label_naltrexone" for s in sources)


def test_nantes_checklist_and_result(tmp_path: Path) -> None:
    code, out, _ = run("nantes")
    assert code == 0 and "block_relieves" in out
    code, out, _ = run("nantes", "--yes", "pruritus", "--json")
    assert code == 0 and json.loads(out)["status"] == "exclusion_present"
    code, _, err = run("nantes", "--yes", "not_an_item")
    assert code == 2 and "accepted:" in err
