"""``ldncare export PATIENT --fhir``: a stored patient's plan as one FHIR R4 Bundle."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ldncare.cli import dump_json, emit, fail, handle_errors

if TYPE_CHECKING:
    from sqlalchemy import Engine


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

        The inputs are those of the latest assessment (what the latest plan was made from).

        The Bundle holds the patient's data, the latest plan (CarePlan; LDN MedicationRequest
        with one dosage per titration step; DetectedIssue per contraindication or caution) and
        the diary as Observations (the pain score; the whole day rides along). The CarePlan
        also carries the plan itself (ldncare.plan/1 JSON), so that `ldncare import` of the
        Bundle stores the same plan and diary: the patient stays "on LDN", at the same dose,
        and the response is judged the same.
        """
        from ldncare.cli.followup_commands import _actor, _engine

        if not fhir:
            fail("only --fhir export is available")
        bundle = export_patient(_engine(), patient, actor=_actor())
        emit(dump_json(bundle), out)


def export_patient(engine: Engine, ref: str | int, *, actor: str) -> dict[str, Any]:
    """A stored patient as one validated FHIR R4 Bundle (what ``ldncare export --fhir`` writes).

    The inputs are the latest assessment's, the plan resources the latest plan's; the CarePlan
    also carries the latest plan with an LDN schedule when the latest one has none (LDN found
    unsafe after titration began), so that a re-import still knows the patient is on LDN.
    """
    from ldncare.core.patient import Patient
    from ldncare.core.plan_contract import read_plan
    from ldncare.errors import NotFound
    from ldncare.fhir.export import validate_bundle
    from ldncare.fhir.patient_export import export_bundle
    from ldncare.store import repository

    row = repository.get_patient(engine, ref, actor=actor)
    plans = repository.list_plans(engine, row.id, actor=actor)
    if not plans:
        raise NotFound(f"patient {str(ref)!r} has no stored plan to export")
    latest = plans[-1]
    earlier = []
    if not read_plan(latest.contract).ldn.schedule:
        scheduled = [p for p in plans if read_plan(p.contract).ldn.schedule]
        if scheduled:
            earlier.append(scheduled[-1].contract)
    diary = repository.list_diary(engine, row.id, actor=actor)
    # The latest assessment, not the inputs first stored: the plan exported beside it was made
    # from it, and its DetectedIssues speak of it.
    current = repository.current_snapshot(engine, row.id, actor=actor)
    bundle = export_bundle(Patient.model_validate(current), latest.contract, diary, earlier)
    problems = validate_bundle(bundle)
    if problems:  # a bug, not bad input: refuse to hand an EHR an invalid Bundle
        fail("export failed validation: " + "; ".join(problems[:3]), 1)
    return bundle
