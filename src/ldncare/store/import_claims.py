"""Claims that let several import processes (or machines) write one PostgreSQL at once.

Each batch transaction of the FHIR importer first takes a *transaction-level advisory lock*
per patient of the batch (keyed by the FHIR Patient id), in one statement and in a fixed
order, and only then reads which of its patients are already stored. So:

- two processes that hold the same patient (overlapping parts of an export, or the same export
  run twice at once) never both insert it: the second waits until the first commits, then
  reads the stored row and updates it or finds it unchanged, as a sequential re-import would;
- the locks end with the transaction (commit or rollback), so a process that dies releases
  them and leaves nothing half-written: the patient row, its facts, its assessment and its
  audit row are in the same transaction;
- locks are taken in ascending key order, so two batches that share patients cannot deadlock
  on them; two ids whose hashes collide are merely serialised.

Every lock held takes an entry of PostgreSQL's shared lock table (``max_locks_per_transaction`` x
``max_connections`` entries in all: 6,400 by default), so a batch is capped to fit a quarter of
it across this machine's writers (:func:`batch_within_locks`); raise
``max_locks_per_transaction`` when several machines write at once (docs/SCALE.md).

The unique index on ``patients.external_id`` stays the last line of defence. SQLite has one
writer at a time anyway (its write lock covers the whole transaction); nothing is taken there.
Design and the PostgreSQL settings that matter: docs/SCALE.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from ldncare.store.bulk import BulkWriter

#: First key of ldncare's import advisory locks (``pg_advisory_xact_lock(int4, int4)``): keeps
#: them apart from any other advisory locks an operator's tooling takes on the same database.
IMPORT_LOCK_CLASS = 0x1D4C  # "LDN c"

# One row per lock, read to the end: the locks are taken as the sorted keys stream out.
_LOCK_SQL = (
    "SELECT pg_advisory_xact_lock(%s, s.k) FROM ("
    "SELECT DISTINCT hashtext(x) AS k FROM unnest(%s::text[]) AS x ORDER BY 1) AS s"
)


def claim_patients(conn: Connection, external_ids: Sequence[str]) -> None:
    """Take the advisory lock of each patient id for the rest of this transaction (waits while
    another transaction holds one of them). A no-op on SQLite."""
    if conn.dialect.name != "postgresql" or not external_ids:
        return
    conn.exec_driver_sql(_LOCK_SQL, (IMPORT_LOCK_CLASS, list(external_ids))).all()


def held_import_locks(conn: Connection) -> int:
    """How many import advisory locks are held right now (by any session): for tests and
    monitoring."""
    if conn.dialect.name != "postgresql":
        return 0
    row = conn.exec_driver_sql(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s",
        (IMPORT_LOCK_CLASS,),
    ).one()
    return int(row[0])


def lock_slots(conn: Connection) -> int | None:
    """Entries of PostgreSQL's shared lock table (``max_locks_per_transaction`` x
    (``max_connections`` + ``max_prepared_transactions``)), which every advisory lock held
    uses one of; None on SQLite."""
    if conn.dialect.name != "postgresql":
        return None
    row = conn.exec_driver_sql(
        "SELECT current_setting('max_locks_per_transaction')::int * "
        "(current_setting('max_connections')::int "
        "+ current_setting('max_prepared_transactions')::int)"
    ).one()
    return int(row[0])


def batch_within_locks(batch_size: int, writers: int, slots: int | None) -> int:
    """The batch size whose claims of ``writers`` concurrent batch transactions fit in a
    quarter of the lock table (the rest is left to other machines, the web app and ordinary
    relation locks): a batch larger than that would fail with "out of shared memory"."""
    if slots is None:
        return batch_size
    return max(20, min(batch_size, slots // (4 * max(1, writers))))


class ClaimingWriter(BulkWriter):
    """The importer's batch writer, each batch transaction first claiming its patients
    (advisory locks, :mod:`ldncare.store.import_claims`) before it reads what is stored."""

    def _write(self, conn: Connection, batch: Sequence[Any]) -> list[int]:
        claim_patients(conn, [p.pid for p in batch])
        return super()._write(conn, batch)
