"""The population facts of a stored patient, derived from its latest assessment and written
beside it, whatever wrote the patient.

:func:`ldncare.core.current_state.current_state` derives the facts; this module turns them into
the rows of :mod:`ldncare.store.population` (``pop_patient``, ``pop_medication``,
``pop_condition``, ``pop_lab``) and writes them. The FHIR importer writes them in bulk
(:func:`insert_facts`); :mod:`ldncare.store.repository` writes them with every patient it adds
and every assessment it records (:func:`replace_facts`), so ``ldncare screen`` finds a patient
stored with ``ldncare patient add``, the web form or the API exactly as one imported from FHIR.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import yaml
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, delete, select

from ldncare.core.current_state import CurrentState, current_state
from ldncare.core.diary import DiaryEntry
from ldncare.core.patient import MedicationUse, Patient
from ldncare.errors import EvidenceError
from ldncare.evidence.loader import data_root
from ldncare.evidence.models import LdnDosing
from ldncare.evidence.vocabulary import Vocabulary, load_vocabulary
from ldncare.store.models import AssessmentRow, PatientRow
from ldncare.store.population import FACT_TABLES, pop_patient

_log = logging.getLogger(__name__)

#: Part of the facts half of each patient's ``source_hash`` (see :meth:`_Facts.prepare`). That
#: half covers every fact row derived from the snapshot (so a new age, evidence base or dose
#: reader shows by itself); bump this only when what a stored value means changes while the
#: value does not. A bump refreshes the facts of every patient, never their record.
FACTS_VERSION = "1"


def dose_mg(med: MedicationUse) -> float | None:
    """Milligrams per dose from the dosage text, else from the product strength in the name."""
    dose = med.stated_dose()
    return None if dose is None else float(dose.mg_value)


@dataclass
class _Prepared:
    """One patient's rows, as tuples in the column order of :data:`_COLUMNS` (without the
    leading ``patient_id``, known only once the patient row exists)."""

    pid: str
    name: str | None
    birth_date: date | None
    #: (medications, active medications, conditions, active conditions, labs) for the report.
    counts: tuple[int, int, int, int, int]
    #: The snapshot as JSON text (stored as is; hashed for idempotent re-import).
    snapshot: str
    #: ``pop_patient.source_hash``: "<snapshot hash>:<facts hash>" (see :meth:`_Facts.prepare`).
    digest: str
    pop: tuple[Any, ...]
    meds: list[tuple[Any, ...]]
    conds: list[tuple[Any, ...]]
    labs: list[tuple[Any, ...]]
    #: Plan contracts read back from ldncare's own export (oldest first), to store as plans.
    plans: list[dict[str, Any]] = field(default_factory=list)
    #: Diary days read back from ldncare's own export, to store as the patient's diary.
    diary: list[DiaryEntry] = field(default_factory=list)


_COLUMNS: dict[str, tuple[str, ...]] = {
    "patients": ("clinic_id", "external_id", "name", "birth_date", "snapshot", "created_at",
                 "created_by"),
    "patients+id": ("id", "clinic_id", "external_id", "name", "birth_date", "snapshot",
                    "created_at", "created_by"),
    "assessments": ("patient_id", "snapshot", "created_at", "created_by"),
    "audit_log": ("at", "who", "action", "entity", "entity_id", "detail"),
    "pop_patient": ("patient_id", "external_id", "name", "birth_date", "sex", "pregnant",
                    "renal_ml_min", "renal_method", "renal_basis", "source_hash", "imported_at"),
    "pop_medication": ("patient_id", "seq", "name", "rxnorm", "status", "status_active",
                       "start_date", "end_date", "dose_mg", "review_date", "drug_class"),
    "pop_condition": ("patient_id", "seq", "name", "code", "status_active", "onset", "abatement",
                      "condition_class"),
    "pop_lab": ("patient_id", "kind", "value", "unit", "date"),
}  # fmt: skip


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _same(value: Any) -> Any:
    return value


class _Encoding:
    """How dates and timestamps go to the driver: SQLite stores them as the text SQLAlchemy
    writes and reads (``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM:SS.ffffff``); PostgreSQL takes the
    Python objects."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        self.day: Callable[[date | None], Any] = _iso if self.sqlite else _same

    def stamp(self, when: datetime) -> Any:
        if self.sqlite:
            return f"{when:%Y-%m-%d %H:%M:%S}.{when.microsecond:06d}"
        return when


#: Entries of the per-process dose memo before it is emptied (memory stays flat in N).
_DOSE_CACHE = 50_000


@functools.cache
def _ldn_dosing() -> LdnDosing:
    """The LDN dosing limits (ldn.yaml), read through their model without loading the whole
    evidence base: the importer needs two figures, and the full load costs ~0.4 s per process.
    The evidence base as a whole is validated by its loader and tests."""
    node = data_root() / "ldn.yaml"
    try:
        return LdnDosing.model_validate(yaml.safe_load(node.read_text(encoding="utf-8")))
    except (ValidationError, yaml.YAMLError) as exc:  # pragma: no cover - shipped data
        raise EvidenceError(f"ldn.yaml: {exc}") from None


class _Facts:
    """Derives the population rows of a patient; the vocabulary and evidence are loaded once."""

    def __init__(self, as_of: date, encoding: _Encoding) -> None:
        self.as_of = as_of
        self.enc = encoding
        self.vocab: Vocabulary = load_vocabulary()
        ldn = _ldn_dosing()
        self.ldn_max_mg = float(ldn.max_mg)
        self.review = timedelta(weeks=ldn.defaults.review_weeks)
        #: dose_mg by (dosage text, name): the same few products recur across patients.
        self._doses: dict[tuple[str | None, str], float | None] = {}

    def dose(self, med: MedicationUse) -> float | None:
        """:func:`dose_mg`, memoised on the two texts it reads (bounded)."""
        key = (med.dose_text, med.name)
        try:
            return self._doses[key]
        except KeyError:
            pass
        if len(self._doses) >= _DOSE_CACHE:
            self._doses.clear()
        value = self._doses[key] = dose_mg(med)
        return value

    def state(self, patient: Patient) -> CurrentState:
        """The patient's current state on ``as_of`` (:func:`ldncare.core.current_state`)."""
        return current_state(
            patient,
            self.as_of,
            vocabulary=self.vocab,
            ldn_max_mg=self.ldn_max_mg,
            review=self.review,
            dose=self.dose,
        )

    def prepare(self, patient: Patient, imported_at: Any) -> _Prepared:
        day = self.enc.day
        snapshot = patient.model_dump_json()
        s = self.state(patient)
        # Unpacked rather than read by attribute: this runs for every row of a bulk import.
        meds = [
            (seq, name, rx, status, active, day(start), day(end), mg, day(review), cls)
            for seq, name, rx, status, active, start, end, mg, review, cls in s.medications
        ]
        conds = [
            (seq, name, code, active, day(onset), day(abatement), cls)
            for seq, name, code, active, onset, abatement, cls in s.conditions
        ]
        labs = [(lab.kind, lab.value, lab.unit, day(lab.date)) for lab in s.labs]
        derived = (
            s.external_id, s.name, day(s.birth_date), s.sex, s.pregnant, s.renal_ml_min,
            s.renal_method, s.renal_basis,
        )  # fmt: skip
        # Two hashes in the one 64-character column (no migration): the snapshot's, and the
        # stored facts'. Kidney function uses the age on as_of, and the classes, doses and
        # review dates come from the evidence base, so the facts can move while the record
        # does not; a snapshot-only hash kept last year's kidney function (or last release's
        # classes). Telling the two apart lets the writer rewrite only the facts when only
        # they moved, without a new assessment or an audit "update" of a record nobody
        # changed (a birthday without a creatinine on file moves nothing at all). orjson
        # writes a date and its ISO text alike, so SQLite and PostgreSQL hash the same.
        # 32 + 31 hex characters (128 and 124 bits) are ample to notice a change.
        snap_hash = hashlib.sha256(snapshot.encode()).hexdigest()[:32]
        facts_hash = hashlib.sha256(f"{FACTS_VERSION}\n".encode())
        facts_hash.update(orjson.dumps((derived, meds, conds, labs)))
        digest = f"{snap_hash}:{facts_hash.hexdigest()[:31]}"
        pop = (*derived, digest, imported_at)
        as_of = self.as_of
        counts = (
            len(patient.medications),
            sum(1 for m in patient.medications if m.is_active(as_of)),
            len(patient.conditions),
            sum(1 for c in patient.conditions if c.is_active(as_of)),
            len(patient.labs),
        )
        return _Prepared(patient.id, patient.name, patient.birth_date, counts, snapshot, digest,
                         pop, meds, conds, labs)  # fmt: skip


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def _bulk_insert(conn: Connection, name: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Many rows at once, straight to the driver: ``COPY`` on PostgreSQL, ``executemany`` on
    SQLite (SQLAlchemy's per-value processing cost more than the database work). ``name`` is
    a key of :data:`_COLUMNS`: the table, optionally with ``+...`` for another column set."""
    if not rows:
        return
    cols = _COLUMNS[name]
    table = name.split("+")[0]
    if conn.dialect.name == "postgresql":
        raw: Any = conn.connection.dbapi_connection
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
        return
    marks = ", ".join("?" for _ in cols)
    conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", list(rows))


def _insert_facts(conn: Connection, facts: list[tuple[int, _Prepared]]) -> None:
    """The population fact rows of each (patient id, prepared patient)."""
    _bulk_insert(conn, "pop_patient", [(pk, *p.pop) for pk, p in facts])
    _bulk_insert(conn, "pop_medication", [(pk, *r) for pk, p in facts for r in p.meds])
    _bulk_insert(conn, "pop_condition", [(pk, *r) for pk, p in facts for r in p.conds])
    _bulk_insert(conn, "pop_lab", [(pk, *r) for pk, p in facts for r in p.labs])


def replace_facts(conn: Connection, patient_id: int, patient: Patient, as_of: date) -> None:
    """Replace the population facts of stored patient ``patient_id`` by those of ``patient``
    (its latest assessment) on ``as_of``, in the caller's transaction."""
    enc = _Encoding(conn.dialect.name)
    prepared = _deriver(as_of, conn.dialect.name).prepare(patient, enc.stamp(datetime.now(UTC)))
    for table in (*FACT_TABLES, pop_patient):
        conn.execute(delete(table).where(table.c.patient_id == patient_id))
    _insert_facts(conn, [(patient_id, prepared)])


_DERIVERS: dict[tuple[date, str], _Facts] = {}


def _deriver(as_of: date, dialect: str) -> _Facts:
    """One deriver per (day, dialect): the vocabulary and dosing figures are read once."""
    facts = _DERIVERS.get((as_of, dialect))
    if facts is None:
        if len(_DERIVERS) > 16:
            _DERIVERS.clear()
        facts = _DERIVERS[(as_of, dialect)] = _Facts(as_of, _Encoding(dialect))
    return facts


insert_facts = _insert_facts
bulk_insert = _bulk_insert


def derive_missing_facts(engine: Engine, *, as_of: date | None = None, batch: int = 500) -> int:
    """Write the facts of every stored patient that has none, from its latest assessment (else
    the snapshot first stored); returns how many patients got them.

    Releases before issue #17 wrote facts only on FHIR import: a patient stored with
    ``ldncare patient add``, the web form or the API was invisible to ``ldncare screen``.
    :func:`ldncare.store.db.open_engine` calls this after migrating, so such a store is
    screened whole from its first start on this release; with nothing missing it costs one
    indexed query. Not an Alembic revision: the facts come from the live vocabulary and
    evidence base (as every import's facts refresh does), which a revision must not import.
    A record that no longer reads as a patient is left out with a warning, never guessed.
    """
    day = as_of or datetime.now(UTC).date()
    patients: Any = PatientRow.__table__
    assessments: Any = AssessmentRow.__table__
    written = 0
    last = 0
    while True:
        with engine.begin() as conn:
            ids = list(
                conn.execute(
                    select(patients.c.id)
                    .outerjoin(pop_patient, pop_patient.c.patient_id == patients.c.id)
                    .where(pop_patient.c.patient_id.is_(None), patients.c.id > last)
                    .order_by(patients.c.id)
                    .limit(batch)
                ).scalars()
            )
            if not ids:
                return written
            for pid in ids:
                latest = conn.execute(
                    select(assessments.c.snapshot)
                    .where(assessments.c.patient_id == pid)
                    .order_by(assessments.c.id.desc())
                    .limit(1)
                ).scalar()
                if latest is None:
                    latest = conn.execute(
                        select(patients.c.snapshot).where(patients.c.id == pid)
                    ).scalar()
                try:
                    patient = Patient.model_validate(latest)
                except ValidationError as exc:
                    _log.warning(
                        "patient %s: its record does not read as a patient, so it has no "
                        "screening facts (%s)", pid, str(exc).splitlines()[0],
                    )  # fmt: skip
                    continue
                replace_facts(conn, pid, patient, day)
                written += 1
            last = ids[-1]
