"""Demo data: every stage the dashboard must show, on an empty database only."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from ldncare.evidence.loader import load_evidence
from ldncare.store.db import open_engine
from ldncare.store.summaries import patient_summaries
from ldncare.web.demo import load_demo, load_if_empty
from ldncare.web.views import summary_status

TODAY = date(2026, 6, 1)


def test_demo_patients_cover_every_stage(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    logins = load_demo(engine, today=TODAY)
    assert {"clinician", "admin", "responder", "safety"} <= {u for u, _, _ in logins}
    evidence = load_evidence()
    stages = {
        s.patient.external_id: summary_status(s, TODAY, evidence)
        for s in patient_summaries(engine, clinic_id="demo-clinic", actor="t", today=TODAY)
    }
    assert stages["demo-titrating"].stage == "titrating"
    assert "side effects reported" in stages["demo-titrating"].flags
    assert stages["demo-trial"].stage == "in_trial"
    assert stages["demo-review"].stage == "due_for_review"
    assert "review due" in stages["demo-review"].flags
    assert stages["demo-responder"].stage == "responder"
    assert stages["demo-nonresponder"].stage == "non_responder"
    assert "non-response" in stages["demo-nonresponder"].flags
    assert stages["demo-safety"].stage == "safety_alert"
    assert "opioid on record" in stages["demo-safety"].flags


def test_demo_is_not_loaded_twice(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    assert load_if_empty(engine, clock=lambda: TODAY) is not None
    assert load_if_empty(engine, clock=lambda: TODAY) is None
