"""No data loss: a writer killed with SIGKILL loses nothing it had acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sqlalchemy import text

from ldncare.core.patient import Patient
from ldncare.store import repository as repo
from ldncare.store.db import make_engine
from tests.integration.followup_db import db_url  # noqa: F401

# The child prints a day only after the transaction that wrote it has committed.
CHILD = r"""
import sys
from datetime import date, timedelta
from ldncare.store.db import make_engine
from ldncare.store import repository as repo

url, patient = sys.argv[1], sys.argv[2]
engine = make_engine(url)
i = 0
while True:
    day = date(2000, 1, 1) + timedelta(days=i)
    repo.add_or_update_diary_entry(
        engine, patient, {"day": day.isoformat(), "pain_avg": i % 11, "notes": f"n{i}"},
        today=date(2100, 1, 1), actor="child",
    )
    print(day.isoformat(), flush=True)
    i += 1
"""


def test_every_acknowledged_diary_write_survives_sigkill(db_url: str) -> None:  # noqa: F811
    engine = make_engine(db_url)
    repo.add_patient(engine, Patient(id="durable"), actor="test")
    engine.dispose()

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, db_url, "durable"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acknowledged: list[str] = []
    deadline = time.monotonic() + 20
    while len(acknowledged) < 150 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        acknowledged.append(line.strip())
    os.kill(child.pid, signal.SIGKILL)
    rest, err = child.communicate(timeout=10)
    acknowledged += [line.strip() for line in rest.splitlines() if line.strip()]
    assert child.returncode == -signal.SIGKILL, err
    assert len(acknowledged) >= 20, f"child wrote too little before the kill: {err[-500:]}"

    engine = make_engine(db_url)
    stored = {e.day.isoformat(): e for e in repo.list_diary(engine, "durable", actor="test")}
    missing = [d for d in acknowledged if d not in stored]
    assert missing == []
    for i, day in enumerate(acknowledged):
        assert stored[day].notes == f"n{i}"
    # At most the one write in flight at the kill may be stored without being acknowledged.
    assert len(stored) - len(acknowledged) in (0, 1)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            assert conn.execute(text("PRAGMA foreign_key_check")).fetchall() == []
        duplicates = conn.execute(
            text("select day from diary_entries group by patient_id, day having count(*) > 1")
        ).fetchall()
        assert duplicates == []
        # Each stored diary row has its audit row: both were written in one transaction.
        audited = conn.execute(
            text(
                "select count(*) from audit_log where entity = 'diary_entry' and action = 'create'"
            )
        ).scalar()
        assert audited == len(stored)
    engine.dispose()
