"""The dashboard's safety alerts are the screen's critical hits for the patients listed: the
same answer for a few patients (IN list) and for a whole clinic (one query, then kept)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ldncare.patient_file import patient_from_data
from ldncare.store import repository
from ldncare.store.db import make_engine, migrate
from ldncare.store.population import safety_alerts

AS_OF = date(2026, 12, 4)


def _store(engine: Engine, pid: str, *meds: dict[str, str]) -> int:
    data = {"id": pid, "sex": "female", "birth_date": "1980-01-01",
            "conditions": [{"name": "Pudendal neuralgia"}], "medications": list(meds)}  # fmt: skip
    return repository.add_patient(engine, patient_from_data(data), actor="t").id


@pytest.mark.parametrize("listed", [2, 600])
def test_naltrexone_with_tramadol_is_an_alert_only_for_her_however_many_are_listed(
    tmp_path: Path, listed: int
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    migrate(url)
    engine = make_engine(url)
    her = _store(engine, "her", {"name": "Naltrexone 3 mg", "dose": "3 mg"},
                 {"name": "Tramadol 50 mg", "dose": "50 mg"})  # fmt: skip
    other = _store(engine, "other", {"name": "Tramadol 50 mg", "dose": "50 mg"})
    ids = sorted({her, other, *range(10_000, 10_000 + listed - 2)})
    assert safety_alerts(engine, AS_OF, ids) == {her: ("naltrexone with an active opioid",)}
    # A patient not listed gets no alert, even when the screen finds her.
    assert safety_alerts(engine, AS_OF, [i for i in ids if i != her]) == {}
    engine.dispose()
