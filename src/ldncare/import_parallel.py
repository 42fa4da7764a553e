"""Bulk NDJSON import over several processes, several machines, and incrementally (issue #20).

:func:`ldncare.importing.import_ndjson` stages an export in one process, then reads,
checks and writes it patient by patient. Here the same work is spread out, in two phases:

1. **Stage in parallel.** The export's files are cut into *shards*: a plain NDJSON file larger
   than the shard size is split by byte range at line ends (a ``.gz`` file cannot be entered
   in the middle and stays one shard). Each worker stages its shards with the same staging
   code as the one-process import (:meth:`NdjsonExport._stage_file`: prefilter, one parse,
   the line's own bytes to the bucket chosen by a hash of its patient) into bucket *parts* of
   its own: ``bucket-00042.00007.part`` is bucket 42 of shard 7. A patient's lines, from any
   file and any shard, all go to one bucket, because the bucket depends only on the patient
   id and the bucket count, which is fixed before staging starts.
2. **Group, check and write in parallel.** A worker takes one whole bucket: it joins its parts
   in shard order (= the order of a one-process staging, so the groups, and the hashes of the
   stored records, are the same as a one-process import gives), groups it by patient, reads
   and checks each patient, and -- on PostgreSQL -- writes the bucket's patients itself in
   batch transactions. One patient is in one bucket, so never in two workers at once. Each
   batch transaction first takes an advisory lock per patient
   (:func:`ldncare.store.import_claims.claim_patients`), which makes imports of *overlapping*
   exports running at the same time (other processes, other machines) safe too. On SQLite
   (one writer at a time) this process writes what the workers prepared.

``part=(i, m)`` makes this run machine *i* of *m*: it stages the whole export (every machine
reads every byte) but keeps, groups and writes only the buckets ``b`` with ``b % m == i``, so
the machines write disjoint sets of patients, each patient whole. Run with the same export
folder (or identical copies) on every machine; bucket numbers depend on the export's size.

``since`` (an instant, the ``_since`` of a Bulk export) imports only the patients one of whose
resources (or the Patient itself) has ``meta.lastUpdated`` at or after it, or has no readable
``meta.lastUpdated`` (then it cannot be known unchanged). Every resource of such a patient is
read -- the export must still be a *complete* export (every resource of every patient), never
a ``_since`` export holding only the changed resources, which would import as a patient who
lost everything else. The other patients are counted as ``not_changed_since`` and not read
(even one missing from the store: ``since`` assumes the earlier export was imported here):
their stored facts are not refreshed for the new ``as_of`` date (age, kidney function) or a
newer evidence base either; a full import does that.
"""

from __future__ import annotations

import os
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine

from ldncare.errors import InvalidInput, UnreadableFile
from ldncare.fhir import ndjson
from ldncare.fhir.ndjson import LineIssue, NdjsonExport, PatientGroup, Progress, read_bucket
from ldncare.import_report import ImportReport
from ldncare.importing import _Chunk, _consume, _pool, _prepare_all, _worker_facts
from ldncare.store.bulk import DEFAULT_BATCH
from ldncare.store.bulk import analyze as _analyze
from ldncare.store.import_claims import ClaimingWriter, batch_within_locks, lock_slots

#: A plain NDJSON file larger than this is staged in byte ranges by several workers.
SHARD_BYTES = 64 * 1024 * 1024
#: ... and never in ranges smaller than this (a shard costs a set of bucket part files).
MIN_SHARD_BYTES = 4 * 1024 * 1024
_SOURCE = "fhir:ndjson"


@dataclass
class ParallelImportReport(ImportReport):
    """:class:`ImportReport` and what the parallel, partial or incremental import adds."""

    workers: int = 1
    #: Machine ``part[0]`` of ``part[1]``, when the export is shared between machines.
    part: tuple[int, int] | None = None
    since: str | None = None
    #: Patients skipped by ``since``: nothing of theirs changed at or after it.
    patients_not_changed_since: int = 0
    shards: int = 0
    seconds_staging: float = 0.0
    #: Staging buckets of the export, and how many of them this run imported (all, or with
    #: ``part`` the ``b % M == I`` ones): machines sharing an export must agree on the total.
    buckets_total: int = 0
    buckets_imported: int = 0

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["patients"]["not_changed_since"] = self.patients_not_changed_since
        out["parallel"] = {
            "workers": self.workers,
            "part": None if self.part is None else f"{self.part[0]}/{self.part[1]}",
            "since": self.since,
            "shards": self.shards,
            "seconds_staging": round(self.seconds_staging, 3),
            "buckets": {"total": self.buckets_total, "imported": self.buckets_imported},
        }
        return out


# --- shards ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """Bytes ``[start, end)`` of one export file (``end`` None: to its end)."""

    index: int
    path: str
    start: int = 0
    end: int | None = None

    @property
    def label(self) -> str:
        """The file name in ``file:line`` messages; a range not at the file's start says where
        its line numbers count from."""
        name = Path(self.path).name
        return name if self.start == 0 else f"{name} (from byte {self.start})"


def plan_shards(files: Sequence[Path], workers: int, shard_bytes: int = SHARD_BYTES) -> list[Shard]:
    """The shards of ``files``: each ``.gz`` file whole; each plain file in ranges of about
    ``total / (4 x workers)`` bytes (at least :data:`MIN_SHARD_BYTES`, at most
    ``shard_bytes``), every range ending at a line end."""
    sizes = {p: p.stat().st_size for p in files}
    total = sum(sizes.values())
    target = min(shard_bytes, max(MIN_SHARD_BYTES, total // max(1, 4 * workers)))
    shards: list[Shard] = []
    for path in files:
        size = sizes[path]
        if path.name.endswith(".gz") or size <= target:
            shards.append(Shard(len(shards), str(path)))
            continue
        start = 0
        with path.open("rb") as fh:
            while start < size:
                fh.seek(min(size, start + target))
                fh.readline()  # to the end of the line the cut falls in
                end = min(size, fh.tell())
                shards.append(Shard(len(shards), str(path), start, None if end >= size else end))
                start = end
    return shards


class _SpanReader:
    """A read-only file object over bytes ``[start, end)`` of a file."""

    def __init__(self, path: str, start: int, end: int | None) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by __exit__
        self._fh.seek(start)
        self._start = start
        self._left = -1 if end is None else end - start

    def read(self, n: int = -1) -> bytes:
        if self._left < 0:
            return self._fh.read(n)
        if n < 0 or n > self._left:
            n = self._left
        data = self._fh.read(n)
        self._left -= len(data)
        return data

    def tell(self) -> int:
        return self._fh.tell() - self._start

    def __enter__(self) -> _SpanReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


class _SpanPath:
    """What :meth:`NdjsonExport._stage_file` needs of a path (``name``, ``open``), for a
    shard: its name says the resource type (and, past the first byte, where lines count
    from); ``open`` reads only the shard's bytes."""

    def __init__(self, shard: Shard) -> None:
        self.shard = shard
        self.name = shard.label

    def open(self, mode: str = "rb") -> IO[bytes]:
        s = self.shard
        return _SpanReader(s.path, s.start, s.end)  # type: ignore[return-value]


# --- phase 1: staging, in workers --------------------------------------------------------------


@dataclass
class _Staged:
    """What staging one shard gave (sent back to the coordinating process)."""

    lines: int = 0
    patients: int = 0
    resources: int = 0
    observations_dropped: int = 0
    issues: int = 0
    medications: list[tuple[str, bytes]] = field(default_factory=list)
    #: Set instead when a .gz file was damaged (the import stops, as a one-process one does).
    damaged: str | None = None


def _discard(_: bytes) -> None:
    """The bucket writer of a bucket another machine imports (``part``)."""


def _owned(index: int, part: tuple[int, int] | None) -> bool:
    return part is None or index % part[1] == part[0]


def stage_shard(
    directory: str, folder: str, shard: Shard, n_buckets: int, part: tuple[int, int] | None
) -> _Staged:
    """Stage one shard into bucket parts ``bucket-BBBBB.SSSSS.part`` of ``folder`` (a worker
    job; also run in process with one worker)."""
    out = Path(folder)
    export = NdjsonExport(Path(directory), workdir=out)
    files: list[IO[bytes]] = []
    try:
        export.n_buckets = n_buckets
        buffering = max(8192, min(1 << 20, ndjson.STAGING_BUFFER_BYTES // n_buckets))
        writes: list[Callable[[bytes], object]] = []
        for i in range(n_buckets):
            if _owned(i, part):
                name = f"bucket-{i:05d}.{shard.index:05d}.part"
                bucket = (out / name).open("wb", buffering=buffering)
                files.append(bucket)
                writes.append(bucket.write)
            else:
                writes.append(_discard)
        # A .gz shard is its whole file (gzip.open needs the real path).
        gz = shard.path.endswith(".gz")
        span = Path(shard.path) if gz else _SpanPath(shard)
        try:
            export._stage_file(span, writes, None, 0, 0)  # type: ignore[arg-type]
        except ndjson._GZIP_ERRORS as exc:
            return _Staged(damaged=ndjson._damaged(Path(shard.path), exc))
        stats = export.stats
        export._meds.commit()
        meds = export._meds.execute("SELECT ref, body FROM med").fetchall()
        return _Staged(stats.lines, stats.patients, stats.resources, stats.observations_dropped,
                       stats.issues, meds)  # fmt: skip
    finally:
        for part_file in files:
            part_file.close()
        export.close()


# --- phase 2: group, check, write --------------------------------------------------------------


def _instant(value: object) -> datetime | None:
    if type(value) is not str:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def parse_since(text: str) -> datetime:
    """The ``--since`` instant; a clear error unless it is an ISO 8601 instant with a time
    zone (as ``_since`` and ``transactionTime`` are written)."""
    when = _instant(text.strip())
    if when is None:
        raise InvalidInput(
            f"--since {text!r} is not an instant with a time zone: write it as FHIR instants "
            "are written, e.g. 2026-11-30T00:00:00Z or 2026-11-30T00:00:00+01:00 (a Bulk "
            "export manifest's transactionTime)",
            field="since",
        )
    return when


def _changed_since(group: PatientGroup, since: datetime) -> bool:
    """Whether anything of this patient was updated at or after ``since`` (or cannot be told:
    a resource without a readable ``meta.lastUpdated``, or a problem to report)."""
    if group.issues or group.patient is None:
        return True
    for res in (group.patient, *group.resources):
        meta = res.get("meta")
        when = _instant(meta.get("lastUpdated")) if isinstance(meta, dict) else None
        if when is None or when >= since:
            return True
    return False


def _since_filter(
    items: Iterable[PatientGroup | LineIssue], since: datetime | None, skipped: list[int]
) -> Iterator[PatientGroup | LineIssue]:
    for item in items:
        if since is not None and isinstance(item, PatientGroup) and not _changed_since(item, since):
            skipped[0] += 1
            continue
        yield item


def _join_parts(folder: Path, index: int) -> None:
    """Bucket ``index`` as one file, its parts appended in shard order."""
    parts = sorted(folder.glob(f"bucket-{index:05d}.*.part"))
    with (folder / f"bucket-{index:05d}.bin").open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
            os.unlink(part)


@dataclass
class _Grouped:
    """What one bucket gave: prepared patients (SQLite: this process writes them) or the
    report of writing them (PostgreSQL: the worker wrote them)."""

    chunk: _Chunk
    not_changed: int = 0
    written: ImportReport | None = None


_PROCESS: dict[str, Any] = {}


def _process_writer(url: str, actor: str, as_of: date, batch_size: int) -> ClaimingWriter:
    """One engine and writer per worker process (vocabulary loaded once)."""
    key = f"{url}|{actor}|{as_of}|{batch_size}"
    writer = _PROCESS.get(key)
    if writer is None:
        from ldncare.store.db import make_engine

        engine = make_engine(url)
        writer = _PROCESS[key] = ClaimingWriter(
            engine, actor, as_of, ImportReport(), _SOURCE, batch_size
        )
    assert isinstance(writer, ClaimingWriter)
    return writer


def group_bucket(
    folder: str, index: int, as_of: date, dialect: str, since: datetime | None,
    write: tuple[str, str, int] | None,
) -> _Grouped:  # fmt: skip
    """Join, group, check and prepare one bucket; with ``write`` = (database URL, actor,
    batch size), also write its patients (a worker job; also run in process)."""
    path = Path(folder)
    _join_parts(path, index)
    skipped = [0]
    items = _since_filter(read_bucket(path, index), since, skipped)
    chunk = _prepare_all(items, _worker_facts(as_of, dialect))
    if write is None:
        return _Grouped(chunk, skipped[0])
    url, actor, batch_size = write
    writer = _process_writer(url, actor, as_of, batch_size)
    report = writer.report = ImportReport()
    _consume(chunk, writer, report)
    writer.close()
    light = _Chunk(issues=[], skipped=0, seen=chunk.seen)  # the prepared rows stay here
    return _Grouped(light, skipped[0], report)


# --- the import --------------------------------------------------------------------------------


def _merge_written(report: ImportReport, written: ImportReport) -> None:
    for name in (
        "patients_imported", "patients_updated", "patients_facts_refreshed",
        "patients_unchanged", "patients_skipped", "medications_total", "medications_active",
        "conditions", "conditions_active", "observations",
    ):  # fmt: skip
        setattr(report, name, getattr(report, name) + getattr(written, name))
    report.errors.extend(written.errors)


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def import_export(
    engine: Engine,
    directory: Path,
    actor: str,
    progress: Progress | None = None,
    *,
    workers: int = 1,
    as_of: date | None = None,
    batch_size: int = DEFAULT_BATCH,
    since: datetime | None = None,
    part: tuple[int, int] | None = None,
    workdir: Path | None = None,
    shard_bytes: int = SHARD_BYTES,
) -> ParallelImportReport:
    """Import a Bulk NDJSON export folder with ``workers`` processes (see the module doc).

    With PostgreSQL the workers write (one connection each, plus this process's); with SQLite
    this process writes. ``part=(i, m)``: this is machine ``i`` (0-based) of ``m``. ``since``:
    only patients with something updated at or after it. A script calling this with
    ``workers`` > 1 needs the ``if __name__ == "__main__":`` guard (forkserver/spawn)."""
    import time

    started = time.perf_counter()
    workers = max(1, workers)
    if part is not None and not (part[1] >= 1 and 0 <= part[0] < part[1]):
        raise InvalidInput(
            f"--part {part[0]}/{part[1]}: write I/M with 0 <= I < M (machine I of M, from 0)",
            field="part",
        )
    as_of = as_of or date.today()
    dialect = engine.dialect.name
    pg = dialect == "postgresql"
    report = ParallelImportReport(
        workers=workers, part=part, since=None if since is None else since.isoformat()
    )
    if pg:
        # Each batch holds one advisory lock per patient until it commits: keep them in the
        # lock table (import_claims.batch_within_locks).
        with engine.connect() as conn:
            batch_size = batch_within_locks(batch_size, workers, lock_slots(conn))
    # PostgreSQL with workers: each worker writes its buckets (its own connection). Otherwise
    # this process writes (SQLite has one writer at a time), in a background thread on
    # PostgreSQL while the next bucket is read, as the one-process import does.
    write = (_url(engine), actor, batch_size) if pg and workers > 1 else None
    writer = None
    if write is None:
        writer = ClaimingWriter(engine, actor, as_of, report, _SOURCE, batch_size, background=pg)
    with NdjsonExport(Path(directory), workdir=workdir) as export:
        folder = str(export.staging_dir)
        shards = plan_shards(export.files, workers, shard_bytes)
        report.shards = len(shards)
        report.files = list(export.stats.files)
        report.ignored_files = list(export.stats.ignored_files)
        n = export.n_buckets
        if part is not None:
            # At least one bucket per machine, and as many for each: a multiple of M.
            n = export.n_buckets = -(-n // part[1]) * part[1]
        pool: ProcessPoolExecutor | None = _start_pool(workers) if workers > 1 else None
        try:
            # Phase 1: stage every shard.
            jobs = [(str(directory), folder, s, n, part) for s in shards]
            if pool is None:
                staged: Iterable[_Staged] = (stage_shard(*j) for j in jobs)
            else:
                staged = pool.map(stage_shard, *zip(*jobs, strict=True))
            total = export.total_bytes
            done = 0
            for shard, result in zip(shards, staged, strict=True):
                if result.damaged is not None:
                    raise UnreadableFile(result.damaged)
                _add_staged(export, report, result)
                size = Path(shard.path).stat().st_size if shard.end is None else shard.end
                done += size - shard.start
                if progress is not None:
                    progress("stage", done, total)
            export._meds.commit()
            report.bytes_read = total
            report.seconds_staging = time.perf_counter() - started
            # Phase 2: group, check and write each owned bucket.
            buckets = [i for i in range(n) if _owned(i, part)]
            report.buckets_total, report.buckets_imported = n, len(buckets)
            seen = 0
            for grouped in _grouped(pool, workers, buckets, folder, as_of, dialect, since, write):
                report.patients_not_changed_since += grouped.not_changed
                if grouped.written is not None:
                    _merge_written(report, grouped.written)
                else:
                    assert writer is not None
                    for prepared in grouped.chunk.prepared:
                        writer.add_prepared(prepared)
                report.errors.extend(grouped.chunk.issues)
                report.patients_skipped += grouped.chunk.skipped
                seen += grouped.chunk.seen
                if progress is not None:
                    progress("import", seen, export.stats.patients)
            if writer is not None:
                writer.close()
        finally:
            if writer is not None:
                writer.stop()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
    _analyze(engine)
    report.seconds = time.perf_counter() - started
    return report


def _start_pool(workers: int) -> ProcessPoolExecutor:
    """The importer's process pool (forkserver/spawn), its forkserver preloading this module,
    so each worker forks with ldncare already imported instead of importing it again."""
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        multiprocessing.get_context("forkserver").set_forkserver_preload([__name__])
    return _pool(workers)


def _add_staged(export: NdjsonExport, report: ParallelImportReport, result: _Staged) -> None:
    stats = export.stats
    stats.lines += result.lines
    stats.patients += result.patients
    stats.resources += result.resources
    stats.observations_dropped += result.observations_dropped
    stats.issues += result.issues
    if result.medications:
        # The staging table of ndjson.py (Medication targets of medicationReference).
        export._meds.executemany("INSERT OR REPLACE INTO med VALUES (?, ?)", result.medications)


def _grouped(
    pool: ProcessPoolExecutor | None, workers: int, buckets: list[int], folder: str,
    as_of: date, dialect: str, since: datetime | None, write: tuple[str, str, int] | None,
) -> Iterator[_Grouped]:  # fmt: skip
    """The buckets' results in bucket order; at most ``workers + 1`` buckets in flight (memory
    stays bounded by a few buckets, not by N)."""
    if pool is None:
        for i in buckets:
            yield group_bucket(folder, i, as_of, dialect, since, write)
        return
    todo = iter(buckets)
    pending: deque[Future[_Grouped]] = deque()
    for i in todo:
        pending.append(pool.submit(group_bucket, folder, i, as_of, dialect, since, write))
        if len(pending) > workers:
            break
    while pending:
        result = pending.popleft().result()
        nxt = next(todo, None)
        if nxt is not None:
            pending.append(pool.submit(group_bucket, folder, nxt, as_of, dialect, since, write))
        yield result


def parse_part(text: str) -> tuple[int, int]:
    """``--part I/M`` -> (I, M), with a clear error otherwise."""
    head, sep, tail = text.partition("/")
    if sep and head.strip().isdigit() and tail.strip().isdigit():
        i, m = int(head), int(tail)
        if m >= 1 and 0 <= i < m:
            return i, m
    raise InvalidInput(
        f"--part {text!r}: write I/M, machine I of M counted from 0 (e.g. 0/2 and 1/2 for two "
        "machines sharing one export)",
        field="part",
    )


def now_instant() -> str:
    """The current instant as ``--since`` takes it (for scripts chaining imports)."""
    return datetime.now(UTC).isoformat(timespec="seconds")
