"""Stream a FHIR Bulk Data export (``$export``: one NDJSON file per resource type) per patient.

An export holds every resource of a type in one file (``Patient.ndjson``,
``MedicationRequest.ndjson``, ... possibly ``.ndjson.gz``, ``.jsonl`` or ``.jsonl.gz``, or split
as ``Observation_2.ndjson``),
in no useful order. The importer needs each patient's resources together, so this module
groups them without holding the export in memory:

1. **Stage**: the files we use are read in large blocks; every line is parsed once (which
   checks it is JSON), keyed by its patient (the id of a Patient, the ``subject``/``patient``
   reference of the others) and its *original bytes* are appended, as ``[kind, key, line]``
   on a line of its own, to one of K bucket files chosen by a hash of that key: nothing is
   serialised again. K grows with the size of the export, so a bucket stays around
   :data:`BUCKET_BYTES` whatever N is.
   ``Medication`` resources (targets of ``medicationReference``) go to a small SQLite table.
   Observations whose codes are not ones the reader uses (labs, weight, height, pregnancy) are
   dropped here, which is most of a real export.
2. **Group**: one bucket at a time is read back and grouped in memory
   (:func:`read_bucket`, which a worker process can run too): one ``orjson.loads`` per record
   (a whole-bucket parse was no faster, held the GIL for tens of ms while the PostgreSQL
   writer thread waited, and took ~10 MB more at its peak). Each patient is yielded as a
   :class:`PatientGroup`. Memory is bounded by one bucket, not by N.

A line that is not JSON, or a resource without a patient reference, becomes a
:class:`LineIssue`; when the broken line still shows which patient it belonged to, the issue is
attached to that patient's group, so the importer can refuse to write a patient it knows is
incomplete.
"""

from __future__ import annotations

import gc
import gzip
import os
import re
import shutil
import sqlite3
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from itertools import chain
from pathlib import Path
from typing import IO, Any

import orjson

from ldncare.errors import InvalidInput, UnreadableFile
from ldncare.fhir.patient_bundle import BODY_HEIGHT, BODY_WEIGHT, LAB_LOINC, PREGNANCY_STATUS
from ldncare.fhir.references import index_resources, parse_reference, patient_key, resolve

_loads = orjson.loads
_dumps = orjson.dumps
_JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, UnicodeDecodeError)

#: Resource types the importer reads; files of other types are not opened.
PATIENT_TYPES = (
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "AllergyIntolerance",
)
USED_TYPES = frozenset({"Patient", "Medication", *PATIENT_TYPES})
#: Observation codes the patient reader keeps; other Observations are dropped while staging.
USED_OBSERVATION_CODES = frozenset({*LAB_LOINC, BODY_WEIGHT, BODY_HEIGHT, PREGNANCY_STATUS})
#: Target size of one staging bucket (uncompressed NDJSON bytes).
BUCKET_BYTES = 4 * 1024 * 1024
#: At most this many bucket files (each is an open file while staging). Beyond
#: MAX_BUCKETS x BUCKET_BYTES of input (~2 GB, about 1.2 million patients of the benchmark mix)
#: the buckets, and so memory, grow with the export.
MAX_BUCKETS = 512
#: Write buffers of all bucket files together while staging.
STAGING_BUFFER_BYTES = 16 * 1024 * 1024
#: Bytes read from an export file at a time while staging (lines are split in memory).
READ_BYTES = 1 << 18
#: A line with more brackets than this is staged as a JSON string (parsed on its own when read
#: back): nested one level deeper in a bucket record it could pass orjson's depth limit of 1,024.
DEEP_BRACKETS = 1000
#: A gzip'd NDJSON file is assumed to expand this much when sizing the buckets.
GZIP_RATIO = 8
_BOM = b"\xef\xbb\xbf"
_TYPE_TOKEN = re.compile(r"[A-Za-z]+")
# Only used on lines that failed to parse, to tell which patient lost a resource.
_PATIENT_REF = re.compile(r'"(?:subject|patient)"\s*:\s*\{[^{}]*?"reference"\s*:\s*"([^"]+)"')
# A Patient's id after its resourceType, or as the line's first key before it (key order is
# free in JSON: some exporters write "id" first).
_PATIENT_ID = re.compile(
    r'"resourceType"\s*:\s*"Patient".*?"id"\s*:\s*"([^"]+)"'
    r'|^\s*\{\s*"id"\s*:\s*"([^"]+)".*?"resourceType"\s*:\s*"Patient"'
)
#: File names of an export that are read (``Patient.jsonl.gz`` as well as ``Patient.ndjson``).
NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")

# Record kinds in the bucket files; _TEXT is or'ed in when the line is stored as a string.
_PATIENT, _RESOURCE, _ISSUE = 0, 1, 2
_TEXT = 8

#: A bucket record to write: (patient key, kind, payload), and for a Patient the ``file:line``
#: of its line (written as ``[kind, [key, where], payload]``).
_Record = tuple[str, int, Any] | tuple[str, int, Any, str]

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``: phase "stage" counts bytes, "import" counts patients."""


@dataclass(frozen=True)
class LineIssue:
    """A line or resource of the export that could not be used."""

    resource_type: str
    resource_id: str | None
    field: str | None
    message: str
    #: ``file:line`` of the NDJSON line.
    where: str
    #: The patient the line belonged to, when that could be told.
    patient_key: str | None = None


@dataclass
class PatientGroup:
    """One patient's resources, gathered from all files."""

    key: str
    patient: Mapping[str, Any] | None = None
    resources: list[Mapping[str, Any]] = field(default_factory=list)
    issues: list[LineIssue] = field(default_factory=list)
    #: Bundle entries (``{"resource": Medication, "fullUrl": ...}``) of the Medication
    #: resources that ``medicationReference`` may point at.
    medications: list[Mapping[str, Any]] = field(default_factory=list)
    #: ``file:line`` of the Patient line (NDJSON), for the issues that name it.
    patient_where: str = ""
    #: ldncare's own CarePlans (tagged) naming this patient: they carry its stored plans
    #: (:func:`ldncare.fhir.tags.plan_contracts`). Bundles only: NDJSON staging drops them.
    plans: list[Mapping[str, Any]] = field(default_factory=list)
    #: ldncare's own diary Observations (tagged) naming this patient: they carry its diary
    #: days (:func:`ldncare.fhir.tags.diary_entries`). Bundles only, as the plans.
    diary: list[Mapping[str, Any]] = field(default_factory=list)


@dataclass
class StageStats:
    files: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    bytes_read: int = 0
    lines: int = 0
    patients: int = 0
    resources: int = 0
    #: Observations left out because their code is not one ldncare reads.
    observations_dropped: int = 0
    issues: int = 0


def resource_type_of(path: Path) -> str | None:
    """The resource type a Bulk file name announces (``Observation_2.ndjson.gz`` ->
    Observation), or None when the name names none of the types the importer reads."""
    name = path.name
    for suffix in (".gz", ".ndjson", ".jsonl", ".json"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    token: str
    for token in _TYPE_TOKEN.findall(name):
        if token in USED_TYPES:
            return token
    return None


def export_files(directory: Path) -> tuple[list[Path], list[Path]]:
    """NDJSON files of ``directory`` the importer reads (Patient first), and every other file
    of it, which is not read (not NDJSON, or of a type the importer does not use).

    Raises InvalidInput when no file would be read: an import of nothing must not pass for a
    clean one."""
    if not directory.is_dir():
        raise InvalidInput(f"{directory} is not a directory of NDJSON files")
    used: list[Path] = []
    ignored: list[Path] = []
    for path in sorted(directory.iterdir()):
        if not path.is_file():
            if path.is_dir():  # not read either: listed, so nothing is skipped unsaid
                ignored.append(path)
            continue
        ndjson = path.name.endswith(NDJSON_SUFFIXES)
        (used if ndjson and resource_type_of(path) else ignored).append(path)
    if not used:
        raise InvalidInput(_nothing_to_read(directory, ignored))
    used.sort(key=lambda p: (resource_type_of(p) != "Patient", p.name))
    return used, ignored


def shown_name(path: Path) -> str:
    """A file's name as a report lists it; a folder's ends in ``/`` (subfolders are not read)."""
    return f"{path.name}/" if path.is_dir() else path.name


def _nothing_to_read(directory: Path, others: list[Path]) -> str:
    types = ", ".join(sorted(USED_TYPES))
    message = (
        f"{directory} holds no export file that ldncare reads: it reads files named after "
        f"their resource type ({types}; e.g. Patient.ndjson, Observation_2.ndjson.gz) and "
        f"ending in {', '.join(NDJSON_SUFFIXES)}"
    )
    if others:
        names = ", ".join(shown_name(p) for p in others[:10])
        more = f" and {len(others) - 10} more" if len(others) > 10 else ""
        message += f"; the folder holds {names}{more}"
    if any(p.name.endswith(".json") for p in others):
        message += "; a FHIR Bundle (.json) is imported by giving the file itself, not its folder"
    return message


#: What reading a damaged .gz file raises: truncated (EOFError), not gzip or a failed CRC /
#: length check (BadGzipFile), corrupt deflate data (zlib.error).
_GZIP_ERRORS: tuple[type[Exception], ...] = (EOFError, gzip.BadGzipFile, zlib.error)


def _damaged(path: Path, exc: Exception) -> str:
    """The message for a .gz file that could not be read to its end."""
    if isinstance(exc, EOFError):
        problem = "is truncated: the gzip data ends before its end-of-stream marker"
    elif isinstance(exc, gzip.BadGzipFile) and str(exc).startswith("Not a gzipped file"):
        problem = "is not gzip-compressed (a plain NDJSON file should be named .ndjson or .jsonl)"
    else:
        problem = f"holds damaged gzip data ({exc})"
    return (
        f"{path} {problem}; nothing was imported. A .ndjson.gz or .jsonl.gz file must be "
        "complete, valid gzip: export or download it again"
    )


def _open(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _subject_key(resource: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(patient key, field) of a clinical resource; key None when missing or not a Patient."""
    ref = resource.get("subject")
    if type(ref) is dict:
        target = ref.get("reference")
        if type(target) is str:
            # The usual ``Patient/123``, without splitting it.
            if target.startswith("Patient/") and len(target) > 8 and "/" not in target[8:]:
                return target[8:], "subject"
            return patient_key(target), "subject"
    for name in ("subject", "patient"):
        ref = resource.get(name)
        if isinstance(ref, Mapping):
            target = ref.get("reference")
            if isinstance(target, str):
                return patient_key(target), name
    return None, None


def _observation_used(resource: Mapping[str, Any]) -> bool:
    code = resource.get("code")
    if not isinstance(code, Mapping):
        return True  # malformed: keep it, the reader reports it
    codings = code.get("coding")
    if not isinstance(codings, list):
        return codings is not None
    for coding in codings:
        if not isinstance(coding, Mapping):
            return True
        value = coding.get("code")
        if type(value) is str:
            if value in USED_OBSERVATION_CODES or value != value.strip():
                return True
        elif isinstance(value, (list, dict)):
            return True  # malformed (and not hashable): keep it, the reader reports it
    return False


def _lines(fh: IO[bytes], unterminated: list[bool]) -> Iterator[bytes]:
    """The lines of a file without their ``\\n``, read :data:`READ_BYTES` at a time (a line
    longer than that is joined once, not copied again per block). A last line without
    ``\\n`` sets ``unterminated[0]`` before it is yielded."""
    pending: list[bytes] = []  # the pieces of a line not ended yet
    read = fh.read
    first = read(max(READ_BYTES, len(_BOM)))
    # Some exporters (and Windows editors) start a file with a UTF-8 byte order mark, which
    # JSON forbids: without this, the file's first record would be rejected.
    if first.startswith(_BOM):
        first = first[len(_BOM) :]
    for block in chain((first,), iter(partial(read, READ_BYTES), b"")):
        lines = block.split(b"\n")
        if pending:
            pending.append(lines[0])
            if len(lines) == 1:
                continue
            lines[0] = b"".join(pending)
            pending = []
        last = lines.pop()
        if last:
            pending.append(last)
        yield from lines
    if pending:
        unterminated[0] = True
        yield b"".join(pending)


class NdjsonExport:
    """A Bulk Data export being read; use as a context manager (it owns a staging folder)."""

    def __init__(self, directory: Path, *, workdir: Path | None = None) -> None:
        self.directory = Path(directory)
        self.files, self.ignored = export_files(self.directory)
        self._tmp = Path(tempfile.mkdtemp(prefix="ldncare-ndjson-", dir=workdir))
        self.stats = StageStats(
            files=[p.name for p in self.files],
            ignored_files=[shown_name(p) for p in self.ignored],
        )
        total = sum(
            p.stat().st_size * (GZIP_RATIO if p.name.endswith(".gz") else 1) for p in self.files
        )
        self.n_buckets = min(MAX_BUCKETS, max(1, -(-total // BUCKET_BYTES)))
        self._staged = False
        self._meds = sqlite3.connect(self._tmp / "medications.db")
        self._meds.execute("PRAGMA journal_mode=OFF")
        self._meds.execute("PRAGMA synchronous=OFF")
        self._meds.execute("CREATE TABLE med (ref TEXT PRIMARY KEY, body BLOB)")

    def __enter__(self) -> NdjsonExport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._meds.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    @property
    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)

    # -- stage ------------------------------------------------------------------------------
    def stage(self, progress: Progress | None = None) -> StageStats:
        """Read every used file once and spread its lines over the bucket files."""
        if self._staged:
            return self.stats
        # The write buffers of all buckets together stay within STAGING_BUFFER_BYTES, whatever
        # the number of buckets (1 MB each for 400 buckets was 400 MB at a million patients).
        buffering = max(8192, min(1 << 20, STAGING_BUFFER_BYTES // self.n_buckets))
        buckets = [
            (self._tmp / f"bucket-{i:05d}.bin").open("wb", buffering=buffering)
            for i in range(self.n_buckets)
        ]
        total = self.total_bytes
        done = 0
        try:
            writes = [b.write for b in buckets]
            for path in self.files:
                try:
                    self._stage_file(path, writes, progress, done, total)
                except _GZIP_ERRORS as exc:
                    # Stop the whole import (nothing is written before staging ends): going
                    # on would import the patients whose resources were in the lost part as
                    # if they had none.
                    raise UnreadableFile(_damaged(path, exc)) from None
                done += path.stat().st_size
                self.stats.bytes_read = done
                if progress is not None:
                    progress("stage", done, total)
        finally:
            for b in buckets:
                b.close()
        self._meds.commit()
        self._staged = True
        return self.stats

    def _stage_file(
        self,
        path: Path,
        writes: Sequence[Callable[[bytes], object]],
        progress: Progress | None,
        done: int,
        total: int,
    ) -> None:
        """Stage the lines of one file. Per line: one parse, a few dict lookups, one write of
        the line's own bytes; anything unusual goes the slow way (:meth:`_unusual`)."""
        stats = self.stats
        n = len(writes)
        crc32 = zlib.crc32
        loads, dumps = _loads, _dumps
        json_errors = _JSON_ERRORS
        patient_types = _CLINICAL_TYPES
        used_codes = USED_OBSERVATION_CODES
        fname = path.name
        expected = resource_type_of(path)
        raw = not fname.endswith(".gz")
        lineno = 0
        dropped = resources = 0
        unterminated = [False]
        # Observations ldncare never reads are dropped before a full parse (fhir/prefilter.py).
        unused = _unused_observation() if expected == "Observation" else None
        with _open(path) as fh:
            for line in _lines(fh, unterminated):
                lineno += 1
                if progress is not None and not lineno & 4095:
                    progress("stage", done + (fh.tell() if raw else 0), total)
                if unused is not None and unused(line):
                    dropped += 1
                    continue
                try:
                    res = loads(line)
                except json_errors as exc:
                    if line.strip():
                        where = f"{fname}:{lineno}"
                        bad = self._bad_json(line, exc, not unterminated[0], where, expected)
                        self._write(writes, bad)
                    continue
                rtype = res.get("resourceType") if type(res) is dict else None
                if rtype == "Observation":
                    # Inline fast path of _observation_used for the usual shape.
                    code = res.get("code")
                    codings = code.get("coding") if type(code) is dict else None
                    if type(codings) is list and all(
                        type(c) is dict
                        and type(v := c.get("code")) is str
                        and v not in used_codes
                        and v == v.strip()  # " 33914-3" is kept: the reader refuses it aloud
                        for c in codings
                    ):
                        dropped += 1
                        continue
                    if not _observation_used(res):
                        dropped += 1
                        continue
                elif type(rtype) is not str or rtype not in patient_types:
                    rec = self._unusual(res, rtype, line, fname, lineno, expected)
                    if rec is not None:
                        self._write(writes, rec)
                    continue
                key, ref_field = _subject_key(res)
                if key is None:
                    rid = res.get("id")
                    msg = "has no reference to a Patient, so it cannot be given to anyone"
                    self._write(writes, self._issue(
                        f"{fname}:{lineno}", rtype, rid if type(rid) is str else None,
                        f"{ref_field or 'subject'}.reference", msg, None,
                    ))  # fmt: skip
                    continue
                resources += 1
                if len(line) > DEEP_BRACKETS and _deep(line):
                    self._write(writes, (key, _RESOURCE | _TEXT, _dumps(line.decode())))
                    continue
                out = writes[crc32(key.encode()) % n] if n > 1 else writes[0]
                out(b"[%d,%b,%b]\n" % (_RESOURCE, dumps(key), line))
        stats.lines += lineno
        stats.observations_dropped += dropped
        stats.resources += resources

    @staticmethod
    def _write(writes: Sequence[Callable[[bytes], object]], rec: _Record) -> None:
        """Append one record (key, kind, payload[, where]) to its bucket; payload is bytes of
        JSON (the line itself) or, for an issue, a value to serialise."""
        key, kind, payload = rec[0], rec[1], rec[2]
        if kind == _ISSUE:
            payload = _dumps(payload)
        n = len(writes)
        out = writes[zlib.crc32(key.encode()) % n] if n > 1 else writes[0]
        label = _dumps(key) if len(rec) == 3 else _dumps([key, rec[3]])
        out(b"[%d,%b,%b]\n" % (kind, label, payload))

    def _issue(self, where: str, rtype: str, rid: str | None, field: str | None,
               message: str, key: str | None) -> tuple[str, int, Any]:  # fmt: skip
        self.stats.issues += 1
        issue = (rtype, rid, field, message, where, key)
        return (key or "", _ISSUE, issue)

    def _bad_json(
        self, line: bytes, exc: Exception, terminated: bool, where: str, expected: str | None
    ) -> tuple[str, int, Any]:
        if terminated:
            # The parser's message as for the line read with its newline (as it always was).
            try:
                _loads(line + b"\n")
            except _JSON_ERRORS as again:
                exc = again
        text = line.decode("utf-8", "replace")
        key: str | None = None
        if m := _PATIENT_REF.search(text):
            key = patient_key(m.group(1))
        elif m := _PATIENT_ID.search(text):
            key = m.group(1) or m.group(2)
        msg = f"line is not valid JSON ({str(exc).splitlines()[0]})"
        return self._issue(where, expected or "unknown", None, None, msg, key)

    def _unusual(
        self, res: Any, rtype: Any, line: bytes, fname: str, lineno: int, expected: str | None
    ) -> _Record | None:
        """A line that is not a clinical resource of a patient: a Patient, a Medication, a
        type the importer does not read, or not a FHIR resource at all."""
        where = f"{fname}:{lineno}"
        if type(rtype) is not str:
            # Not hashable when a list or object: it must not reach a set lookup.
            got = "no resourceType" if rtype is None else f"resourceType is {_json_kind(rtype)}"
            msg = f"line is not a FHIR resource ({got}; a resourceType string is required)"
            # When it still names its patient, that patient is known to be incomplete.
            key = _subject_key(res)[0] if type(res) is dict else None
            rid = res.get("id") if type(res) is dict and type(res.get("id")) is str else None
            return self._issue(where, expected or "unknown", rid, "resourceType", msg, key)
        rid = res.get("id")
        rid = rid if isinstance(rid, str) else None
        if rtype == "Patient":
            if not rid:
                return self._issue(where, rtype, None, "id", "Patient has no id", None)
            self.stats.patients += 1
            if len(line) > DEEP_BRACKETS and _deep(line):
                return (rid, _PATIENT | _TEXT, _dumps(line.decode()), where)
            return (rid, _PATIENT, line, where)
        if rtype == "Medication" and rid:
            self._meds.execute(
                "INSERT OR REPLACE INTO med VALUES (?, ?)", (f"Medication/{rid}", line)
            )
        return None

    # -- group ------------------------------------------------------------------------------
    @property
    def staging_dir(self) -> Path:
        """Folder of the bucket files (what :func:`read_bucket` needs, e.g. in a worker)."""
        return self._tmp

    def groups(self) -> Iterator[PatientGroup | LineIssue]:
        """Each patient's group, bucket by bucket (patients sorted by id within a bucket), and
        the issues that belong to no patient."""
        if not self._staged:
            self.stage()
        self._meds.commit()
        for i in range(self.n_buckets):
            yield from read_bucket(self._tmp, i)


def _json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type, with its article, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


#: Clinical resource types, as a set for the staging loop (Observation is tested first).
_CLINICAL_TYPES = frozenset(PATIENT_TYPES)


def _unused_observation() -> Callable[[bytes], bool] | None:
    from ldncare.fhir.prefilter import unused_observation  # imports this module

    return unused_observation


def _deep(line: bytes) -> bool:
    """Could this line nest too deeply to be parsed inside a bucket (see DEEP_BRACKETS)?"""
    return line.count(b"[") + line.count(b"{") > DEEP_BRACKETS


class _Medications:
    """Medication resources staged by :meth:`NdjsonExport.stage`, looked up by reference."""

    def __init__(self, folder: Path) -> None:
        self._db = sqlite3.connect(f"file:{folder / 'medications.db'}?mode=ro", uri=True)
        self.lookup = lru_cache(maxsize=4096)(self._lookup)
        #: No Medication resource in the export: nothing to attach.
        self.empty = self._db.execute("SELECT 1 FROM med LIMIT 1").fetchone() is None

    def _lookup(self, reference: str) -> Mapping[str, Any] | None:
        # ``Medication/x``, ``https://host/fhir/Medication/x``, either with ``/_history/3``
        # (parsed by fhir/references.py, as every path does): the export holds one version of
        # each Medication, looked up by its id. A conditional reference
        # (``Medication?identifier=system|value``, ``?code=``) is resolved by
        # :func:`ldncare.fhir.references.resolve` over the export's Medications that could
        # match it (:meth:`_candidates`), exactly as the Bundle reader resolves it.
        ref = parse_reference(reference)
        if ref is None or ref.resource_type != "Medication":
            return None
        if ref.kind == "conditional":
            index = index_resources((None, med) for med in self._candidates(ref.query))
            found = resolve(reference, index, resource_type="Medication")
            return None if found is None else dict(found)
        if ref.relative is None:
            return None
        row = self._db.execute("SELECT body FROM med WHERE ref = ?", (ref.relative,)).fetchone()
        return None if row is None else dict(_loads(row[0]))

    def _candidates(self, query: Sequence[tuple[str, str]]) -> Iterator[Mapping[str, Any]]:
        """Every staged Medication that could match a conditional reference's ``query``: those
        whose line holds each searched value (the part after ``|``) as written, so a superset
        of the matches (the resolver then decides, and wants exactly one). A value JSON would
        escape (a quote, a backslash, non-ASCII) may be written escaped in the line: then
        every Medication is a candidate."""
        needles = [value.rpartition("|")[2] for _, value in query]
        if not needles or any(not n or not n.isascii() or '"' in n or "\\" in n or "/" in n
                              for n in needles):  # fmt: skip
            rows = self._db.execute("SELECT body FROM med")
        else:
            where = " AND ".join("instr(body, ?) > 0" for _ in needles)
            rows = self._db.execute(
                f"SELECT body FROM med WHERE {where}",  # only "?" placeholders are formatted in
                [_dumps(n) for n in needles],
            )
        for (body,) in rows:
            med = _loads(body)
            if type(med) is dict:
                yield med

    def attach(self, group: PatientGroup) -> None:
        if self.empty:
            return
        for res in group.resources:
            ref = res.get("medicationReference")
            if isinstance(ref, Mapping) and isinstance(ref.get("reference"), str):
                target = ref["reference"]
                if not target.startswith("#"):
                    med = self.lookup(target)
                    entry = {"resource": med}
                    if med is not None and entry not in group.medications:
                        group.medications.append(entry)

    def close(self) -> None:
        self._db.close()


def _group(records: list[bytes]) -> tuple[dict[str, PatientGroup], list[LineIssue]]:
    """The bucket's records grouped by patient, and the issues that belong to no patient."""
    groups: dict[str, PatientGroup] = {}
    loose: list[LineIssue] = []
    loads = _loads
    for record in records:
        kind, key, payload = loads(record)
        if kind == _RESOURCE:
            group = groups.get(key)
            if group is None:
                group = groups[key] = PatientGroup(key)
            group.resources.append(payload)
            continue
        if kind & _TEXT:
            kind &= ~_TEXT
            payload = _loads(payload)
        if kind == _ISSUE:
            issue = LineIssue(*payload)
            if key:
                groups.setdefault(key, PatientGroup(key)).issues.append(issue)
            else:
                loose.append(issue)
            continue
        where = ""
        if kind == _PATIENT:
            key, where = key
        group = groups.get(key)
        if group is None:
            group = groups[key] = PatientGroup(key)
        if kind == _PATIENT:
            if group.patient is None:
                group.patient_where = where
                group.patient = payload
            elif payload != group.patient:
                # Two different records of one patient: which one is current cannot be told,
                # so neither is imported. An identical copy (an export written twice over) is
                # harmless and read once, as in a Bundle.
                group.issues.append(LineIssue(
                    "Patient", key, "id",
                    f"appears twice in the export with different content "
                    f"({group.patient_where} and {where}): which record is current cannot be "
                    "told, so neither is imported; keep one Patient line per patient",
                    where, key,
                ))  # fmt: skip
        else:
            group.resources.append(payload)
    return groups, loose


def read_bucket(folder: Path, index: int) -> Iterator[PatientGroup | LineIssue]:
    """The patient groups of one bucket file (sorted by patient id) and its patient-less
    issues; the bucket file is deleted once read. Safe to call in another process."""
    path = Path(folder) / f"bucket-{index:05d}.bin"
    with path.open("rb") as fh:
        data = fh.read()
    os.unlink(path)
    records = data.split(b"\n")  # one record per line: [kind, key, payload]
    del data
    records.pop()
    # Parsing builds a whole bucket of containers that stay alive, which makes the cycle
    # collector run again and again over them (about a third of the time spent here) for
    # nothing: parsed JSON has no reference cycles. It is paused for this loop only (before
    # the first yield), and never re-enabled if it was off.
    collecting = gc.isenabled()
    gc.disable()
    try:
        groups, loose = _group(records)
    finally:
        if collecting:
            gc.enable()
    del records
    yield from loose
    meds = _Medications(Path(folder))
    try:
        for key in sorted(groups):
            group = groups.pop(key)
            meds.attach(group)
            yield group
    finally:
        meds.close()
