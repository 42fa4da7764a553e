"""The stale-form check on both databases: the version a form carries is a fingerprint of the
stored snapshot, so reading it back (SQLite JSON, PostgreSQL JSON) must give the same one."""

from __future__ import annotations

from fastapi.testclient import TestClient

from ldncare.web.app import create_app
from ldncare.web.settings import WebSettings
from tests.integration.followup_db import db_url
from tests.web.conftest import PASSWORD, TODAY, patient_file, seed_people
from tests.web.test_reassessment_form import _form_as_shown

__all__ = ["db_url"]


def test_an_unchanged_form_passes_and_a_stale_one_is_refused(db_url: str) -> None:
    settings = WebSettings(database_url=db_url, secret_key="k" * 48, cookie_secure=False)
    app = create_app(settings, clock=lambda: TODAY)
    seed_people(app.state.engine)
    with TestClient(app) as client:
        r = client.post("/api/session", json={"username": "clin1", "password": PASSWORD})
        client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        r = client.post("/api/patients", json={"patient": patient_file("p-db", weight_kg=61.5)})
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        first = _form_as_shown(client.get(f"/patients/{pid}/assess").text)
        second = _form_as_shown(client.get(f"/patients/{pid}/assess").text)
        assert first["record_version"] == second["record_version"]
        r = client.post(f"/patients/{pid}/assess", data=first, follow_redirects=False)
        assert r.status_code == 303, r.text  # unchanged: the same record as before
        r = client.post(f"/patients/{pid}/assess", data=first, follow_redirects=False)
        assert r.status_code == 303, r.text
        changed = {**first, "egfr": "80"}
        r = client.post(f"/patients/{pid}/assess", data=changed, follow_redirects=False)
        assert r.status_code == 303, r.text
        # That post changed the record: the second form was opened before it.
        r = client.post(f"/patients/{pid}/assess", data={**second, "alt": "50"})
        assert r.status_code == 422
        assert "the record changed since this form was opened" in r.text
