"""``ldncare export PATIENT --fhir``: a stored patient's plan as one FHIR R4 Bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ldncare.cli import dump_json, emit, fail, handle_errors


def register(app: typer.Typer) -> None:
    @app.command("export")
    @handle_errors
    def export(
        patient: Annotated[
            str,
            typer.Argument(metavar="PATIENT", help="Stored patient: internal id or external id."),
        ],
        fhir: Annotated[
            bool, typer.Option("--fhir", help="FHIR R4 JSON Bundle (the only format).")
        ] = True,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file.")] = None,
    ) -> None:
        """Export a stored patient as a FHIR R4 Bundle: inputs, plan, issues and pain scores.

        The Bundle holds the patient's data, the latest plan (CarePlan; LDN MedicationRequest
        with one dosage per titration step; DetectedIssue per contraindication or caution) and
        the diary pain scores as Observations.
        """
        from ldncare.cli.followup_commands import _actor, _engine
        from ldncare.core.patient import Patient
        from ldncare.errors import NotFound
        from ldncare.fhir.export import validate_bundle
        from ldncare.fhir.patient_export import export_bundle
        from ldncare.store import repository

        if not fhir:
            fail("only --fhir export is available")
        engine, actor = _engine(), _actor()
        row = repository.get_patient(engine, patient, actor=actor)
        plan = repository.latest_plan(engine, patient, actor=actor)
        if plan is None:
            raise NotFound(f"patient {patient!r} has no stored plan to export")
        diary = repository.list_diary(engine, patient, actor=actor)
        bundle = export_bundle(Patient.model_validate(row.snapshot), plan.contract, diary)
        problems = validate_bundle(bundle)
        if problems:  # a bug, not bad input: refuse to hand an EHR an invalid Bundle
            fail("export failed validation: " + "; ".join(problems[:3]), 1)
        emit(dump_json(bundle), out)
