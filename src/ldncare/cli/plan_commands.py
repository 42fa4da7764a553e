"""``ldncare plan``, ``ldncare schedule`` and ``ldncare sources``."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ldncare.cli import PlanFormat, dump_json, emit, fail, handle_errors, parse_date
from ldncare.errors import InvalidInput

if TYPE_CHECKING:
    from ldncare.core.titration import TitrationOptions
    from ldncare.evidence.models import Evidence

StartOpt = Annotated[
    str | None, typer.Option("--start", help="First dose date (YYYY-MM-DD); default: today.")
]
StartDoseOpt = Annotated[
    str | None, typer.Option("--start-dose", help="Start dose with unit, e.g. '1.5 mg'.")
]
TargetOpt = Annotated[
    str | None, typer.Option("--target", help="Target dose with unit, e.g. '4.5 mg' (max 4.5 mg).")
]
StepOpt = Annotated[
    str | None, typer.Option("--step", help="Increase per step with unit, e.g. '1 mg'.")
]
StepDaysOpt = Annotated[int | None, typer.Option("--step-days", help="Days per step.")]
SlowOpt = Annotated[
    bool, typer.Option("--slow", help="Slow titration: each step lasts twice as long.")
]
HoldOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--hold", metavar="STEP:DAYS", help="Hold a step longer: STEP:DAYS, e.g. 2:7. Repeatable."
    ),
]
MorningOpt = Annotated[
    bool, typer.Option("--morning", help="Take the dose in the morning instead of at bedtime.")
]
ReviewOpt = Annotated[
    int | None,
    typer.Option(
        "--review-weeks", help="Weeks from reaching the target dose to the review (8-12)."
    ),
]
FormulationOpt = Annotated[
    str | None, typer.Option("--formulation", help="liquid or capsule (see 'ldncare sources').")
]


def _holds(values: list[str] | None) -> dict[int, int]:
    holds: dict[int, int] = {}
    for value in values or []:
        step, sep, days = value.partition(":")
        if not sep or not step.strip().isdigit() or not days.strip().isdigit():
            raise InvalidInput(f"--hold {value!r} must be STEP:DAYS, e.g. 2:7", field="hold")
        holds[int(step)] = holds.get(int(step), 0) + int(days)
    return holds


def titration_options(
    start: date,
    start_dose: str | None,
    target: str | None,
    step: str | None,
    step_days: int | None,
    slow: bool,
    hold: list[str] | None,
    morning: bool,
    review_weeks: int | None,
    formulation: str | None,
) -> TitrationOptions:
    # Imported here so that `ldncare --help` does not pay for building the evidence models.
    from ldncare.core.quantity import parse_dose
    from ldncare.core.titration import TitrationOptions

    return TitrationOptions(
        start=start,
        start_dose=parse_dose(start_dose, field="--start-dose") if start_dose else None,
        target_dose=parse_dose(target, field="--target") if target else None,
        step_dose=parse_dose(step, field="--step") if step else None,
        step_days=step_days,
        slow=slow,
        holds=_holds(hold),
        time_of_day="morning" if morning else None,
        review_weeks=review_weeks,
        formulation=formulation,
    )


def register(app: typer.Typer) -> None:
    @app.command("plan")
    @handle_errors
    def plan(
        patient_file: Annotated[
            Path,
            typer.Argument(
                metavar="PATIENT_FILE", help="FHIR R4 Bundle (JSON) or patient file (JSON/YAML)."
            ),
        ],
        format: Annotated[
            PlanFormat, typer.Option("--format", "-f", help="Output format.")
        ] = PlanFormat.md,
        start: StartOpt = None,
        as_of: Annotated[
            str | None,
            typer.Option(
                "--as-of", help="Judge medications and age as of this date (default: today)."
            ),
        ] = None,
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
        ] = None,
        start_dose: StartDoseOpt = None,
        target: TargetOpt = None,
        step: StepOpt = None,
        step_days: StepDaysOpt = None,
        slow: SlowOpt = False,
        hold: HoldOpt = None,
        morning: MorningOpt = False,
        review_weeks: ReviewOpt = None,
        formulation: FormulationOpt = None,
        nantes: Annotated[
            Path | None,
            typer.Option("--nantes", help="Nantes checklist answers (YAML/JSON) to include."),
        ] = None,
    ) -> None:
        """Screen a patient for LDN and print the plan: findings, schedule, care, references."""
        from ldncare.evidence.loader import load_evidence
        from ldncare.patient_file import load_patient
        from ldncare.planning import make_plan

        day = parse_date(as_of, "--as-of") or date.today()
        first = parse_date(start, "--start") or day
        options = titration_options(
            first,
            start_dose,
            target,
            step,
            step_days,
            slow,
            hold,
            morning,
            review_weeks,
            formulation,
        )
        from ldncare.cli.nantes_command import read_answers

        answers = read_answers(nantes) if nantes else None
        patient = load_patient(patient_file)
        plan_ = make_plan(patient, as_of=day, titration=options, nantes=answers)
        contract = plan_.to_contract(load_evidence())
        if format is PlanFormat.json:
            emit(dump_json(contract), out)
        elif format is PlanFormat.html:
            from ldncare.render.html import render_html

            emit(render_html(contract), out)
        else:
            from ldncare.render.markdown import render_markdown

            emit(render_markdown(contract), out)

    @app.command("schedule")
    @handle_errors
    def schedule(
        start: StartOpt = None,
        start_dose: StartDoseOpt = None,
        target: TargetOpt = None,
        step: StepOpt = None,
        step_days: StepDaysOpt = None,
        slow: SlowOpt = False,
        hold: HoldOpt = None,
        morning: MorningOpt = False,
        review_weeks: ReviewOpt = None,
        formulation: FormulationOpt = None,
        json_out: Annotated[
            bool, typer.Option("--json", help="Print JSON instead of a table.")
        ] = False,
    ) -> None:
        """Print an LDN titration schedule (no patient screening)."""
        from ldncare.evidence.loader import load_evidence

        first = parse_date(start, "--start") or date.today()
        options = titration_options(
            first,
            start_dose,
            target,
            step,
            step_days,
            slow,
            hold,
            morning,
            review_weeks,
            formulation,
        )
        from ldncare.core.titration import titrate

        sched = titrate(options, load_evidence().ldn)
        rows = sched.rows()
        if json_out:
            emit(
                dump_json(
                    {
                        "schedule": rows,
                        "review_date": sched.review_date.isoformat(),
                        "notes": list(sched.notes),
                    }
                ),
                None,
            )
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"LDN titration ({sched.formulation.label})")
        for col in ("Step", "From", "To", "Dose", "How"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                str(r["step"]),
                str(r["start_date"]),
                str(r["end_date"]),
                f"{r['dose_mg']:g} mg",
                str(r["instruction"]),
            )
        console = Console()
        console.print(table)
        console.print(f"Review date: {sched.review_date.isoformat()}")
        for note in sched.notes:
            console.print(f"Note: {note}")

    @app.command("sources")
    @handle_errors
    def sources(
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        stale: Annotated[
            bool,
            typer.Option(
                "--stale",
                help="List what is due for review instead: statements not reviewed within "
                "--months, and sources superseded by a newer one of the same kind on the same "
                "question.",
            ),
        ] = False,
        months: Annotated[
            int, typer.Option("--months", help="Review period in months (with --stale).")
        ] = 12,
        as_of: Annotated[
            str | None,
            typer.Option("--as-of", help="Judge staleness as of this date (default: today)."),
        ] = None,
    ) -> None:
        """List the bibliography behind every ldncare statement and rule, best evidence first:
        by certainty (grade), then kind of source (guideline, systematic review, trial, ...),
        then the newest. With --stale, list what is due for review. Exit status 0 either way."""
        from ldncare.evidence.loader import load_evidence

        ev = load_evidence()
        if stale:
            _print_stale(ev, months, parse_date(as_of, "--as-of") or date.today(), json_out)
            return
        if months != 12 or as_of is not None:
            raise InvalidInput("--months and --as-of apply only with --stale")
        ranked = sorted(ev.sources.values(), key=lambda s: s.best_first)
        if json_out:
            emit(dump_json([s.model_dump() for s in ranked]), None)
            return
        for s in ranked:
            typer.echo(
                f"[{s.id}] ({s.evidence_type}, {s.grade}) {s.reference_text()} [{s.fit_text()}]"
            )

    _ = fail  # re-exported helper used by sibling command modules


def _print_stale(ev: Evidence, months: int, day: date, json_out: bool) -> None:
    from ldncare.evidence.review import months_before, stale_statements, superseded_sources

    cutoff = months_before(day, months)
    due = stale_statements(ev.statements.values(), day, months)
    superseded = superseded_sources(ev.sources)
    if json_out:
        emit(
            dump_json(
                {
                    "as_of": day.isoformat(),
                    "months": months,
                    "reviewed_before": cutoff.isoformat(),
                    "stale_statements": [d.to_json() for d in due],
                    "superseded_sources": [x.to_json() for x in superseded],
                }
            ),
            None,
        )
        return
    typer.echo(
        f"Statements not reviewed within {months} months (before {cutoff.isoformat()}): "
        f"{len(due)} of {len(ev.statements)}"
    )
    for d in due:
        typer.echo(f"  {d.id}: last reviewed {d.reviewed}, due since {d.due_since}")
    typer.echo(f"Sources superseded by a newer one of the same kind: {len(superseded)}")
    for x in superseded:
        typer.echo(
            f"  {x.id} ({x.evidence_type}, {x.year}) on {x.question}: newer {', '.join(x.newer)}"
        )
