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

from ldncare.web import auth
from ldncare.web.app import create_app
from ldncare.web.settings import WebSettings
from tests.web.conftest import PASSWORD, TODAY, _store, seed_people

# Cheap argon2 parameters in tests only: the default costs ~150 ms a hash.
auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

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


def store_patient(engine: Engine, pid: str, clinic: str) -> int:
    return _store(engine, pid, clinic, date(2026, 2, 1))


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

    def log_in(self, role: str) -> None:
        """(Re)start ``role``'s session: a logout ends every session of the account."""
        username = ROLES[role]
        if username is None:
            self.logins[role] = Login()
            return
        with TestClient(self.app) as client:
            r = client.post("/api/session", json={"username": username, "password": PASSWORD})
            assert r.status_code == 200, r.text
            self.logins[role] = Login(dict(client.cookies.items()), r.json()["csrf_token"])

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
    anna, bert, carl = seed_people(engine)
    logins: dict[str, Login] = {}
    hospital = Hospital(app, engine, anna, bert, carl, logins)
    for role in ROLES:
        hospital.log_in(role)
    return hospital


@pytest.fixture
def hospital(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hospital]:
    # Production-like: the CDS Hooks JWT check is on and no issuer is trusted.
    monkeypatch.delenv("LDNCARE_CDS_DEMO", raising=False)
    monkeypatch.delenv("LDNCARE_CDS_TRUSTED_ISSUERS", raising=False)
    yield build_hospital(tmp_path)
