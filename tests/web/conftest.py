"""A web app on a fresh SQLite file per test, with two clinics, clinicians, patients, an admin."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ldncare.patient_file import patient_from_data
from ldncare.store import repository
from ldncare.web import auth
from ldncare.web.app import create_app
from ldncare.web.auth import create_user
from ldncare.web.service import plan_contract
from ldncare.web.settings import WebSettings

# Cheap argon2 parameters in tests only: the default costs ~150 ms a hash.
auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

TODAY = date(2026, 3, 2)
PASSWORD = "correct horse battery"


def patient_file(pid: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": pid,
        "name": f"Patient {pid}",
        "birth_date": "1980-03-14",
        "sex": "female",
        "conditions": [{"name": "Pudendal neuralgia"}],
        "medications": [{"name": "Paracetamol", "dose": "1 g"}],
        "labs": [{"test": "egfr", "value": 96, "unit": "mL/min/1.73m2", "date": "2026-02-01"}],
    }
    data.update(extra)
    return data


@dataclass
class World:
    client: TestClient
    engine: Engine
    anna: int  # clinic-1 patient
    bert: int  # clinic-1 patient
    carl: int  # clinic-2 patient

    def login(self, username: str, password: str = PASSWORD) -> str:
        """Log in through the API; returns the CSRF token for writes."""
        r = self.client.post("/api/session", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        token: str = r.json()["csrf_token"]
        self.client.headers["X-CSRF-Token"] = token
        return token

    def logout(self) -> None:
        self.client.cookies.clear()
        self.client.headers.pop("X-CSRF-Token", None)


def _store(engine: Engine, pid: str, clinic: str, start: date) -> int:
    patient = patient_from_data(patient_file(pid))
    contract = plan_contract(patient, start=start, today=start, nantes=None)
    return repository.add_patient(
        engine, patient, plan_contract=contract, clinic_id=clinic, actor="test"
    ).id


def seed_people(engine: Engine) -> tuple[int, int, int]:
    """Patients anna and bert (clinic-1) and carl (clinic-2), plans started 1 Feb 2026, and
    accounts clin1, clin2 (clinicians), root (admin), anna and bert (patients): the people
    the web and hardening tests act as. Returns the three patient ids."""
    anna = _store(engine, "anna", "clinic-1", date(2026, 2, 1))
    bert = _store(engine, "bert", "clinic-1", date(2026, 2, 1))
    carl = _store(engine, "carl", "clinic-2", date(2026, 2, 1))
    for name, role, clinic, patient in (
        ("clin1", "clinician", "clinic-1", None),
        ("clin2", "clinician", "clinic-2", None),
        ("root", "admin", None, None),
        ("anna", "patient", None, anna),
        ("bert", "patient", None, bert),
    ):
        create_user(
            engine, name, PASSWORD, role=role, clinic_id=clinic, patient=patient, actor="test"
        )
    return anna, bert, carl


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = WebSettings(
        database_url=f"sqlite:///{tmp_path / 'web.db'}",
        secret_key="k" * 48,
        cookie_secure=False,
        login_max_failures=3,
    )
    app = create_app(settings, clock=lambda: TODAY)
    engine = app.state.engine
    anna, bert, carl = seed_people(engine)
    with TestClient(app) as client:
        yield World(client, engine, anna, bert, carl)
