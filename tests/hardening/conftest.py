"""A web app on a fresh SQLite file with two clinics and every role, and logged-in sessions.

Clinic 1 holds patients anna and bert, clinic 2 holds carl. Accounts: ``clin1`` (clinic 1),
``clin2`` (clinic 2), ``root`` (admin), ``anna`` and ``bert`` (patients A and B).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
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
SECRET = "s" * 48

#: role name -> username (None: anonymous)
ROLES: dict[str, str | None] = {
    "anonymous": None,
    "patient_a": "anna",
    "patient_b": "bert",
    "clinician_1": "clin1",
    "clinician_2": "clin2",
    "admin": "root",
}


def patient_file(pid: str) -> dict[str, Any]:
    return {
        "id": pid,
        "name": f"Patient {pid}",
        "birth_date": "1980-03-14",
        "sex": "female",
        "conditions": [{"name": "Pudendal neuralgia"}],
        "medications": [{"name": "Paracetamol", "dose": "1 g"}],
        "labs": [{"test": "egfr", "value": 96, "unit": "mL/min/1.73m2", "date": "2026-02-01"}],
    }


def store_patient(engine: Engine, pid: str, clinic: str) -> int:
    patient = patient_from_data(patient_file(pid))
    start = date(2026, 2, 1)
    contract = plan_contract(patient, start=start, today=start, nantes=None)
    return repository.add_patient(
        engine, patient, plan_contract=contract, clinic_id=clinic, actor="test"
    ).id


@dataclass
class Login:
    """One logged-in session: the cookie and the CSRF token the API wants in a header."""

    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf} if self.csrf else {}


@dataclass
class Hospital:
    app: FastAPI
    engine: Engine
    anna: int
    bert: int
    carl: int
    logins: dict[str, Login]

    def client(self, role: str) -> TestClient:
        """A client carrying ``role``'s session cookie and CSRF header."""
        login = self.logins[role]
        client = TestClient(self.app, follow_redirects=False)
        client.cookies.update(login.cookies)
        client.headers.update(login.headers)
        return client


def build_hospital(tmp_path: Path, **settings: Any) -> Hospital:
    options: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'hardening.db'}",
        "secret_key": SECRET,
        "cookie_secure": False,
        "login_max_failures": 1000,
    }
    options.update(settings)
    app = create_app(WebSettings(**options), clock=lambda: TODAY)
    engine: Engine = app.state.engine
    anna = store_patient(engine, "anna", "clinic-1")
    bert = store_patient(engine, "bert", "clinic-1")
    carl = store_patient(engine, "carl", "clinic-2")
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
    logins: dict[str, Login] = {}
    with TestClient(app) as client:
        for role, username in ROLES.items():
            client.cookies.clear()
            if username is None:
                logins[role] = Login()
                continue
            r = client.post("/api/session", json={"username": username, "password": PASSWORD})
            assert r.status_code == 200, r.text
            logins[role] = Login(dict(client.cookies.items()), r.json()["csrf_token"])
    return Hospital(app, engine, anna, bert, carl, logins)


@pytest.fixture
def hospital(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hospital]:
    # Production-like: the CDS Hooks JWT check is on and no issuer is trusted.
    monkeypatch.delenv("LDNCARE_CDS_DEMO", raising=False)
    monkeypatch.delenv("LDNCARE_CDS_TRUSTED_ISSUERS", raising=False)
    yield build_hospital(tmp_path)
