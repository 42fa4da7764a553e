"""EHR commands: ``import`` (FHIR Bundle or Bulk NDJSON into the store) and ``screen``
(population worklist over the store or over an NDJSON export).

Thin adapters over :mod:`ldncare.importing` and :mod:`ldncare.store.population`. The
database is ``LDNCARE_DATABASE_URL`` (default: a SQLite file in the user's data folder).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import sys
import tempfile
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ldncare.cli import EXIT_FAILED, EXIT_PARTIAL, dump_json, emit, fail
from ldncare.cli import handle_errors as _errors
from ldncare.cli import parse_date as _date

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ldncare.importing import ImportIssue, ImportReport
    from ldncare.store.population import ScreenHit


class ScreenFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _actor() -> str:
    from ldncare.cli.followup_commands import _actor as actor

    return actor()


def _engine(url: str | None = None) -> Engine:
    from ldncare.store.db import open_engine

    return open_engine(url)


def _staging_folder(option: Path | None) -> Path | None:
    """Where a Bulk import stages its bucket files: ``--staging-dir``, else
    ``LDNCARE_STAGING_DIR``, else None (the system temp folder). Checked before anything is
    read, so a wrong folder is named at once rather than after an hour of staging."""
    import os

    from ldncare.errors import InvalidInput

    given = option if option is not None else os.environ.get("LDNCARE_STAGING_DIR") or None
    if given is None:
        return None
    folder = Path(given)
    source = "--staging-dir" if option is not None else "LDNCARE_STAGING_DIR"
    if not folder.is_dir():
        raise InvalidInput(
            f"{source} {folder} is not an existing folder: create it (on a disk with room for "
            "about the size of the export's uncompressed Patient, Medication, Condition, "
            "MedicationRequest, MedicationStatement, Observation and AllergyIntolerance files) "
            "or name another",
            field="staging_dir",
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidInput(f"{source} {folder} is not writable", field="staging_dir")
    return folder


def _run_import(
    engine: Engine, path: Path, ndjson: bool, quiet: bool, workers: int = 1,
    since: str | None = None, part: str | None = None, staging_dir: Path | None = None,
) -> ImportReport:  # fmt: skip
    from ldncare.importing import import_bundle, import_ndjson

    if (since or part) and not (ndjson or path.is_dir()):
        from ldncare.errors import InvalidInput

        raise InvalidInput("--since and --part apply to a Bulk NDJSON export folder only")
    if path.is_dir() and not ndjson and (bundles := _bundle_files(path)) is not None:
        if since or part:
            from ldncare.errors import InvalidInput

            raise InvalidInput("--since and --part apply to a Bulk NDJSON export folder only")
        return _import_bundle_folder(engine, path, bundles)
    if path.is_dir() and not ndjson:
        _refuse_a_folder_of_neither(path)
    if ndjson or path.is_dir():
        if workers > 1 or since or part:
            # Parallel staging and writing, a share of the export, or only what changed.
            from ldncare.import_parallel import import_export, parse_part, parse_since

            options: dict[str, Any] = {
                "workers": workers,
                "since": parse_since(since) if since else None,
                "part": parse_part(part) if part else None,
                "workdir": staging_dir,
            }
            return import_export(engine, path, _actor(), **options)
        if quiet:
            return import_ndjson(engine, path, _actor(), workers=workers, workdir=staging_dir)
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=_console(err=True),
            transient=True,
        ) as bar:
            tasks: dict[str, Any] = {}

            def progress(phase: str, done: int, total: int) -> None:
                label = "Reading files (bytes)" if phase == "stage" else "Importing patients"
                if phase not in tasks:
                    tasks[phase] = bar.add_task(label, total=total)
                bar.update(tasks[phase], completed=done, total=total)

            return import_ndjson(
                engine, path, _actor(), progress, workers=workers, workdir=staging_dir
            )
    if path.is_file() and path.name.lower().endswith(_NDJSON_SUFFIXES):
        from ldncare.errors import InvalidInput

        raise InvalidInput(
            f"{path} is one NDJSON file of a Bulk Data export: pass the export folder "
            f"({path.parent}), which ldncare reads whole (each patient's resources are spread "
            "over the Patient, MedicationRequest, Observation, ... files)"
        )
    return import_bundle(engine, _read_json(path), _actor())


def _read_json(path: Path) -> Any:
    from ldncare.errors import InvalidInput
    from ldncare.json_input import JsonProblem, loads_strict

    data = path.read_bytes()
    # A byte order mark is how many Windows tools start UTF-8 text; it is not part of the
    # JSON (the NDJSON reader drops it too). The offset of a bad byte still counts it.
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return loads_strict(data[bom:].decode("utf-8"))
    except JsonProblem as exc:
        raise InvalidInput(f"{path}: {exc}") from None
    except json.JSONDecodeError as exc:
        hint = ""
        if exc.msg == "Extra data" and exc.lineno > 1:
            hint = (
                "; it looks like NDJSON (one resource per line): a Bulk Data export is "
                "imported by giving its folder, with each file named after its resource type"
            )
        raise InvalidInput(f"{path} is not JSON ({exc.msg} at line {exc.lineno}){hint}") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start + bom}); a FHIR JSON Bundle must be encoded in UTF-8"
        ) from None


_NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
_NDJSON_NOT_READ = " (not NDJSON, or a resource type ldncare does not use)"


def _bundle_files(folder: Path) -> list[Path] | None:
    """The ``.json`` files of a folder of FHIR Bundles (such as Synthea's ``output/fhir``), or
    None when the folder is a Bulk Data export (it holds NDJSON files) or holds no ``.json``."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if any(p.name.lower().endswith(_NDJSON_SUFFIXES) for p in files):
        return None
    return [p for p in files if p.suffix.lower() == ".json"] or None


def _refuse_a_folder_of_neither(folder: Path) -> None:
    """A folder given without --ndjson holding neither a .json Bundle nor an NDJSON file: say
    what ldncare reads there -- both kinds -- and list what the folder holds instead."""
    from ldncare.errors import InvalidInput
    from ldncare.fhir.ndjson import NDJSON_SUFFIXES, USED_TYPES, shown_name

    held = sorted(folder.iterdir())
    if any(p.is_file() and p.name.lower().endswith(_NDJSON_SUFFIXES) for p in held):
        return  # a Bulk export: the NDJSON reader says which of its files it cannot use
    message = (
        f"{folder} holds no export file that ldncare reads: a folder of FHIR Bundles (files "
        "ending in .json, such as Synthea's output/fhir; subfolders are not read) or a Bulk "
        f"Data export (files named after their resource type ({', '.join(sorted(USED_TYPES))}; "
        f"e.g. Patient.ndjson, Observation_2.ndjson.gz) and ending in "
        f"{', '.join(NDJSON_SUFFIXES)})"
    )
    if held:
        names = ", ".join(shown_name(p) for p in held[:10])
        more = f" and {len(held) - 10} more" if len(held) > 10 else ""
        message += f"; the folder holds {names}{more}"
    else:
        message += "; the folder is empty"
    raise InvalidInput(message)


def _import_bundle_folder(engine: Engine, folder: Path, bundles: list[Path]) -> ImportReport:
    """Import every patient Bundle of ``folder``, one file at a time, into one report.

    A Bundle without a Patient (Synthea's ``practitionerInformation*.json`` and
    ``hospitalInformation*.json``, a Bundle of terminology) and every file that is not a
    ``.json`` are listed as not read, with the reason; a ``.json`` that is not a FHIR Bundle is
    a problem of the import (it may be a patient that was meant to be imported).
    """
    import dataclasses
    import time

    from ldncare.errors import InvalidInput
    from ldncare.importing import ImportIssue, ImportReport, import_bundle

    started = time.perf_counter()
    total = ImportReport()
    wanted = set(bundles)
    for p in sorted(folder.iterdir()):
        if p.is_dir():
            total.ignored_files.append(f"{p.name}/ (a folder: subfolders are not read)")
        elif p.is_file() and p not in wanted:
            total.ignored_files.append(f"{p.name} (not a .json Bundle)")
    for path in bundles:
        try:
            bundle = _read_json(path)
        except InvalidInput as exc:
            total.errors.append(ImportIssue("Bundle", None, None, exc.message, where=path.name))
            continue
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            kind = bundle.get("resourceType") if isinstance(bundle, dict) else None
            what = f"a {kind} resource" if isinstance(kind, str) else "not a FHIR resource"
            total.errors.append(
                ImportIssue("Bundle", None, None, f"not a FHIR Bundle ({what})", where=path.name)
            )
            continue
        types = _entry_types(bundle)
        if "Patient" not in types:
            held = ", ".join(sorted(types)) or "no resources"
            total.ignored_files.append(f"{path.name} (a Bundle without a Patient: {held})")
            continue
        part = import_bundle(engine, bundle, _actor())
        total.files.append(path.name)
        total.bytes_read += path.stat().st_size
        for f in dataclasses.fields(part):
            value = getattr(part, f.name)
            if f.name == "errors":
                total.errors += [
                    dataclasses.replace(e, where=f"{path.name} {e.where}" if e.where else path.name)
                    for e in value
                ]
            elif isinstance(value, int) and f.name != "bytes_read":
                setattr(total, f.name, getattr(total, f.name) + value)
    total.seconds = time.perf_counter() - started
    return total


def _entry_types(bundle: dict[str, Any]) -> set[str]:
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return set()
    types = (e.get("resource", {}).get("resourceType") for e in entries if isinstance(e, dict))
    return {t for t in types if isinstance(t, str)}


def _console(err: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=err)


def _print_report(report: ImportReport, max_errors: int) -> None:
    from rich.table import Table

    console = _console()
    table = Table(title="FHIR import", show_header=True)
    table.add_column("")
    table.add_column("count", justify="right")
    for label, value in (
        ("patients imported", report.patients_imported),
        ("patients updated", report.patients_updated),
        ("patients with facts refreshed", report.patients_facts_refreshed),
        ("patients unchanged", report.patients_unchanged),
        *(
            [("patients not changed since --since", report.patients_not_changed_since)]
            if hasattr(report, "patients_not_changed_since")
            else []
        ),
        ("patients skipped", report.patients_skipped),
        ("medications (active)", f"{report.medications_total} ({report.medications_active})"),
        ("conditions (active)", f"{report.conditions} ({report.conditions_active})"),
        ("lab observations", report.observations),
        ("errors", len(report.errors)),
    ):
        table.add_row(label, str(value))
    part = getattr(report, "part", None)
    if part is not None:
        # What shows that every part of a shared export ran: docs/SCALE.md.
        table.add_row(
            "part",
            f"{part[0]}/{part[1]}: buckets b % {part[1]} == {part[0]}, "
            f"{getattr(report, 'buckets_imported', 0)} of {getattr(report, 'buckets_total', 0)}",
        )
    if report.seconds > 0 and report.patients_read:
        rate = report.patients_read / report.seconds
        table.add_row("time", f"{report.seconds:.2f} s ({rate:,.0f} patients/s)")
    console.print(table)
    if report.ignored_files:
        # A Bulk export lists bare file names; a folder of Bundles gives each file's reason.
        why = "" if all(f.endswith(")") for f in report.ignored_files) else _NDJSON_NOT_READ
        console.print(f"Files not read{why}: " + ", ".join(report.ignored_files))
    if report.errors:
        errors = Table(title="Not imported", show_header=True)
        for col in ("resource", "field", "problem", "patient", "where"):
            errors.add_column(col)
        for e in report.errors[:max_errors]:
            rid = f"{e.resource_type}/{e.resource_id}" if e.resource_id else e.resource_type
            errors.add_row(rid, e.field or "", e.message, e.patient_id or "", e.where or "")
        console.print(errors)
        if len(report.errors) > max_errors:
            console.print(f"... and {len(report.errors) - max_errors} more (use --json for all)")


def _not_imported(report: ImportReport) -> str | None:
    """What an import left out, in a few words; None when it left nothing out."""
    if not report.errors and not report.patients_skipped:
        return None
    # Read = every patient the import looked at: written, unchanged, skipped and (--since)
    # left alone as not changed; ``patients_read`` counts only those it took in.
    read = (
        report.patients_read
        + report.patients_skipped
        + getattr(report, "patients_not_changed_since", 0)
    )
    return (
        f"{_n(report.patients_skipped, 'patient')} skipped, "
        f"{_n(len(report.errors), 'problem')} reported "
        f"({_n(read, 'patient')} read, {report.patients_read:,} imported)"
    )


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _issue_line(e: ImportIssue) -> str:
    rid = f"{e.resource_type}/{e.resource_id}" if e.resource_id else e.resource_type
    line = f"  {rid}{'.' + e.field if e.field else ''}: {e.message}"
    if e.patient_id and e.patient_id != e.resource_id:
        line += f" [patient {e.patient_id}]"
    return line + (f" ({e.where})" if e.where else "")


def _hits_csv(hits: list[ScreenHit]) -> str:
    """The worklist as CSV; names come from the EHR, so formula-like cells are defused."""
    from ldncare.store.diary_csv import spreadsheet_safe

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["patient_id", "name", "severity", "check", "rule_id", "message", "citations"])
    for h in hits:
        cells = [h.patient_id, h.name or "", h.severity, h.check, h.rule_id, h.message,
                 " ".join(h.citations)]  # fmt: skip
        writer.writerow(spreadsheet_safe(cell) for cell in cells)
    return buf.getvalue()


def _hits_table(hits: list[ScreenHit], as_of: date) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Patients needing action on {as_of.isoformat()} ({len(hits)})")
    for col in ("severity", "patient", "name", "check", "message", "sources"):
        table.add_column(col, overflow="fold")
    style = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
    for h in hits:
        table.add_row(
            f"[{style[h.severity]}]{h.severity}[/]", h.patient_id, h.name or "", h.check,
            h.message, ", ".join(h.citations),
        )  # fmt: skip
    console = Console(file=io.StringIO(), width=160, force_terminal=sys.stdout.isatty())
    console.print(table)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return str(out)


def _warn_left_out(report: ImportReport, left_out: str, max_errors: int) -> None:
    """Tell on stderr which patients and resources of an export ``screen`` could not use.
    The export is only read into a temporary database: nothing is written to the store."""
    typer.echo(f"ldncare: not in this worklist: {left_out}", err=True)
    for e in report.errors[: max(0, max_errors)]:
        typer.echo(_issue_line(e), err=True)
    more = len(report.errors) - max(0, max_errors)
    if more > 0:
        typer.echo(
            f"  ... and {more} more (--max-errors {len(report.errors)} lists them all)",
            err=True,
        )


def _pull_bulk(
    server: str, group: str | None, folder: Path | None, *, quiet: bool
) -> tuple[Path, dict[str, str]]:
    """Download (or resume) the server's Bulk export; the folder to import and failed files."""
    import hashlib

    import platformdirs

    from ldncare.fhir.bulk_export import pull_export

    if folder is None:
        key = hashlib.sha256(f"{server.rstrip('/')}|{group or ''}".encode()).hexdigest()[:16]
        folder = Path(platformdirs.user_data_dir("ldncare")) / "bulk" / key

    def progress(message: str) -> None:
        if not quiet:
            typer.echo(f"ldncare: {message}", err=True)

    import httpx

    from ldncare.fhir.bulk_export import BulkExportFailed

    try:
        result = pull_export(server, folder, group=group, progress=progress)
    except BulkExportFailed as exc:
        fail(str(exc), EXIT_FAILED)
    except httpx.HTTPError as exc:
        fail(f"{server} could not be reached ({type(exc).__name__}); try again later", EXIT_FAILED)
    for text in result.server_errors:
        typer.echo(f"ldncare: the EHR reported: {text}", err=True)
    for name, reason in result.failed.items():
        typer.echo(
            f"ldncare: {name} could not be downloaded ({reason}); run the same command again "
            "to fetch it",
            err=True,
        )
    if not any(result.folder.iterdir()):
        fail(f"no export file could be downloaded into {result.folder}", EXIT_FAILED)
    return result.folder, result.failed


def _download_issue(name: str, reason: str) -> ImportIssue:
    from ldncare.importing import ImportIssue

    return ImportIssue(
        "Bulk file", None, None, f"not downloaded ({reason}); run again to resume", where=name
    )


def register(app: typer.Typer) -> None:
    @app.command("import")
    @_errors
    def import_command(
        path: Annotated[
            Path | None,
            typer.Argument(
                metavar="PATH",
                help="A FHIR Bundle (.json), a folder of Bundles, or a Bulk Data export folder.",
            ),
        ] = None,
        ndjson: Annotated[
            bool,
            typer.Option("--ndjson", help="PATH is a Bulk NDJSON folder (default if a folder)."),
        ] = False,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the report as JSON (every error).")
        ] = False,
        max_errors: Annotated[int, typer.Option(help="Errors listed in the table.")] = 50,
        workers: Annotated[
            int,
            typer.Option(
                min=1,
                help="Worker processes staging, checking (and on PostgreSQL writing) a Bulk "
                "export; large files are split by byte range (pays off with spare cores). "
                "1 or more.",
            ),
        ] = 1,
        fhir_server: Annotated[
            str | None,
            typer.Option(
                "--fhir-server",
                help="Instead of PATH: run a Bulk Data $export on this FHIR base URL "
                "(SMART Backend Services, LDNCARE_BULK_* settings) and import it.",
            ),
        ] = None,
        group: Annotated[
            str | None,
            typer.Option("--group", help="With --fhir-server: export this Group only."),
        ] = None,
        download_dir: Annotated[
            Path | None,
            typer.Option(
                "--download-dir",
                help="With --fhir-server: where the export is kept (run again to resume); "
                "default: a folder per server and group in ldncare's data folder.",
            ),
        ] = None,
        since: Annotated[
            str | None,
            typer.Option(
                help="Bulk export: import only patients with a resource whose meta.lastUpdated "
                "is at or after this instant (e.g. the transactionTime of the export imported "
                "last); the export must still hold every resource of every patient."
            ),
        ] = None,
        part: Annotated[
            str | None,
            typer.Option(
                help="Bulk export shared by M machines: I/M imports only machine I's share of "
                "the patients (I from 0), each patient whole; see docs/SCALE.md."
            ),
        ] = None,
        staging_dir: Annotated[
            Path | None,
            typer.Option(
                "--staging-dir",
                help="Bulk export: the folder for the temporary staging files (about the "
                "uncompressed size of the files read; removed when the import ends). Default: "
                "LDNCARE_STAGING_DIR, else the system temp folder.",
            ),
        ] = None,
    ) -> None:
        """Import patients from FHIR R4 into the store (re-import updates, never duplicates).

        PATH is a FHIR Bundle (.json), a folder of Bundles (such as Synthea's output/fhir: every
        patient Bundle is imported; a Bundle without a Patient, like Synthea's practitioner and
        hospital files, and any other file or subfolder is listed as not read), or a Bulk Data
        export folder (NDJSON).

        A patient with an invalid resource, a birth date outside 1900-today or an id other
        than letters, digits, '.', '_' and '-' is not imported at all; each problem is listed
        with its type, id and field, and the rest of the import goes on. A Bulk export
        folder is read from its Patient, Medication, Condition, MedicationRequest,
        MedicationStatement, Observation and AllergyIntolerance files ending in .ndjson,
        .ndjson.gz, .jsonl or .jsonl.gz (e.g. Observation_2.ndjson.gz); other files and
        subfolders are listed as not read.

        With --fhir-server URL [--group ID] instead of PATH, ldncare runs a FHIR Bulk Data
        $export on the EHR (SMART Backend Services: LDNCARE_BULK_CLIENT_ID,
        LDNCARE_BULK_PRIVATE_KEY_FILE, LDNCARE_BULK_ALGORITHM RS384 or ES384; docs/SMART.md),
        waits as the EHR asks (Retry-After), downloads the files into --download-dir and
        imports them as a Bulk export folder. A file that could not be downloaded is listed by
        name and the others are imported; the same command again resumes the same export.

        Exit status: 0 = everything imported; 4 = imported in part: some patients or resources
        were not (listed; the others are in the store); 1 = no patient imported, or a file (a
        truncated .gz) or the database could not be used; 2 = bad input (e.g. a folder with no
        file to read, one NDJSON file instead of its export folder).
        """
        failed_files: dict[str, str] = {}
        if fhir_server is not None:
            if path is not None:
                fail("give PATH or --fhir-server, not both")
            path, failed_files = _pull_bulk(fhir_server, group, download_dir, quiet=as_json)
            ndjson = True
        elif path is None:
            fail("give PATH (a Bundle, a folder of Bundles or a Bulk export) or --fhir-server URL")
        assert path is not None
        staging = _staging_folder(staging_dir)
        report = _run_import(
            _engine(), path, ndjson, quiet=as_json, workers=workers, since=since, part=part,
            staging_dir=staging,
        )  # fmt: skip
        if failed_files:
            # Reported by name; the files that did come are imported all the same.
            for name, reason in failed_files.items():
                report.errors.append(_download_issue(name, reason))
        if as_json:
            emit(dump_json(report.to_json()), None)
        else:
            _print_report(report, max_errors)
        left_out = _not_imported(report)
        if not report.patients_read:
            # An export with an empty Patient file reads nothing and reports no problem:
            # still not an import a script may take for a clean one.
            fail(
                f"no patient imported: {left_out}"
                if left_out is not None
                else f"no patient imported: {path} holds no Patient resource ("
                + (
                    "none of its Bundles holds a Patient; the files not read are listed above)"
                    if path.is_dir() and not ndjson and _bundle_files(path) is not None
                    else "a Bulk export needs Patient resources in its Patient file, one per line)"
                ),
                EXIT_FAILED,
            )
        if left_out is None:
            return
        typer.echo(
            f"ldncare: imported in part: {left_out}; a skipped patient was not written (one "
            f"already in the store keeps its earlier record); exit status {EXIT_PARTIAL}",
            err=True,
        )
        raise typer.Exit(EXIT_PARTIAL)

    @app.command("screen")
    @_errors
    def screen_command(
        ndjson: Annotated[
            Path | None,
            typer.Option(
                help="Screen this Bulk NDJSON export (imported into a temporary "
                "database) instead of the store."
            ),
        ] = None,
        as_of: Annotated[str | None, typer.Option(help="Screen as of (YYYY-MM-DD).")] = None,
        format: Annotated[ScreenFormat, typer.Option("--format", help="Output format.")] = (
            ScreenFormat.table
        ),
        out: Annotated[Path | None, typer.Option(help="Write to this file.")] = None,
        max_errors: Annotated[
            int,
            typer.Option(
                help="With --ndjson: problems of the export listed on stderr (the patients "
                "and resources left out of the worklist)."
            ),
        ] = 50,
    ) -> None:
        """List patients who need action: on naltrexone (LDN or not) with an active opioid, LDN
        review due, pregnant on LDN, a tricyclic at 65 or over, a gabapentinoid with kidney
        function below 60 mL/min, pudendal neuralgia without an LDN plan. Each line shows its
        rule and sources. Every stored patient is screened from its latest assessment,
        whatever stored it (patient add, the web form, the API, import).

        Exit status: 0 = done; 4 = with --ndjson, some patients or resources of the export
        could not be read: the worklist is printed without them, and they are listed on
        stderr; 2 = bad input.
        """
        from ldncare.store.population import screen_population

        day = _date(as_of, "--as-of") or date.today()
        left_out: str | None = None
        if ndjson is not None:
            from ldncare.importing import import_ndjson

            with tempfile.TemporaryDirectory(prefix="ldncare-screen-") as tmp:
                engine = _engine(f"sqlite:///{Path(tmp) / 'screen.db'}")
                try:
                    report = import_ndjson(engine, ndjson, _actor(), as_of=day)
                    left_out = _not_imported(report)
                    if left_out is not None:
                        _warn_left_out(report, left_out, max_errors)
                    hits = screen_population(engine, day)
                finally:
                    engine.dispose()
        else:
            hits = screen_population(_engine(), day)
        if format is ScreenFormat.json:
            text = dump_json(
                {"as_of": day.isoformat(), "count": len(hits), "hits": [h.to_json() for h in hits]}
            )
        elif format is ScreenFormat.csv:
            text = _hits_csv(hits)
        else:
            text = _hits_table(hits, day)
        emit(text, out)
        if left_out is not None:
            # After the output: the worklist is still worth having, but it is not complete,
            # and a patient left out of it may be one who needs action.
            raise typer.Exit(EXIT_PARTIAL)
