"""``ldncare ask "QUESTION"``: answer a clinical question from the evidence base."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ldncare.cli import dump_json, emit, handle_errors, parse_date


class AskFormat(StrEnum):
    md = "md"
    json = "json"


def register(app: typer.Typer) -> None:
    @app.command("ask")
    @handle_errors
    def ask(
        question: Annotated[
            str, typer.Argument(metavar="QUESTION", help="The question, in quotes.")
        ],
        patient: Annotated[
            Path | None,
            typer.Option(
                "--patient",
                "-p",
                help="Patient file (JSON/YAML) or FHIR Bundle: adds a 'Patient context' "
                "section with the patient's screening findings.",
            ),
        ] = None,
        format: Annotated[
            AskFormat, typer.Option("--format", "-f", help="Output format.")
        ] = AskFormat.md,
        as_of: Annotated[
            str | None,
            typer.Option(
                "--as-of", help="Screen the patient as of this date, YYYY-MM-DD (default: today)."
            ),
        ] = None,
    ) -> None:
        """Answer a question about LDN, pudendal neuralgia or neuropathic pain medicines.

        Every sentence comes from a cited statement of the evidence base; a question outside it
        is answered "not covered" with the closest covered topics.
        """
        from ldncare.ask import answer_question

        day = parse_date(as_of, "--as-of") or date.today()
        contract = None
        if patient is not None:
            from ldncare.evidence.loader import load_evidence
            from ldncare.patient_file import load_patient
            from ldncare.planning import make_plan

            plan = make_plan(load_patient(patient), as_of=day)
            contract = plan.to_contract(load_evidence())
        answer = answer_question(question, plan_contract=contract)
        if format is AskFormat.json:
            emit(dump_json(answer.to_contract()), None)
        else:
            from ldncare.render.answer_markdown import render_answer_markdown

            emit(render_answer_markdown(answer), None)
