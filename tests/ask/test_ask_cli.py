"""``ldncare ask`` on a Typer app built here (the lead wires ``register`` into the real CLI)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from ldncare.cli.ask_command import register

PATIENTS = Path(__file__).resolve().parents[1] / "vignettes" / "patients"


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("version")
    def version() -> None:  # a second command keeps "ask" a subcommand
        typer.echo("test")

    return app


def test_ask_prints_the_reference_form_in_markdown() -> None:
    result = CliRunner().invoke(_app(), ["ask", "How do I titrate LDN?"])
    assert result.exit_code == 0, result.output
    out = result.output
    for heading in ("## From the Guidelines", "## Key Considerations", "## References"):
        assert heading in out
    assert re.search(r"\[1[,\]]", out)


def test_ask_json_gives_sentences_with_statement_ids() -> None:
    result = CliRunner().invoke(
        _app(), ["ask", "What if LDN gives my patient vivid dreams?", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["covered"] is True
    statements = [s["statement"] for part in data["sections"].values() for s in part]
    assert "ldn.side_effects.common" in statements
    assert {r["number"] for r in data["references"]} == set(range(1, len(data["references"]) + 1))


def test_ask_out_of_scope_says_not_covered() -> None:
    result = CliRunner().invoke(_app(), ["ask", "What is the dose of metformin?"])
    assert result.exit_code == 0
    assert "not covered by the ldncare evidence base" in result.output
    assert "Closest covered topics" in result.output


def test_ask_with_patient_on_tramadol_adds_patient_context() -> None:
    result = CliRunner().invoke(
        _app(),
        [
            "ask",
            "Can a patient on tramadol take LDN?",
            "--patient",
            str(PATIENTS / "pn-on-tramadol.yaml"),
            "--as-of",
            "2025-01-15",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert "patient_context" in data["sections"]
    assert data["eligibility"] in {"eligible", "eligible_with_cautions", "not_recommended"}
    for s in data["sections"]["patient_context"]:
        assert s["basis"] == "rule" and s["citations"]


def test_ask_patient_context_heading_in_markdown() -> None:
    result = CliRunner().invoke(
        _app(),
        ["ask", "Is LDN safe in pregnancy?", "--patient", str(PATIENTS / "pn-pregnant.yaml")],
    )
    assert result.exit_code == 0, result.output
    assert "## Patient context" in result.output


def test_ask_bad_date_fails_with_one_line() -> None:
    result = CliRunner().invoke(_app(), ["ask", "How do I titrate LDN?", "--as-of", "15/01/2025"])
    assert result.exit_code == 2
    assert "--as-of" in result.output


def test_ask_empty_question_fails() -> None:
    result = CliRunner().invoke(_app(), ["ask", "  "])
    assert result.exit_code == 2
