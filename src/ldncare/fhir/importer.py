"""Import FHIR R4 Bundles and Bulk Data NDJSON exports into the store.

Each patient is read with :func:`~ldncare.fhir.patient_bundle.patient_from_bundle` (the one FHIR
reader of ldncare) and written with its normalised population facts
(:mod:`ldncare.store.population`) in the same transaction as its audit row.

Rules:

- **Never a partial patient.** A patient one of whose resources is invalid (or whose NDJSON line
  is corrupt) is not written at all: leaving out, say, an unreadable opioid prescription would
  make the record look safe for LDN. Every invalid resource is reported as (resource type, id,
  field, message) and the import goes on with the next patient.
- **Idempotent.** Patients are matched by their FHIR Patient id (``patients.external_id``). A
  re-import of changed data updates the patient (a new assessment snapshot keeps the history,
  and an audit row says so); of unchanged data, it writes nothing. The facts derived from the
  snapshot can move while the record does not: kidney function depends on the age on the
  import's ``as_of`` date, and the drug and condition classes, doses and review dates on the
  shipped evidence and vocabulary. A re-import a year later or under a newer evidence base
  then rewrites those facts only ("facts refreshed" in the report): the record was not
  updated, so it gets no new assessment snapshot and no audit "update" row.
- **Fast.** Patients are written in batches (one transaction per batch, multi-row inserts);
  if a batch fails, its patients are retried one transaction each, so one bad patient cannot
  take others down with it, and each patient stays atomic either way. On PostgreSQL a batch
  is written by a writer thread while the next one is read and prepared (the server works on
  its own core meanwhile), new patient ids are taken from the sequence in one round trip, and
  the assessment and audit rows are built by the server from the patient rows just copied.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import re
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Table, bindparam, delete, update
from sqlalchemy.exc import SQLAlchemyError

from ldncare.core.diary import DiaryEntry
from ldncare.core.patient import (
    Patient,
)
from ldncare.errors import InvalidInput
from ldncare.fhir.ndjson import (
    PATIENT_TYPES,
    LineIssue,
    NdjsonExport,
    PatientGroup,
    Progress,
    read_bucket,
)
from ldncare.fhir.patient_bundle import patient_from_bundle
from ldncare.fhir.references import index_resources, patient_key, resolve
from ldncare.fhir.tags import diary_entries, is_ldncare_output, plan_contracts
from ldncare.patient_file import check_birth_date
from ldncare.store import facts as _facts_module
from ldncare.store.external_id import is_valid as is_valid_external_id
from ldncare.store.external_id import unusable
from ldncare.store.facts import (
    _bulk_insert,
    _Encoding,
    _Facts,
    _insert_facts,
    _marks,
    _Prepared,
)
from ldncare.store.models import PatientRow
from ldncare.store.population import FACT_TABLES, pop_patient
from ldncare.store.repository import store_imported_diary, store_imported_plans

_ldn_dosing = _facts_module._ldn_dosing

#: The FACTS_VERSION hashed into the one-part hashes written before the hash had two halves.
_LEGACY_FACTS_VERSION = "1"
#: Patients per transaction. Measured at N = 100k (bench/bench_import_screen.py): PostgreSQL
#: COPY gains about 3 % from 500 to 2,000 (4,880-4,930 -> 5,000-5,210 patients/s), SQLite is
#: unchanged, memory stays flat; a failing batch is retried one patient per transaction.
DEFAULT_BATCH = 2000

_patients: Table = PatientRow.__table__  # type: ignore[assignment]
_ENTRY = re.compile(r"^entry\[(\d+)\]\.resource\.?(.*)$")
# A dose in milligrams: "4.5 mg", "1.5 MG" -- but not a concentration such as "1 MG/ML".


@dataclass(frozen=True)
class ImportIssue:
    """A resource (or line) that was not imported, and why."""

    resource_type: str
    resource_id: str | None
    field: str | None
    message: str
    #: FHIR id of the patient it belonged to, when known (that patient was skipped).
    patient_id: str | None = None
    #: ``file:line`` for NDJSON, ``entry[i]`` for Bundles.
    where: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "field": self.field,
            "message": self.message,
            "patient_id": self.patient_id,
            "where": self.where,
        }


@dataclass
class ImportReport:
    """What an import did. Medication, condition and observation counts cover every patient
    read successfully (imported, updated, facts refreshed or unchanged)."""

    patients_imported: int = 0
    #: Already in the store with a different record: the record was updated (new assessment
    #: snapshot, audit "update" row) and its facts rewritten.
    patients_updated: int = 0
    #: Already in the store with the same record, but facts derived from it moved (kidney
    #: function from the age on ``as_of``, classes, doses or review dates from a newer
    #: evidence base): those facts were rewritten; the record, its assessment history and the
    #: audit log were not touched.
    patients_facts_refreshed: int = 0
    #: Already in the store, record and facts the same: nothing was written.
    patients_unchanged: int = 0
    patients_skipped: int = 0
    medications_total: int = 0
    #: Active on the import's ``as_of`` date (MedicationUse.is_active).
    medications_active: int = 0
    conditions: int = 0
    conditions_active: int = 0
    #: Lab results kept (eGFR, creatinine, liver tests, ...).
    observations: int = 0
    errors: list[ImportIssue] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    bytes_read: int = 0
    seconds: float = 0.0

    @property
    def patients_read(self) -> int:
        return (
            self.patients_imported
            + self.patients_updated
            + self.patients_facts_refreshed
            + self.patients_unchanged
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "patients": {
                "imported": self.patients_imported,
                "updated": self.patients_updated,
                "facts_refreshed": self.patients_facts_refreshed,
                "unchanged": self.patients_unchanged,
                "skipped": self.patients_skipped,
            },
            "medications": {"total": self.medications_total, "active": self.medications_active},
            "conditions": {"total": self.conditions, "active": self.conditions_active},
            "observations": self.observations,
            "errors": [e.to_json() for e in self.errors],
            "files": self.files,
            "ignored_files": self.ignored_files,
            "bytes_read": self.bytes_read,
            "seconds": round(self.seconds, 3),
        }


# --- reading one patient -----------------------------------------------------------------------


def _split_error(exc: InvalidInput, resources: Sequence[Mapping[str, Any]]) -> ImportIssue:
    """InvalidInput of the reader -> (type, id, field, message) of the resource it names."""
    target: Mapping[str, Any] = resources[0]
    fld = exc.field
    m = _ENTRY.match(exc.field or "")
    if m:
        index = int(m.group(1))
        if index < len(resources):
            target = resources[index]
        fld = m.group(2) or None
    rtype = str(target.get("resourceType"))
    rid = target.get("id") if isinstance(target.get("id"), str) else None
    message = exc.message
    label = f"{rtype}/{rid}: " if rid else f"{rtype} without id: "
    if message.startswith(label):
        message = message[len(label) :]
    elif rid and message.startswith(f"Patient/{rid}: "):
        message = message[len(f"Patient/{rid}: ") :]
    if fld and message.startswith(fld + " "):
        message = message[len(fld) + 1 :]
    return ImportIssue(rtype, rid, fld, message)


def _bundle(
    resources: Iterable[Mapping[str, Any]], medications: Iterable[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """A collection Bundle of one patient's resources plus Medication entries (with fullUrl)."""
    entries: list[Mapping[str, Any]] = [{"resource": r} for r in resources]
    entries.extend(medications)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _diagnose(
    patient: Mapping[str, Any],
    resources: Sequence[Mapping[str, Any]],
    medications: Sequence[Mapping[str, Any]],
    first: InvalidInput,
) -> list[ImportIssue]:
    """Every invalid resource of a patient whose record failed to read (error path only)."""
    issues: list[ImportIssue] = []
    meds = [m["resource"] for m in medications]
    try:
        patient_from_bundle(_bundle([patient]))
    except InvalidInput as exc:
        issues.append(_split_error(exc, [patient]))
    for res in resources:
        try:
            patient_from_bundle(_bundle([patient, res], medications))
        except InvalidInput as exc:
            issue = _split_error(exc, [patient, res, *meds])
            if issue not in issues:
                issues.append(issue)
    return issues or [_split_error(first, [patient, *resources, *meds])]


def read_group(group: PatientGroup) -> Patient | list[ImportIssue]:
    """The core Patient of one group, or the issues that stop it from being imported."""
    pid = group.key
    if group.patient is None:
        issues = [_line_issue(i) for i in group.issues]
        if group.resources:
            issues.insert(0, _without_patient(group))
        return issues
    if group.issues:
        issues = [_line_issue(i) for i in group.issues]
        return [_refusal(group), *issues]
    unresolved = _unresolved_medications(pid, group.resources, group.medications)
    try:
        patient = patient_from_bundle(_bundle([group.patient, *group.resources], group.medications))
    except InvalidInput as exc:
        return [
            ImportIssue(i.resource_type, i.resource_id, i.field, i.message, pid, i.where)
            for i in _diagnose(group.patient, group.resources, group.medications, exc)
        ] + unresolved
    if refused := _refused_patient(patient):
        return [refused, *unresolved]
    return unresolved or patient


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


def _without_patient(group: PatientGroup) -> ImportIssue:
    """One issue for all the resources of a patient whose Patient record is missing or could
    not be read: one issue per resource would take gigabytes for a large export that lacks
    its Patient file."""
    n = len(group.resources)
    first = group.resources[0]
    fid = first.get("id")
    example = f"{first.get('resourceType')}" + (f"/{fid}" if isinstance(fid, str) else "")
    if n == 1:
        what = f"the resource that refers to it ({example}) was not imported"
    else:
        counts = Counter(str(r.get("resourceType")) for r in group.resources)
        kinds = ", ".join(f"{k} {t}" for t, k in sorted(counts.items()))
        what = f"the {n} resources that refer to it ({kinds}; e.g. {example}) were not imported"
    if any(i.resource_type == "Patient" for i in group.issues):
        why = "its Patient line could not be read"
    else:
        why = "is not in the export (no Patient resource has this id)"
    return ImportIssue("Patient", group.key, None, f"{why}, so {what}", patient_id=group.key)


def _refusal(group: PatientGroup) -> ImportIssue:
    """The issue that says why a patient whose own records were read was not imported."""
    dup = sum(1 for i in group.issues if i.resource_type == "Patient" and i.field == "id")
    rest = len(group.issues) - dup
    reasons: list[str] = []
    if dup:
        reasons.append("its Patient appears more than once")
    if rest:
        bundled = all(i.where.startswith("entry[") for i in group.issues)
        what = "Bundle entries could not be used" if bundled else "lines could not be read"
        reasons.append(f"{rest} of its {what}")
    message = f"not imported: {' and '.join(reasons)}"
    return ImportIssue("Patient", group.key, None, message, patient_id=group.key)


def _unresolved_medications(
    pid: str, resources: Sequence[Mapping[str, Any]], medications: Sequence[Mapping[str, Any]]
) -> list[ImportIssue]:
    """Issues for the medication orders/statements whose drug cannot be told.

    The reader keeps a ``medicationReference`` that matches no Medication resource as
    "unresolved medication ..." with no code: a drug of no class, so an unresolved opioid
    would make the record look safe for LDN. With a ``display`` the drug is still named (and
    classified from it); without one, the patient is not imported (never a partial patient).
    Malformed references are left to the reader, which reports them.
    """
    known = index_resources(
        (e.get("fullUrl"), e["resource"])
        for e in medications
        if isinstance(e.get("resource"), Mapping)
    )
    issues: list[ImportIssue] = []
    for res in resources:
        ref_obj = res.get("medicationReference")
        if (
            res.get("resourceType") not in ("MedicationRequest", "MedicationStatement")
            or "medicationCodeableConcept" in res
            or not isinstance(ref_obj, Mapping)
            or ("meta" in res and is_ldncare_output(res))
        ):
            continue
        ref, display = ref_obj.get("reference"), ref_obj.get("display")
        if not isinstance(ref, str) or not ref or (isinstance(display, str) and display.strip()):
            continue
        found = resolve(ref, known, source=res, resource_type="Medication") is not None
        if ref.startswith("#"):
            why = "no contained Medication of this resource has that id"
        else:
            why = "it matches no Medication resource of the import"
        if not found:
            rid = res.get("id")
            issues.append(ImportIssue(
                str(res["resourceType"]), rid if isinstance(rid, str) else None,
                "medicationReference.reference",
                f"{ref} cannot be resolved ({why}) and the reference has no display, so "
                "the medicine is unknown; include the Medication resource, or name the "
                "medicine in medicationReference.display",
                pid,
            ))  # fmt: skip
    return issues


def _line_issue(issue: LineIssue) -> ImportIssue:
    return ImportIssue(
        issue.resource_type, issue.resource_id, issue.field, issue.message,
        issue.patient_key, issue.where or None,
    )  # fmt: skip


# --- writing -----------------------------------------------------------------------------------


def _same_record(stored: str, p: _Prepared) -> bool:
    """Whether ``stored`` (a ``source_hash``) was taken from the same snapshot as ``p``'s; its
    facts may differ."""
    if ":" in stored:
        return stored.partition(":")[0] == p.digest.partition(":")[0]
    # A one-part hash written by an earlier release: of FACTS_VERSION + the snapshot, or of
    # the snapshot followed by its facts. Recomputed only for these rows, and once: the facts
    # rewrite stores the two-part hash. A one-part hash of a snapshot *and* of facts that have
    # moved since cannot tell which of the two changed; that patient is updated once.
    version = _LEGACY_FACTS_VERSION
    if stored == hashlib.sha256((version + p.snapshot).encode()).hexdigest():
        return True
    h = hashlib.sha256(f"{version}\n{p.snapshot}\n".encode())
    h.update(orjson.dumps((p.pop[:-2], p.meds, p.conds, p.labs)))
    return stored == h.hexdigest()


@dataclass
class _Written:
    """What writing one batch did; merged into the report by the importing thread."""

    counts: list[int]
    #: Patients written (or found unchanged), for the medication/condition/lab counts.
    done: list[_Prepared]
    errors: list[ImportIssue] = field(default_factory=list)


class _Writer:
    """Collects prepared patients and writes them in batches, one patient never split.

    With ``background`` (PostgreSQL), a full batch is written by one writer thread while the
    caller reads and prepares the next one: the database works on its own core while this
    process parses, instead of each waiting for the other. At most one batch is in flight,
    and a batch starts only after the previous one committed, so batches are written in
    order (the later record of a patient still wins). :meth:`close` writes what is left and
    waits for it; the report is complete only after it.
    """

    def __init__(
        self, engine: Engine, actor: str, as_of: date, report: ImportReport, source: str,
        batch_size: int, *, background: bool = False,
    ) -> None:  # fmt: skip
        self.engine = engine
        self.actor = actor
        self.report = report
        self.source = source
        self.batch_size = max(1, batch_size)
        dialect = engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise InvalidInput(f"FHIR import supports SQLite and PostgreSQL, not {dialect}")
        self.enc = _Encoding(dialect)
        self.facts = _Facts(as_of, self.enc)
        self.pending: list[_Prepared] = []
        self.pending_ids: set[str] = set()
        self.stamp: Any = None
        self._thread: ThreadPoolExecutor | None = (
            ThreadPoolExecutor(1, thread_name_prefix="ldncare-import-writer")
            if background
            else None
        )
        self._inflight: Future[_Written] | None = None
        # COPY runs on the driver's connection, so its errors arrive unwrapped.
        self._db_errors: tuple[type[BaseException], ...] = (
            SQLAlchemyError,
            engine.dialect.loaded_dbapi.Error,
        )

    def add(self, patient: Patient) -> None:
        self.add_prepared(self.facts.prepare(patient, self.enc.stamp(datetime.now(UTC))))

    def add_prepared(self, prepared: _Prepared) -> None:
        if prepared.pid in self.pending_ids:
            self.flush()  # the same patient twice: the later record wins, in order
        self.pending.append(prepared)
        self.pending_ids.add(prepared.pid)
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Write the pending patients: now, or (``background``) once the batch before them is
        committed, while the caller goes on."""
        batch, self.pending, self.pending_ids = self.pending, [], set()
        if not batch:
            return
        if self._thread is None:
            self._merge(self._write_batch(batch))
            return
        self._wait()
        self._inflight = self._thread.submit(self._write_batch, batch)

    def close(self) -> None:
        """Write what is pending and wait until every batch is committed and counted."""
        try:
            self.flush()
            self._wait()
        finally:
            self.stop()

    def stop(self) -> None:
        """Wait for the writer thread to end (idempotent; what is still pending is dropped)."""
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None

    def _wait(self) -> None:
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            self._merge(inflight.result())

    def _write_batch(self, batch: list[_Prepared]) -> _Written:
        """One transaction for the batch; if it fails, one transaction per patient. Touches
        no shared state (it may run in the writer thread)."""
        try:
            with self.engine.begin() as conn:
                return _Written(self._write(conn, batch), batch)
        except self._db_errors:
            pass
        out = _Written([0, 0, 0, 0], [])
        for one in batch:
            try:
                with self.engine.begin() as conn:
                    c = self._write(conn, [one])
            except self._db_errors as exc:
                first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                out.errors.append(
                    ImportIssue("Patient", one.pid, None,
                                f"not imported: database error: {first}", one.pid)
                )  # fmt: skip
                continue
            out.counts = [a + b for a, b in zip(out.counts, c, strict=True)]
            out.done.append(one)
        return out

    def _merge(self, written: _Written) -> None:
        r = self.report
        r.errors.extend(written.errors)
        r.patients_skipped += len(written.errors)
        self._count(written.done)
        r.patients_imported += written.counts[0]
        r.patients_updated += written.counts[1]
        r.patients_facts_refreshed += written.counts[2]
        r.patients_unchanged += written.counts[3]

    def _count(self, batch: Sequence[_Prepared]) -> None:
        r = self.report
        for p in batch:
            meds, meds_active, conds, conds_active, labs = p.counts
            r.medications_total += meds
            r.medications_active += meds_active
            r.conditions += conds
            r.conditions_active += conds_active
            r.observations += labs

    def _write(self, conn: Connection, batch: Sequence[_Prepared]) -> list[int]:
        pg = not self.enc.sqlite
        ids = [p.pid for p in batch]
        # Raw SQL: an IN list of 2,000 bound values compiled by SQLAlchemy cost more than the
        # query. PostgreSQL takes the ids as one array parameter.
        existing = {
            ext: (pk, digest)
            for pk, ext, digest in conn.exec_driver_sql(
                "SELECT p.id, p.external_id, f.source_hash FROM patients p "
                "LEFT OUTER JOIN pop_patient f ON f.patient_id = p.id "
                + (
                    "WHERE p.external_id = ANY(%s)"
                    if pg
                    else f"WHERE p.external_id IN ({_marks(ids)})"
                ),
                (ids,) if pg else tuple(ids),
            )
        }
        now = self.enc.stamp(datetime.now(UTC))
        new: list[_Prepared] = []
        changed: list[_Prepared] = []  # another record: update it, and its facts
        refreshed: list[_Prepared] = []  # the same record, facts moved: rewrite the facts only
        for p in batch:
            if p.pid not in existing:
                new.append(p)
                continue
            stored = existing[p.pid][1]
            if stored == p.digest:
                continue
            if stored is not None and _same_record(stored, p):
                refreshed.append(p)
            else:
                changed.append(p)
        unchanged = len(batch) - len(new) - len(changed) - len(refreshed)
        created: dict[str, int] = {}
        if new:
            day = self.enc.day
            if pg:
                # Take the new ids from the table's sequence up front (one round trip), so
                # that the patients are copied with their ids and need no read-back.
                keys = [pk for (pk,) in conn.exec_driver_sql(
                    "SELECT nextval(pg_get_serial_sequence('patients', 'id')) "
                    "FROM generate_series(1, %s)", (len(new),),
                )]  # fmt: skip
                created = {p.pid: pk for p, pk in zip(new, keys, strict=True)}
                _bulk_insert(conn, "patients+id", [
                    (created[p.pid], None, p.pid, p.name, p.birth_date, p.snapshot, now,
                     self.actor)
                    for p in new
                ])  # fmt: skip
            else:
                _bulk_insert(conn, "patients", [
                    (None, p.pid, p.name, day(p.birth_date), p.snapshot, now, self.actor)
                    for p in new
                ])  # fmt: skip
                new_ids = [p.pid for p in new]
                created = {
                    ext: pk
                    for ext, pk in conn.exec_driver_sql(
                        "SELECT external_id, id FROM patients "
                        f"WHERE external_id IN ({_marks(new_ids)})",
                        tuple(new_ids),
                    )
                }
        if changed:
            conn.execute(
                update(_patients)
                .where(_patients.c.id == bindparam("b_id"))
                .values(
                    name=bindparam("b_name"),
                    birth_date=bindparam("b_birth"),
                    snapshot=bindparam("b_snapshot"),
                ),
                [
                    {
                        "b_id": existing[p.pid][0],
                        "b_name": p.name,
                        "b_birth": p.birth_date,
                        "b_snapshot": orjson.loads(p.snapshot),
                    }
                    for p in changed
                ],
            )
        stale = [existing[p.pid][0] for p in (*changed, *refreshed)]
        if stale:
            for table in (*FACT_TABLES, pop_patient):
                conn.execute(delete(table).where(table.c.patient_id.in_(stale)))
        written = [(created[p.pid], p, "create") for p in new] + [
            (existing[p.pid][0], p, "update") for p in changed
        ]
        if written:
            self._insert_records(conn, written, now)
        facts = [(pk, p) for pk, p, _ in written]
        facts += [(existing[p.pid][0], p) for p in refreshed]
        if facts:
            _insert_facts(conn, facts)
        for p in batch:
            if p.plans or p.diary:
                pk = created[p.pid] if p.pid in created else existing[p.pid][0]
                # The plans first: a diary day's flags are those of the latest plan.
                store_imported_plans(conn, pk, p.plans, actor=self.actor, source=self.source)
                store_imported_diary(conn, pk, p.diary, actor=self.actor, source=self.source)
        return [len(new), len(changed), len(refreshed), unchanged]

    def _insert_records(
        self, conn: Connection, written: list[tuple[int, _Prepared, str]], now: Any
    ) -> None:
        """The assessment snapshot and the audit row of each patient created or updated."""
        actor = self.actor
        if self.enc.sqlite:
            _bulk_insert(conn, "assessments", [
                (pk, p.snapshot, now, actor) for pk, p, _ in written
            ])  # fmt: skip
            _bulk_insert(conn, "audit_log", [
                (now, actor, action, "patient", str(pk),
                 orjson.dumps({"external_id": p.pid, "source": self.source}).decode())
                for pk, p, action in written
            ])  # fmt: skip
        else:
            # The assessment snapshot is the patient row's snapshot just written (copied by
            # the server, not sent and parsed a second time); the audit detail is built from
            # the same row. Same rows, in the same order, as one COPY each would give.
            keys = [pk for pk, _, _ in written]
            conn.exec_driver_sql(
                "INSERT INTO assessments (patient_id, snapshot, created_at, created_by) "
                "SELECT p.id, p.snapshot, %s, %s "
                "FROM unnest(%s::integer[]) WITH ORDINALITY AS u(id, n) "
                "JOIN patients p ON p.id = u.id ORDER BY u.n",
                (now, actor, keys),
            )
            conn.exec_driver_sql(
                "INSERT INTO audit_log (at, who, action, entity, entity_id, detail) "
                "SELECT %s, %s, u.action, 'patient', u.id::text, "
                "jsonb_build_object('external_id', p.external_id, 'source', %s::text) "
                "FROM unnest(%s::integer[], %s::text[]) WITH ORDINALITY AS u(id, action, n) "
                "JOIN patients p ON p.id = u.id ORDER BY u.n",
                (now, actor, self.source, keys, [action for _, _, action in written]),
            )


# --- public API --------------------------------------------------------------------------------


def _bundle_groups(bundle: Any) -> tuple[list[PatientGroup], list[ImportIssue]]:
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        found = bundle.get("resourceType") if isinstance(bundle, Mapping) else type(bundle)
        raise InvalidInput(f"expected a FHIR Bundle, got {found!r}", field="resourceType")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise InvalidInput("Bundle.entry must be a list", field="entry")
    patients: list[tuple[int, Any, Mapping[str, Any]]] = []
    medications: list[Mapping[str, Any]] = []
    clinical: list[tuple[int, Mapping[str, Any]]] = []
    issues: list[ImportIssue] = []
    for i, entry in enumerate(entries):
        res = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(res, Mapping) or not isinstance(res.get("resourceType"), str):
            issues.append(ImportIssue("unknown", None, f"entry[{i}].resource",
                                      "is not a FHIR resource", where=f"entry[{i}]"))  # fmt: skip
            continue
        rtype = res["resourceType"]
        if rtype == "Patient":
            patients.append((i, entry.get("fullUrl"), res))
        elif rtype == "Medication":
            # The entry keeps its fullUrl: references may use it (urn:uuid:...).
            medications.append(entry)
        elif rtype in PATIENT_TYPES or (rtype == "CarePlan" and is_ldncare_output(res)):
            # ldncare's own CarePlan is read back for the plans it carries (see tags.py).
            clinical.append((i, res))
    if not patients:
        raise InvalidInput("Bundle contains no Patient resource", field="entry")
    groups: dict[str, PatientGroup] = {}
    aliases: dict[str, str] = {}  # patient key of an entry's fullUrl -> Patient id
    first: dict[str, int] = {}  # Patient id -> its first entry
    for i, url, res in patients:
        pid = res.get("id")
        if not isinstance(pid, str) or not pid:
            issues.append(ImportIssue("Patient", None, "id", "is missing: the Patient needs an id"))
            continue
        if pid in groups:
            # Two different records of one patient: which one is current cannot be told, so
            # neither is imported (an identical copy is harmless and written once).
            if res != groups[pid].patient:
                groups[pid].issues.append(LineIssue(
                    "Patient", pid, "id",
                    f"appears twice in the Bundle with different content (entry[{first[pid]}] "
                    f"and entry[{i}]); send one Patient entry per patient",
                    f"entry[{i}]", pid,
                ))  # fmt: skip
        else:
            first[pid] = i
            groups[pid] = PatientGroup(pid, patient=res, medications=list(medications))
        alias = patient_key(url) if isinstance(url, str) else None
        if alias:
            aliases[alias] = pid
    only = next(iter(groups.values())) if len(patients) == 1 and groups else None
    for i, res in clinical:
        ref = next(
            (
                r["reference"]
                for r in (res.get("subject"), res.get("patient"))
                if isinstance(r, Mapping) and isinstance(r.get("reference"), str)
            ),
            None,
        )
        key = patient_key(ref) if ref else None
        key = aliases.get(key, key) if key else None
        if only is not None and key is None:
            # With one Patient, a resource naming no Patient is taken as that patient's (as
            # the reader does); one naming another Patient is not: it is someone else's.
            _place(only, res)
            continue
        if key is None or key not in groups:
            rid = res.get("id") if isinstance(res.get("id"), str) else None
            issues.append(ImportIssue(res["resourceType"], rid, "subject.reference",
                                      f"refers to no Patient of the Bundle ({ref})",
                                      where=f"entry[{i}]"))  # fmt: skip
            continue
        _place(groups[key], res)
    return list(groups.values()), issues


def _place(group: PatientGroup, res: Mapping[str, Any]) -> None:
    if res["resourceType"] == "CarePlan":
        group.plans.append(res)
    elif res["resourceType"] == "Observation" and "meta" in res and is_ldncare_output(res):
        group.diary.append(res)
    else:
        group.resources.append(res)


@dataclass
class _Chunk:
    """Patients read and prepared (in a worker or in process), ready for the writer."""

    prepared: list[_Prepared] = field(default_factory=list)
    issues: list[ImportIssue] = field(default_factory=list)
    skipped: int = 0
    #: Patients of the export met (written, skipped or not).
    seen: int = 0


def _prepare_all(items: Iterable[PatientGroup | LineIssue], facts: _Facts) -> _Chunk:
    chunk = _Chunk()
    stamp = facts.enc.stamp(datetime.now(UTC))
    for item in items:
        if isinstance(item, LineIssue):
            chunk.issues.append(_line_issue(item))
            continue
        result = read_group(item)
        plans: list[dict[str, Any]] = []
        diary: list[DiaryEntry] = []
        if isinstance(result, Patient):
            try:
                plans = [c for r in item.plans for c in plan_contracts(r)]
            except InvalidInput as exc:
                # Never a partial patient: without its plan, a patient on LDN would be
                # screened as a candidate for it.
                result = [ImportIssue("CarePlan", None, exc.field, f"not imported: {exc.message}",
                                      item.key)]  # fmt: skip
        if isinstance(result, Patient):
            try:
                diary = [d for r in item.diary for d in diary_entries(r)]
            except InvalidInput as exc:
                # Nor a partial diary: a lost day of side effects or doses changes the
                # judgement of the response to LDN.
                result = [ImportIssue("Observation", None, exc.field,
                                      f"not imported: {exc.message}", item.key)]  # fmt: skip
        if isinstance(result, Patient):
            prepared = facts.prepare(result, stamp)
            prepared.plans = plans
            prepared.diary = diary
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


def _consume(chunk: _Chunk, writer: _Writer, report: ImportReport) -> None:
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
    groups, issues = _bundle_groups(bundle)
    report.errors.extend(issues)
    writer = _Writer(engine, actor, as_of or date.today(), report, "fhir:bundle", batch_size)
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
    writer = _Writer(engine, actor, as_of, report, "fhir:ndjson", batch_size,
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
    _analyze(engine)
    report.seconds = time.perf_counter() - started
    return report


def _analyze(engine: Engine) -> None:
    """Refresh planner statistics after a bulk load, so screening queries use the indexes."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE pop_patient, pop_medication, pop_condition, plans")
        else:
            conn.exec_driver_sql("PRAGMA optimize")
