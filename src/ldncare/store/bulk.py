"""Bulk writing of imported patients: batches, PostgreSQL ``COPY``, and the raw audit SQL.

The orchestration (:mod:`ldncare.importing`) hands this module patients already read and
prepared (:class:`~ldncare.store.facts._Prepared`: the snapshot, its two-part hash and the rows
of its facts); :class:`BulkWriter` writes them.

- **Fast.** Patients are written in batches (one transaction per batch, multi-row inserts; on
  PostgreSQL ``COPY``); if a batch fails, its patients are retried one transaction each, so one
  bad patient cannot take others down with it, and each patient stays atomic either way. On
  PostgreSQL a batch is written by a writer thread while the next one is read and prepared
  (the server works on its own core meanwhile), new patient ids are taken from the sequence in
  one round trip, and the assessment and audit rows are built by the server from the patient
  rows just copied.
- **Idempotent.** Patients are matched by their FHIR Patient id (``patients.external_id``). A
  re-import of changed data updates the patient (a new assessment snapshot keeps the history,
  and an audit row says so); of unchanged data, it writes nothing. The facts derived from the
  snapshot can move while the record does not (kidney function from the age on the import's
  ``as_of``, classes, doses and review dates from the shipped evidence and vocabulary): then
  only those facts are rewritten ("facts refreshed" in the report), with no new assessment
  snapshot and no audit "update" row (:func:`same_record`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Table, bindparam, delete, update
from sqlalchemy.exc import SQLAlchemyError

from ldncare.core.patient import Patient
from ldncare.errors import InvalidInput
from ldncare.import_report import ImportIssue, ImportReport
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

#: The FACTS_VERSION hashed into the one-part hashes written before the hash had two halves.
_LEGACY_FACTS_VERSION = "1"
#: Patients per transaction. Measured at N = 100k (bench/bench_import_screen.py): PostgreSQL
#: COPY gains about 3 % from 500 to 2,000 (4,880-4,930 -> 5,000-5,210 patients/s), SQLite is
#: unchanged, memory stays flat; a failing batch is retried one patient per transaction.
DEFAULT_BATCH = 2000

_patients: Table = PatientRow.__table__  # type: ignore[assignment]


def same_record(stored: str, p: _Prepared) -> bool:
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


class BulkWriter:
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
            if stored is not None and same_record(stored, p):
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


def analyze(engine: Engine) -> None:
    """Refresh planner statistics after a bulk load, so screening queries use the indexes."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE pop_patient, pop_medication, pop_condition, plans")
        else:
            conn.exec_driver_sql("PRAGMA optimize")
