"""Stream a FHIR Bulk Data export (``$export``: one NDJSON file per resource type) per patient.

An export holds every resource of a type in one file (``Patient.ndjson``,
``MedicationRequest.ndjson``, ... possibly ``.ndjson.gz`` or split as ``Observation_2.ndjson``),
in no useful order. The importer needs each patient's resources together, so this module
groups them without holding the export in memory:

1. **Stage**: every line of the files we use is parsed once, keyed by its patient (the id of a
   Patient, the ``subject``/``patient`` reference of the others) and appended, as a compact
   ``marshal`` record, to one of K bucket files chosen by a hash of that key. K grows with the
   size of the export, so a bucket stays around :data:`BUCKET_BYTES` whatever N is.
   ``Medication`` resources (targets of ``medicationReference``) go to a small SQLite table.
   Observations whose codes are not ones the reader uses (labs, weight, height, pregnancy) are
   dropped here, which is most of a real export.
2. **Group**: one bucket at a time is read back and grouped in memory
   (:func:`read_bucket`, which a worker process can run too); each patient is yielded as a
   :class:`PatientGroup`. Memory is bounded by one bucket, not by N.

A line that is not JSON, or a resource without a patient reference, becomes a
:class:`LineIssue`; when the broken line still shows which patient it belonged to, the issue is
attached to that patient's group, so the importer can refuse to write a patient it knows is
incomplete.
"""

from __future__ import annotations

import gzip
import json
import marshal
import os
import re
import shutil
import sqlite3
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from ldncare.fhir.patient_bundle import BODY_HEIGHT, BODY_WEIGHT, LAB_LOINC, PREGNANCY_STATUS

try:  # orjson parses several times faster; the standard library is the fallback.
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
    _JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, UnicodeDecodeError)
except ImportError:  # pragma: no cover - orjson is a dependency, kept optional for vendoring
    _loads = json.loads
    _JSON_ERRORS = (json.JSONDecodeError, UnicodeDecodeError)

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
#: A gzip'd NDJSON file is assumed to expand this much when sizing the buckets.
GZIP_RATIO = 8
_TYPE_TOKEN = re.compile(r"[A-Za-z]+")
# Only used on lines that failed to parse, to tell which patient lost a resource.
_PATIENT_REF = re.compile(r'"(?:subject|patient)"\s*:\s*\{[^{}]*?"reference"\s*:\s*"([^"]+)"')
_PATIENT_ID = re.compile(r'"resourceType"\s*:\s*"Patient".*?"id"\s*:\s*"([^"]+)"')

# Record kinds in the bucket files.
_PATIENT, _RESOURCE, _ISSUE = 0, 1, 2

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


def patient_key(reference: str) -> str | None:
    """``Patient/123``, ``https://x/fhir/Patient/123/_history/2`` or ``urn:uuid:123`` -> 123."""
    if reference.startswith("urn:uuid:"):
        return reference[9:] or None
    parts = reference.split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "Patient" and parts[i + 1]:
            return parts[i + 1]
    return None


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
    """NDJSON files of ``directory`` the importer reads (Patient first) and those it ignores."""
    if not directory.is_dir():
        from ldncare.errors import InvalidInput

        raise InvalidInput(f"{directory} is not a directory of NDJSON files")
    used: list[Path] = []
    ignored: list[Path] = []
    for path in sorted(directory.iterdir()):
        if not path.is_file() or not path.name.endswith((".ndjson", ".ndjson.gz", ".jsonl")):
            continue
        (used if resource_type_of(path) else ignored).append(path)
    used.sort(key=lambda p: (resource_type_of(p) != "Patient", p.name))
    return used, ignored


def _open(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _subject_key(resource: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(patient key, field) of a clinical resource; key None when missing or not a Patient."""
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
        if coding.get("code") in USED_OBSERVATION_CODES:
            return True
    return False


class NdjsonExport:
    """A Bulk Data export being read; use as a context manager (it owns a staging folder)."""

    def __init__(self, directory: Path, *, workdir: Path | None = None) -> None:
        self.directory = Path(directory)
        self.files, self.ignored = export_files(self.directory)
        self._tmp = Path(tempfile.mkdtemp(prefix="ldncare-ndjson-", dir=workdir))
        self.stats = StageStats(
            files=[p.name for p in self.files], ignored_files=[p.name for p in self.ignored]
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
        stats = self.stats
        n = self.n_buckets
        dump = marshal.dumps
        try:
            for path in self.files:
                expected = resource_type_of(path)
                with _open(path) as fh:
                    raw_fh = fh if not path.name.endswith(".gz") else None
                    for lineno, line in enumerate(fh, start=1):
                        stats.lines += 1
                        rec = self._record(line, path.name, lineno, expected)
                        if rec is not None:
                            key, kind, payload = rec
                            blob = dump((key, kind, payload))
                            out = buckets[zlib.crc32(key.encode()) % n] if n > 1 else buckets[0]
                            out.write(len(blob).to_bytes(4, "little"))
                            out.write(blob)
                        if progress is not None and lineno % 4096 == 0:
                            pos = raw_fh.tell() if raw_fh is not None else done
                            progress("stage", done + (pos if raw_fh is not None else 0), total)
                done += path.stat().st_size
                stats.bytes_read = done
                if progress is not None:
                    progress("stage", done, total)
        finally:
            for b in buckets:
                b.close()
        self._meds.commit()
        self._staged = True
        return stats

    def _issue(self, where: str, rtype: str, rid: str | None, field: str | None,
               message: str, key: str | None) -> tuple[str, int, Any]:  # fmt: skip
        self.stats.issues += 1
        issue = (rtype, rid, field, message, where, key)
        return (key or "", _ISSUE, issue)

    def _record(
        self, line: bytes, fname: str, lineno: int, expected: str | None
    ) -> tuple[str, int, Any] | None:
        where = f"{fname}:{lineno}"
        if not line.strip():
            return None
        try:
            resource = _loads(line)
        except _JSON_ERRORS as exc:
            text = line.decode("utf-8", "replace")
            m = _PATIENT_REF.search(text) or _PATIENT_ID.search(text)
            key = (patient_key(m.group(1)) if m.re is _PATIENT_REF else m.group(1)) if m else None
            msg = f"line is not valid JSON ({str(exc).splitlines()[0]})"
            return self._issue(where, expected or "unknown", None, None, msg, key)
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            msg = "line is not a FHIR resource (no resourceType)"
            return self._issue(where, expected or "unknown", None, "resourceType", msg, None)
        rtype = resource["resourceType"]
        rid = resource.get("id")
        rid = rid if isinstance(rid, str) else None
        if rtype == "Patient":
            if not rid:
                return self._issue(where, rtype, None, "id", "Patient has no id", None)
            self.stats.patients += 1
            return (rid, _PATIENT, resource)
        if rtype == "Medication":
            if rid:
                self._meds.execute(
                    "INSERT OR REPLACE INTO med VALUES (?, ?)",
                    (f"Medication/{rid}", marshal.dumps(resource)),
                )
            return None
        if rtype not in PATIENT_TYPES:
            return None
        if rtype == "Observation" and not _observation_used(resource):
            self.stats.observations_dropped += 1
            return None
        key, ref_field = _subject_key(resource)
        if key is None:
            field_name = ref_field or "subject"
            msg = "has no reference to a Patient, so it cannot be given to anyone"
            return self._issue(where, rtype, rid, f"{field_name}.reference", msg, None)
        self.stats.resources += 1
        return (key, _RESOURCE, resource)

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


class _Medications:
    """Medication resources staged by :meth:`NdjsonExport.stage`, looked up by reference."""

    def __init__(self, folder: Path) -> None:
        self._db = sqlite3.connect(f"file:{folder / 'medications.db'}?mode=ro", uri=True)
        self.lookup = lru_cache(maxsize=4096)(self._lookup)

    def _lookup(self, reference: str) -> Mapping[str, Any] | None:
        key = reference if reference.startswith("Medication/") else None
        if key is None and "/Medication/" in reference:
            key = "Medication/" + reference.rsplit("/Medication/", 1)[1].split("/")[0]
        if key is None:
            return None
        row = self._db.execute("SELECT body FROM med WHERE ref = ?", (key,)).fetchone()
        return None if row is None else dict(marshal.loads(row[0]))

    def attach(self, group: PatientGroup) -> None:
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


def read_bucket(folder: Path, index: int) -> Iterator[PatientGroup | LineIssue]:
    """The patient groups of one bucket file (sorted by patient id) and its patient-less
    issues; the bucket file is deleted once read. Safe to call in another process."""
    path = Path(folder) / f"bucket-{index:05d}.bin"
    with path.open("rb") as fh:
        data = fh.read()
    os.unlink(path)
    loads = marshal.loads
    groups: dict[str, PatientGroup] = {}
    loose: list[LineIssue] = []
    pos, end = 0, len(data)
    while pos < end:
        size = int.from_bytes(data[pos : pos + 4], "little")
        key, kind, payload = loads(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
        if kind == _ISSUE:
            issue = LineIssue(*payload)
            if key:
                groups.setdefault(key, PatientGroup(key)).issues.append(issue)
            else:
                loose.append(issue)
            continue
        group = groups.get(key)
        if group is None:
            group = groups[key] = PatientGroup(key)
        if kind == _PATIENT:
            if group.patient is not None:
                group.issues.append(
                    LineIssue("Patient", key, "id", "appears twice in the export", "", key)
                )
            group.patient = payload
        else:
            group.resources.append(payload)
    del data
    yield from loose
    meds = _Medications(Path(folder))
    try:
        for key in sorted(groups):
            group = groups.pop(key)
            meds.attach(group)
            yield group
    finally:
        meds.close()
