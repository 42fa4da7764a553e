"""Two writers on the same patient and day: one row, no error, no lost update."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

from sqlalchemy import text

from ldncare.core.patient import Patient
from ldncare.store import repository as repo
from ldncare.store.db import make_engine
from tests.integration.followup_db import db_url  # noqa: F401

WRITES = 60

WRITER = r"""
import sys, time
from datetime import date
from ldncare.store.db import make_engine
from ldncare.store import repository as repo

url, name, writes, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
engine = make_engine(url)
engine.connect().close()
while time.time() < start_at:   # both writers start together
    time.sleep(0.001)
for i in range(writes):
    repo.add_or_update_diary_entry(
        engine, "same", {"day": "2025-03-10", "pain_avg": i % 11, "notes": f"{name}-{i}"},
        today=date(2025, 3, 20), actor=f"writer-{name}",
    )
"""


def test_two_writers_on_one_day_leave_one_row_holding_the_last_write(
    db_url: str,  # noqa: F811
) -> None:
    import time

    engine = make_engine(db_url)
    repo.add_patient(engine, Patient(id="same"), actor="test")
    start_at = time.time() + 3
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, db_url, name, str(WRITES), str(start_at)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("A", "B")
    ]
    for w in writers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err[-1000:]

    entries = repo.list_diary(engine, "same", actor="test")
    assert [e.day for e in entries] == [date(2025, 3, 10)]
    with engine.connect() as conn:
        rows = conn.execute(text("select notes, updated_by from diary_entries")).fetchall()
        writes = conn.execute(
            text(
                "select who from audit_log where entity = 'diary_entry' "
                "and action in ('create', 'update') order by id"
            )
        ).fetchall()
    assert len(rows) == 1
    # Every write was acknowledged and audited; exactly one of them created the row.
    assert len(writes) == 2 * WRITES
    # Last write wins: the stored row is the final write of whichever writer committed last.
    last_writer = writes[-1][0]
    notes, updated_by = rows[0]
    assert updated_by == last_writer
    assert notes == f"{last_writer[-1]}-{WRITES - 1}"
    engine.dispose()
