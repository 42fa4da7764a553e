"""Import FHIR R4 Bundles and Bulk Data NDJSON exports into the store: the running of an import.

Three jobs, three layers, wired here (beside :mod:`ldncare.planning`, the other entry point the
adapters call):

- **read** (:mod:`ldncare.fhir.groups`, :mod:`ldncare.fhir.ndjson`): FHIR -> one group of
  resources per patient -> a core ``Patient`` with the plans and diary ldncare's own resources
  carry back, or the issues that keep the patient out (never a partial patient);
- **derive** (:mod:`ldncare.store.facts`, over :mod:`ldncare.core.current_state`): the
  patient's current-state facts, its snapshot and their two-part hash;
- **write** (:mod:`ldncare.store.bulk`): batches, PostgreSQL ``COPY`` and the audit rows;
  idempotent by FHIR Patient id.

This module runs them: the staging of an NDJSON export, the worker processes that read and
prepare its buckets, the writer that follows in bucket order, and the report. It also holds the
rules the importer shares with ``plan`` and the web about a patient read whole
(:func:`_refused_patient`), which the FHIR layer does not own.
"""

from __future__ import annotations

import gc
import multiprocessing
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ldncare.core.patient import Patient
from ldncare.errors import InvalidInput
from ldncare.fhir.groups import PatientRead, bundle_groups, line_issue, read_patient
from ldncare.fhir.ndjson import LineIssue, NdjsonExport, PatientGroup, Progress, read_bucket
from ldncare.import_report import ImportIssue, ImportReport
from ldncare.patient_file import check_birth_date
from ldncare.store.bulk import DEFAULT_BATCH, BulkWriter, analyze
from ldncare.store.external_id import is_valid as is_valid_external_id
from ldncare.store.external_id import unusable
from ldncare.store.facts import _Encoding, _Facts, _Prepared

__all__ = [
    "DEFAULT_BATCH",
    "ImportIssue",
    "ImportReport",
    "import_bundle",
    "import_ndjson",
]


def _refused_patient(patient: Patient) -> ImportIssue | None:
    """What ``plan`` and the web refuse about the patient itself: an external id outside the
    one rule (``store.external_id``), a birth date outside 1900-today (SAFETY.md H17)."""
    if not is_valid_external_id(patient.id):
        return ImportIssue(
            "Patient", patient.id, "id", unusable(patient.id).message, patient_id=patient.id
        )
    try:
        check_birth_date(patient.birth_date, "birthDate")
    except InvalidInput as exc:
        return ImportIssue("Patient", patient.id, "birthDate", exc.message, patient_id=patient.id)
    return None


@dataclass
class _Chunk:
    """Patients read and prepared (in a worker or in process), ready for the writer."""

    prepared: list[_Prepared] = field(default_factory=list)
    issues: list[ImportIssue] = field(default_factory=list)
    skipped: int = 0
    #: Patients of the export met (written, skipped or not).
    seen: int = 0


def _prepare_all(items: Iterable[PatientGroup | LineIssue], facts: _Facts) -> _Chunk:
    # The cycle collector is paused while one bucket is read and prepared: its parsed JSON
    # and the models built from it hold no reference cycles, yet each collection walked the
    # whole live bucket again (~5 % of an import's CPU, issue 20). Resumed after the bucket
    # (never turned on if the caller had it off).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _prepare_chunk(items, facts)
    finally:
        if collecting:
            gc.enable()


def _prepare_chunk(items: Iterable[PatientGroup | LineIssue], facts: _Facts) -> _Chunk:
    chunk = _Chunk()
    stamp = facts.enc.stamp(datetime.now(UTC))
    for item in items:
        if isinstance(item, LineIssue):
            chunk.issues.append(line_issue(item))
            continue
        result = read_patient(item, _refused_patient)
        if isinstance(result, PatientRead):
            prepared = facts.prepare(result.patient, stamp)
            prepared.plans = result.plans
            prepared.diary = result.diary
            chunk.prepared.append(prepared)
        else:
            chunk.issues.extend(result)
            # A Patient line that could not be read still counts as a patient not imported
            # (resources that name a Patient absent from the export do not).
            if item.patient is not None or any(i.resource_type == "Patient" for i in item.issues):
                chunk.skipped += 1
        if item.patient is not None:
            chunk.seen += 1
    return chunk


_WORKER_FACTS: dict[tuple[date, str], _Facts] = {}


def _worker_facts(as_of: date, dialect: str) -> _Facts:
    facts = _WORKER_FACTS.get((as_of, dialect))
    if facts is None:
        facts = _WORKER_FACTS[(as_of, dialect)] = _Facts(as_of, _Encoding(dialect))
    return facts


def _bucket_job(folder: str, index: int, as_of: date, dialect: str) -> _Chunk:
    """Worker process: read, check and prepare the patients of one staged bucket."""
    return _prepare_all(read_bucket(Path(folder), index), _worker_facts(as_of, dialect))


def _consume(chunk: _Chunk, writer: BulkWriter, report: ImportReport) -> None:
    report.errors.extend(chunk.issues)
    report.patients_skipped += chunk.skipped
    for prepared in chunk.prepared:
        writer.add_prepared(prepared)


def _pool(workers: int) -> ProcessPoolExecutor:
    methods = multiprocessing.get_all_start_methods()
    # forkserver/spawn, never plain fork: the caller may run threads (Rich's progress bar).
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def import_bundle(
    engine: Engine,
    bundle: Mapping[str, Any],
    actor: str,
    *,
    as_of: date | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> ImportReport:
    """Import every patient of a transaction/collection/searchset Bundle."""
    started = time.perf_counter()
    report = ImportReport()
    groups, issues = bundle_groups(bundle)
    report.errors.extend(issues)
    writer = BulkWriter(engine, actor, as_of or date.today(), report, "fhir:bundle", batch_size)
    _consume(_prepare_all(groups, writer.facts), writer, report)
    writer.close()
    report.seconds = time.perf_counter() - started
    return report


def import_ndjson(
    engine: Engine,
    directory: Path,
    actor: str,
    progress: Progress | None = None,
    *,
    as_of: date | None = None,
    batch_size: int = DEFAULT_BATCH,
    workers: int = 1,
    workdir: Path | None = None,
) -> ImportReport:
    """Import a Bulk Data export folder, streaming (memory does not grow with its size).

    The export is staged into buckets (:mod:`ldncare.fhir.ndjson`); with ``workers`` > 1 the
    buckets are read and checked in that many worker processes (at most ``workers + 1``
    buckets in flight, so memory stays bounded) while this process writes, in bucket order.
    That only pays on a machine with cores to spare (measured on 2 shared cores: slower at
    10k patients, about even at 100k), so the default is 1. Worker processes are started with
    forkserver/spawn: a script calling this with ``workers`` > 1 needs the usual
    ``if __name__ == "__main__":`` guard.
    ``progress(phase, done, total)`` is called with phase "stage" (bytes read) and then
    "import" (patients done of the patients found).
    """
    started = time.perf_counter()
    report = ImportReport()
    as_of = as_of or date.today()
    workers = max(1, workers)
    dialect = engine.dialect.name
    # PostgreSQL works in its own process: write each batch while the next one is prepared.
    writer = BulkWriter(engine, actor, as_of, report, "fhir:ndjson", batch_size,
                     background=dialect == "postgresql")  # fmt: skip
    with NdjsonExport(Path(directory), workdir=workdir) as export, ExitStack() as stack:
        stack.callback(writer.stop)
        parallel = workers > 1 and export.n_buckets > 1
        pool = stack.enter_context(_pool(workers)) if parallel else None
        if pool is not None:
            # Start the workers (and load their vocabulary) while this process stages.
            warm = [pool.submit(_worker_facts, as_of, dialect) for _ in range(workers)]
        stats = export.stage(progress)
        report.files = list(stats.files)
        report.ignored_files = list(stats.ignored_files)
        report.bytes_read = stats.bytes_read
        done = 0
        folder = str(export.staging_dir)

        def chunks() -> Iterator[_Chunk]:
            if pool is None:
                for i in range(export.n_buckets):
                    yield _prepare_all(read_bucket(export.staging_dir, i), writer.facts)
                return
            for w in warm:
                w.result()
            pending: deque[Future[_Chunk]] = deque()
            todo = iter(range(export.n_buckets))
            for i in islice(todo, workers + 1):
                pending.append(pool.submit(_bucket_job, folder, i, as_of, dialect))
            while pending:
                chunk = pending.popleft().result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(pool.submit(_bucket_job, folder, nxt, as_of, dialect))
                yield chunk

        for chunk in chunks():
            _consume(chunk, writer, report)
            done += chunk.seen
            if progress is not None:
                progress("import", done, stats.patients)
        writer.close()
    analyze(engine)
    report.seconds = time.perf_counter() - started
    return report
