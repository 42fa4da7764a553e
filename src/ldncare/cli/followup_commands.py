"""Follow-up commands: ``patient add|list|show|changes``, ``diary add|import|export``, ``review``.

Thin adapters over ``ldncare.store.repository`` and ``ldncare.core.response``. The database is
``LDNCARE_DATABASE_URL`` (default: a SQLite file in the user's data folder); it is migrated on
first use. Errors print one line on stderr and exit non-zero (2 bad input, 3 not found).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ldncare.cli import fail as _fail
from ldncare.cli import handle_errors as _errors
from ldncare.cli import parse_date as _date
from ldncare.errors import NotFound

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ldncare.core.advice import RuleBook
    from ldncare.core.response import ResponseAssessment


def _engine() -> Engine:
    from ldncare.store.db import open_engine

    return open_engine()


def _actor() -> str:
    user = os.environ.get("LDNCARE_USER")
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
    return f"cli:{user}"


def _rulebook() -> RuleBook:
    from ldncare.evidence.loader import load_evidence

    return load_evidence()


class ReviewFormat(StrEnum):
    text = "text"
    json = "json"


patient_app = typer.Typer(help="Store and look up patients.", no_args_is_help=True)
diary_app = typer.Typer(help="Record the daily diary while trying LDN.", no_args_is_help=True)


@patient_app.command("add")
@_errors
def patient_add(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Patient file (JSON or YAML).")],
    start: Annotated[
        str | None, typer.Option(help="First LDN day of the plan (YYYY-MM-DD); default today.")
    ] = None,
    clinic: Annotated[str | None, typer.Option(help="Clinic id (for access control).")] = None,
) -> None:
    """Store a patient with its input snapshot and the first plan (version 1)."""
    import importlib

    from ldncare.evidence.loader import load_evidence
    from ldncare.planning import make_plan
    from ldncare.store import repository

    # helper-2's loader (ldncare.patient_file.load_patient); imported by name so that this module
    # type-checks while that module is being written.
    load_patient = importlib.import_module("ldncare.patient_file").load_patient
    patient = load_patient(file)
    start_day = _date(start, "--start")
    contract = make_plan(patient, start=start_day).to_contract(load_evidence())
    row = repository.add_patient(
        _engine(), patient, plan_contract=contract, clinic_id=clinic, actor=_actor()
    )
    typer.echo(f"patient {row.id} ({row.external_id}) stored with plan version 1")


@patient_app.command("list")
@_errors
def patient_list() -> None:
    """List stored patients."""
    from ldncare.store import repository

    rows = repository.list_patients(_engine(), actor=_actor())
    if not rows:
        typer.echo("no patients stored")
        return
    for row in rows:
        born = row.birth_date.isoformat() if row.birth_date else "-"
        typer.echo(f"{row.id}\t{row.external_id}\t{row.name or '-'}\t{born}")


@patient_app.command("show")
@_errors
def patient_show(
    patient: Annotated[str, typer.Argument(metavar="PATIENT", help="Patient id or external id.")],
) -> None:
    """Show a patient, its plan versions and diary size."""
    from ldncare.store import repository

    engine = _engine()
    actor = _actor()
    row = repository.get_patient(engine, patient, actor=actor)
    plans = repository.list_plans(engine, row.id, actor=actor)
    diary = repository.list_diary(engine, row.id, actor=actor)
    typer.echo(f"patient {row.id}: {row.name or '-'} (external id {row.external_id})")
    if row.birth_date:
        typer.echo(f"born: {row.birth_date.isoformat()}")
    if row.clinic_id:
        typer.echo(f"clinic: {row.clinic_id}")
    typer.echo(f"stored: {row.created_at:%Y-%m-%d %H:%M} by {row.created_by}")
    for plan in plans:
        typer.echo(
            f"plan v{plan.version}: {plan.created_at:%Y-%m-%d %H:%M} by {plan.created_by} "
            f"({plan.reason})"
        )
    if diary:
        typer.echo(
            f"diary: {len(diary)} day(s), {diary[0].day.isoformat()} to {diary[-1].day.isoformat()}"
        )
    else:
        typer.echo("diary: empty")


@patient_app.command("changes")
@_errors
def patient_changes(
    patient: Annotated[str, typer.Argument(metavar="PATIENT", help="Patient id or external id.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What the shipped evidence base changes for a stored patient: the latest stored plan is
    made again from the patient's latest assessment, on the same day and start, under the
    evidence base installed now, and the two are compared (statements added, removed or
    reworded; decisions that moved). Nothing is stored."""
    from ldncare.core.patient import Patient
    from ldncare.core.plan_changes import describe_changes
    from ldncare.core.plan_contract import read_plan
    from ldncare.planning import changes_since
    from ldncare.store import repository

    engine = _engine()
    actor = _actor()
    stored = repository.latest_plan(engine, patient, actor=actor)
    if stored is None:
        raise NotFound(f"patient {patient!r} has no stored plan to compare")
    earlier = read_plan(stored.contract)
    record = Patient.model_validate(repository.current_snapshot(engine, patient, actor=actor))
    changes = changes_since(record, earlier)
    if json_out:
        typer.echo(json.dumps({"plan_version": stored.version, **changes.to_json()}, indent=2))
        return
    typer.echo(f"plan v{stored.version} of {earlier.as_of} made again under the shipped base")
    for line in describe_changes(changes):
        typer.echo(line)


def _side_effects(values: list[str]) -> list[dict[str, str]]:
    out = []
    for value in values:
        effect, sep, severity = value.partition(":")
        if not sep:
            _fail(
                f"--side-effect {value!r} needs a severity, e.g. '{value}:mild' "
                "(mild, moderate or severe)"
            )
        out.append({"effect": effect.strip(), "severity": severity.strip()})
    return out


@diary_app.command("add")
@_errors
def diary_add(
    patient: Annotated[str, typer.Argument(metavar="PATIENT", help="Patient id or external id.")],
    day: Annotated[str, typer.Option(help="Day recorded (YYYY-MM-DD).")],
    pain_avg: Annotated[int | None, typer.Option(help="Average pain, 0-10.")] = None,
    pain_worst: Annotated[int | None, typer.Option(help="Worst pain, 0-10.")] = None,
    sitting: Annotated[
        int | None, typer.Option(help="Sitting tolerance in minutes (0-1440).")
    ] = None,
    sleep: Annotated[int | None, typer.Option(help="Sleep quality 0-10 (10 = best night).")] = None,
    side_effect: Annotated[
        list[str] | None,
        typer.Option(
            metavar="EFFECT:SEVERITY",
            help="effect:severity, repeatable. Effects: vivid_dreams, sleep_disturbance, "
            "headache, nausea_gi, other; severity: mild, moderate, severe.",
        ),
    ] = None,
    dose_taken: Annotated[
        bool | None, typer.Option("--dose-taken/--dose-missed", help="Was the dose taken?")
    ] = None,
    dose: Annotated[
        str | None, typer.Option(help="Dose taken with its unit, e.g. '1.5 mg'.")
    ] = None,
    dose_time: Annotated[str | None, typer.Option(help="Time taken (HH:MM).")] = None,
    pgic: Annotated[
        int | None, typer.Option(help="Global impression of change, 1 (very much improved)-7.")
    ] = None,
    notes: Annotated[str | None, typer.Option(help="Free notes (at most 2000 characters).")] = None,
    today: Annotated[
        str | None, typer.Option(help="Today's date for the future-date check (default: today).")
    ] = None,
) -> None:
    """Record one diary day (a second entry for the same day updates it)."""
    from ldncare.store import repository

    data: dict[str, Any] = {
        "day": day,
        "pain_avg": pain_avg,
        "pain_worst": pain_worst,
        "sitting_minutes": sitting,
        "sleep_quality": sleep,
        "side_effects": _side_effects(side_effect or []),
        "dose_taken": dose_taken,
        "dose_mg": dose,
        "dose_time": dose_time,
        "pgic": pgic,
        "notes": notes,
    }
    result = repository.add_or_update_diary_entry(
        _engine(), patient, data, today=_date(today, "--today") or date.today(), actor=_actor()
    )
    verb = "recorded" if result.created else "updated"
    typer.echo(f"{verb} {result.entry.day.isoformat()}")
    for flag in result.flags:
        typer.echo(f"flag: {flag}", err=True)


@diary_app.command("import")
@_errors
def diary_import(
    patient: Annotated[str, typer.Argument(metavar="PATIENT", help="Patient id or external id.")],
    file: Annotated[Path, typer.Argument(metavar="FILE", help="CSV file with a header row.")],
    today: Annotated[
        str | None, typer.Option(help="Today's date for the future-date check (default: today).")
    ] = None,
) -> None:
    """Import a CSV diary; a bad row refuses the whole file."""
    from ldncare.store import repository

    text = file.read_text(encoding="utf-8")
    results = repository.import_diary_csv(
        _engine(), patient, text, today=_date(today, "--today") or date.today(), actor=_actor()
    )
    created = sum(1 for r in results if r.created)
    typer.echo(f"imported {len(results)} day(s): {created} new, {len(results) - created} updated")
    for r in results:
        for flag in r.flags:
            typer.echo(f"flag: {flag}", err=True)


@diary_app.command("export")
@_errors
def diary_export(
    patient: Annotated[str, typer.Argument(metavar="PATIENT", help="Patient id or external id.")],
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
) -> None:
    """Export the diary as CSV."""
    from ldncare.store import repository

    text = repository.export_diary_csv(_engine(), patient, actor=_actor())
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)


def _review_text(a: ResponseAssessment) -> str:
    c = a.to_contract()
    lines = [f"Response to LDN as of {c['as_of']}: {c['status'].replace('_', ' ')}"]
    b, cur = c["baseline"], c["current"]
    lines.append(
        f"  baseline pain: {b['mean'] if b['mean'] is not None else '-'} "
        f"({b['days_recorded']} of {b['days_in_window']} days, {b['start']} to {b['end']})"
    )
    lines.append(
        f"  current pain:  {cur['mean'] if cur['mean'] is not None else '-'} "
        f"({cur['days_recorded']} of {cur['days_in_window']} days, {cur['start']} to {cur['end']})"
    )
    if c["percent_reduction"] is not None:
        lines.append(f"  change: {c['percent_reduction']:g} % less pain")
    lines.append(f"  verdict due: {c['due_date']}")
    if c["reason"]:
        lines.append(f"  note: {c['reason']}")
    if c["pgic"]:
        lines.append(f"  PGIC: {c['pgic']['value']} ({c['pgic']['label']}) on {c['pgic']['day']}")
    sit = c["sitting_tolerance"]
    if sit["change_minutes"] is not None:
        lines.append(
            f"  sitting tolerance: {sit['baseline']['mean']} -> {sit['current']['mean']} min "
            f"({sit['change_minutes']:+g} min)"
        )
    if c["advice"]:
        lines.append("Next steps:")
        for item in c["advice"]:
            lines.append(f"  - {item['message']}")
            lines.append(f"    [{item['rule']}; sources: {', '.join(item['citations'])}]")
    lines.append(f"Sources: {', '.join(c['citations'])}")
    return "\n".join(lines) + "\n"


def review(
    patient: Annotated[str, typer.Argument(metavar="PATIENT", help="Patient id or external id.")],
    format: Annotated[ReviewFormat, typer.Option("--format", help="Output format.")] = (
        ReviewFormat.text
    ),
    today: Annotated[
        str | None, typer.Option(help="Judge as of this date (default: today).")
    ] = None,
) -> None:
    """Judge the response to LDN from the diary and give the cited next steps."""
    _review(patient, format, today)


@_errors
def _review(patient: str, format: ReviewFormat, today: str | None) -> None:
    from ldncare.core.response import assess_response
    from ldncare.store import repository

    engine = _engine()
    actor = _actor()
    plan = repository.latest_plan(engine, patient, actor=actor)
    if plan is None:
        raise NotFound(f"patient {patient!r} has no stored plan")
    entries = repository.list_diary(engine, patient, actor=actor)
    assessment = assess_response(
        entries,
        plan.contract,
        today=_date(today, "--today") or date.today(),
        evidence=_rulebook(),
    )
    if format is ReviewFormat.json:
        contract = dict(plan.contract)
        contract["response"] = assessment.to_contract()
        sys.stdout.write(json.dumps(contract, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(_review_text(assessment))


def register(app: typer.Typer) -> None:
    """Add the follow-up commands to the ``ldncare`` application."""
    app.add_typer(patient_app, name="patient")
    app.add_typer(diary_app, name="diary")
    app.command("review")(review)
